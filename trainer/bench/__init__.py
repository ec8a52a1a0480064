"""Benchmarks of the trainer: `python -m trainer bench detection|captioning|panoptic|colorization
[--quick]` (`detection.py`, `shapes_tasks.py`; shared pieces in `common.py`)."""
