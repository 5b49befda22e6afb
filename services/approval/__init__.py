"""Approval: the two-gate decision (US export licence, China import approval) on every purchase order."""

NAME = "approval"
