"""Fault scenarios: broker_faults (being written)."""
