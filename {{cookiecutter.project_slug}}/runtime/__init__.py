"""Plumbing behind main.py: where a run writes, what it records, and checks made before training."""
