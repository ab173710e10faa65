"""Fault scenarios: bad_settings (being written)."""
