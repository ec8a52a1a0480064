"""Tiny fixtures shared by the trainer tests (small images, few scenes, so tests stay fast)."""

import pytest

from trainer.data.shapes import ShapesConfig


@pytest.fixture
def tiny_shapes_config() -> ShapesConfig:
    """32 px scenes with up to 4 objects: enough structure to test, cheap to generate."""
    return ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)
