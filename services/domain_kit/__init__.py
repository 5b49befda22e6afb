"""Pure building blocks the domain cores share (no I/O, no clock, no framework): held to the cores' import contract."""
