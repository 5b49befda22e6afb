"""Operator tooling: topic administration, samples, and (later) policy, supply and order commands."""
