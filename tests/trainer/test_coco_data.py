"""Detection examples and batches, and COCO folders: writing, loading, bad input, results."""

import numpy as np
import pytest
import torch

from trainer.data.detection import (
    SHAPES_CATEGORIES,
    DetectionExample,
    ShapesStream,
    collate,
    denormalize_images,
    shapes_examples,
    shapes_source,
)
from trainer.data.shapes import ShapesConfig, generate_scene, scene_seed


def example(height: int, width: int, boxes: list[list[float]], image_id: int) -> DetectionExample:
    rng = np.random.default_rng(image_id)
    return DetectionExample(
        image=rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        classes=np.arange(len(boxes), dtype=np.int64),
        image_id=image_id,
    )


def test_collate_pads_normalises_and_keeps_ids_and_sizes() -> None:
    examples = [
        example(40, 80, [[4, 8, 20, 40], [0, 0, 40, 80]], image_id=7),
        example(64, 64, [], image_id=9),
    ]
    batch = collate(examples, image_size=32)
    assert batch.images.shape == (2, 3, 32, 32) and batch.images.dtype == torch.float32
    assert batch.boxes.shape == (2, 2, 4) and batch.classes.shape == (2, 2)
    torch.testing.assert_close(batch.boxes[0, 0], torch.tensor([0.1, 0.1, 0.5, 0.5]))
    torch.testing.assert_close(batch.boxes[0, 1], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert batch.classes.tolist() == [[0, 1], [-1, -1]]
    assert batch.valid.tolist() == [[True, True], [False, False]]
    assert batch.image_ids.tolist() == [7, 9]
    assert batch.sizes.tolist() == [[40, 80], [64, 64]]


def test_collate_keeps_a_square_image_of_the_right_size_exactly() -> None:
    scene_example = shapes_examples("val", 1)[0]
    batch = collate([scene_example], image_size=64)
    np.testing.assert_array_equal(
        denormalize_images(batch.images)[0].permute(1, 2, 0).numpy(), scene_example.image
    )


def test_collate_resizes_with_antialiasing() -> None:
    # A one-pixel checkerboard shrunk by 4 averages to mid grey instead of aliasing.
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    image = np.repeat(checker[..., None], 3, axis=2)
    batch = collate([DetectionExample(image, np.zeros((0, 4), np.float32),
                                      np.zeros(0, np.int64), 1)], image_size=16)
    pixels = denormalize_images(batch.images).float()
    assert abs(pixels.mean().item() - 127.5) < 2 and pixels.std().item() < 2


def test_batches_of_shapes_are_roughly_standardised() -> None:
    batch = ShapesStream().next_batch(32)
    assert abs(batch.images.mean().item()) < 0.5
    assert 0.5 < batch.images.std().item() < 1.5


def test_shapes_stream_continues_from_start_and_matches_the_split() -> None:
    config = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2)
    stream = ShapesStream(config, start=5)
    first, second = next(stream), next(stream)
    assert stream.index == 7
    expected = generate_scene(scene_seed("train", 6), config)
    assert second.image_id == expected.seed
    np.testing.assert_array_equal(second.image, expected.image)
    np.testing.assert_array_equal(second.boxes, expected.boxes)
    assert first.image_id != second.image_id


def test_sources_map_contiguous_classes_to_coco_category_ids() -> None:
    source = shapes_source("val", 4)
    assert len(source) == 4
    assert source.category_ids == tuple(c["id"] for c in SHAPES_CATEGORIES)
    assert all(source.category_index[cid] == i for i, cid in enumerate(source.category_ids))
    annotations = source.gt["annotations"]
    assert len(annotations) == sum(len(e.classes) for e in source)
    first = source[0]
    ymin, xmin, ymax, xmax = first.boxes[0].tolist()
    assert annotations[0]["bbox"] == [xmin, ymin, xmax - xmin, ymax - ymin]
    assert annotations[0]["category_id"] == source.category_ids[first.classes[0]]
    assert ShapesStream().category_ids == source.category_ids


def test_endless_reshuffles_a_fixed_source_each_epoch() -> None:
    source = shapes_source("val", 5)
    stream = source.endless(seed=1)
    epochs = [[next(stream).image_id for _ in range(5)] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(e.image_id for e in source)
    assert epochs[0] != epochs[1]


def test_bad_stream_split_fails_at_once() -> None:
    with pytest.raises(ValueError, match="split"):
        ShapesStream(split="training")
