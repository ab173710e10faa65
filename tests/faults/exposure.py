"""Fault scenarios: exposure (being written)."""
