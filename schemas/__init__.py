"""Versioned message contracts of h200-orderbook: every command and event the services exchange."""
