"""Fault scenarios: spark_faults (being written)."""
