"""Intake: validates, deduplicates and records purchase orders submitted by upstream buyer systems."""
