"""Replay: who got which H200 batches and when, rebuilt from the event log alone, at any past moment, and proved.

Pure parts (the ledger fold, invariants, the determinism check, the what-if rerun, rendering) take decoded
events; the shell parts read them from Kafka or from an export file and are wired into `h200` by `commands`.
"""
