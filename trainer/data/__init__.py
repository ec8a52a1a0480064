"""Data for the trainer: Synthetic Shapes scenes, detection examples and batches, COCO files."""
