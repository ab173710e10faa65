"""Benchmarks: ``python -m bench NAME`` (``make bench`` runs them all).

Each one measures ours and a baseline side by side in one run and prints both and their
ratio. They are not tests: they assert nothing about speed.
"""
