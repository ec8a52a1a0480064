"""Benchmarks of the trainer: `python -m trainer bench detection [--quick]`."""
