"""The clock process: business time as data (docs/time.md). It writes ClockTicked to h200.clock, strictly
increasing; besides the broker's LogAppendTime it is the only place of the system that reads a wall clock."""
