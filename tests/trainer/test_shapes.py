"""Synthetic Shapes: determinism, splits, and agreement between the annotations of a scene."""

import dataclasses
import re

import numpy as np
import pytest

from trainer.data.shapes import (
    CLASS_NAMES,
    COLOR_NAMES,
    SPLIT_SIZES,
    SPLITS,
    Scene,
    ShapesConfig,
    generate_scene,
    generate_split,
    scene_seed,
    scene_to_pil,
)

ARRAY_FIELDS = ("image", "gray", "boxes", "classes", "colors", "masks", "panoptic")


def assert_same_scene(a: Scene, b: Scene) -> None:
    for name in ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.captions == b.captions


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return generate_split("val", 60)


def test_same_seed_gives_the_same_scene_and_different_seeds_differ() -> None:
    config = ShapesConfig(max_objects=8)
    assert_same_scene(generate_scene(123, config), generate_scene(123, config))
    images = {generate_scene(seed, config).image.tobytes() for seed in range(20)}
    assert len(images) == 20


def test_scene_fields_have_the_documented_types_and_shapes(scenes: list[Scene]) -> None:
    for scene in scenes:
        k = len(scene.classes)
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        assert scene.gray.shape == (64, 64) and scene.gray.dtype == np.uint8
        assert scene.boxes.shape == (k, 4) and scene.boxes.dtype == np.float32
        assert scene.classes.dtype == np.int64 and scene.colors.shape == (k,)
        assert scene.colors.dtype == np.int64
        assert scene.masks.shape == (k, 64, 64) and scene.masks.dtype == bool
        assert scene.panoptic.shape == (64, 64) and scene.panoptic.dtype == np.int32
        assert 1 <= k <= 6
        assert np.all((scene.classes >= 0) & (scene.classes < len(CLASS_NAMES)))
        assert np.all((scene.colors >= 0) & (scene.colors < len(COLOR_NAMES)))


def test_boxes_are_tight_boxes_of_the_visible_masks(scenes: list[Scene]) -> None:
    for scene in scenes:
        for box, mask in zip(scene.boxes, scene.masks, strict=True):
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            expected = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
            np.testing.assert_array_equal(box, expected)


def test_panoptic_map_matches_the_masks(scenes: list[Scene]) -> None:
    for scene in scenes:
        k = len(scene.classes)
        assert scene.panoptic.min() >= 0 and scene.panoptic.max() == k
        for index, mask in enumerate(scene.masks):
            np.testing.assert_array_equal(scene.panoptic == index + 1, mask)
        # Visible masks never overlap: each pixel belongs to at most one instance.
        assert scene.masks.sum(0).max() <= 1


def square_fill(config: ShapesConfig, seeds: range) -> list[float]:
    """Fraction of its box that each visible square covers (1.0 when nothing hides it)."""
    fills = []
    square = CLASS_NAMES.index("square")
    for seed in seeds:
        scene = generate_scene(seed, config)
        for box, mask, cls in zip(scene.boxes, scene.masks, scene.classes, strict=True):
            if cls == square:
                fills.append(mask.sum() / ((box[2] - box[0]) * (box[3] - box[1])))
    return fills


def test_occlusion_happens_only_when_the_config_allows_it() -> None:
    upright = {"max_rotation_deg": 0.0, "max_objects": 8, "min_objects": 6}
    apart = square_fill(ShapesConfig(max_occlusion=0.0, **upright), range(40))
    overlapping = square_fill(ShapesConfig(max_occlusion=0.6, **upright), range(40))
    assert len(apart) > 10 and len(overlapping) > 10
    assert min(apart) == 1.0
    assert min(overlapping) < 0.9


def test_gray_is_the_luma_of_the_image(scenes: list[Scene]) -> None:
    scene = scenes[0]
    luma = scene.image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(scene.gray.astype(np.float64) - luma).max() <= 1.0


def test_captions_name_the_colours_and_shapes_of_the_scene(scenes: list[Scene]) -> None:
    for scene in scenes:
        assert len(scene.captions) >= 5 and len(set(scene.captions)) >= 4
        words = set(re.findall(r"[a-z]+", " ".join(scene.captions)))
        for cls in scene.classes:
            assert CLASS_NAMES[cls] in words
        for colour in scene.colors:
            assert COLOR_NAMES[colour] in words
        absent_shapes = set(CLASS_NAMES) - {CLASS_NAMES[c] for c in scene.classes}
        absent_colours = set(COLOR_NAMES) - {COLOR_NAMES[c] for c in scene.colors}
        assert not (absent_shapes | absent_colours) & words
        plurals = {name + "s" for name in absent_shapes} | {name + "es" for name in absent_shapes}
        assert not plurals & words


def test_count_caption_counts_each_class() -> None:
    scene = next(
        s for s in (generate_scene(seed) for seed in range(200))
        if np.bincount(s.classes).max() >= 2
    )
    cls = int(np.bincount(scene.classes).argmax())
    count = int((scene.classes == cls).sum())
    number = ("zero", "one", "two", "three", "four", "five", "six")[count]
    name = CLASS_NAMES[cls]
    assert any(f"{number} {name}s" in c or f"{number} {name}es" in c for c in scene.captions)


def test_splits_are_disjoint_and_fixed() -> None:
    seeds = {split: {scene_seed(split, i) for i in range(2000)} for split in SPLITS}
    assert not seeds["train"] & seeds["val"]
    assert not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    assert SPLIT_SIZES["val"] > 0 and SPLIT_SIZES["test"] > 0
    assert_same_scene(generate_split("test", 3)[2], generate_scene(scene_seed("test", 2)))


def test_bad_split_and_config_are_refused_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        scene_seed("dev", 0)
    with pytest.raises(ValueError, match="min_objects"):
        ShapesConfig(min_objects=5, max_objects=3)
    with pytest.raises(ValueError, match="max_occlusion"):
        ShapesConfig(max_occlusion=0.9)
    with pytest.raises(ValueError, match="backgrounds"):
        ShapesConfig(backgrounds=("stripes",))
    with pytest.raises(ValueError, match="min_contrast"):
        ShapesConfig(min_contrast=250)


def test_hardest_allowed_config_still_places_an_object_in_every_scene() -> None:
    config = ShapesConfig(min_contrast=180, min_object_size=0.1, max_object_size=0.1,
                          placement_tries=1)
    assert all(len(generate_scene(seed, config).classes) >= 1 for seed in range(200))


def test_config_changes_the_scenes() -> None:
    big = generate_scene(5, ShapesConfig(image_size=96, min_objects=8, max_objects=8))
    assert big.image.shape == (96, 96, 3)
    assert len(big.classes) >= 5  # placement may leave out a few of the 8 when crowded
    plain = ShapesConfig(backgrounds=("plain",), noise_std=0.0)
    scene = generate_scene(5, plain)
    background = scene.image[scene.panoptic == 0]
    assert len(np.unique(background, axis=0)) == 1


def test_scene_is_immutable_and_converts_to_pil(scenes: list[Scene]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenes[0].seed = 1  # type: ignore[misc]
    assert scene_to_pil(scenes[0]).size == (64, 64)
