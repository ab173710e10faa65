"""Fault scenarios: secrets_canary (being written)."""
