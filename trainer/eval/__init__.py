"""Evaluation of the trainer's models with the field's standard metrics."""
