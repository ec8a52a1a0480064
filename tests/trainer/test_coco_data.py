"""Detection examples and batches, and COCO folders: writing, loading, bad input, results."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from trainer.data.coco import (
    CocoFormatError,
    detections_to_coco_results,
    export_shapes_coco,
    load_coco_dir,
    write_coco_results,
)
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
from trainer.data.sources import detection_source


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


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


# --- COCO folders ---


def test_written_coco_folder_loads_back_the_same_examples(
    tiny_coco_dir: Path, tiny_coco_examples: list[DetectionExample]
) -> None:
    dataset = load_coco_dir(tiny_coco_dir)
    expected = tiny_coco_examples
    assert [c["id"] for c in dataset.categories] == [3, 7, 11]
    assert dataset.class_names == ("dog", "cat", "cup")
    assert dataset.category_ids == (3, 7, 11)
    assert len(dataset) == len(expected)
    for got, want in zip(dataset, expected, strict=True):
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.boxes, want.boxes)  # the crowd box is left out
        np.testing.assert_array_equal(got.classes, want.classes)
        assert (got.image_id, got.file_name) == (want.image_id, want.file_name)
    crowd = [a for a in dataset.gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["image_id"] == 10
    assert len(dataset.gt["annotations"]) == 4
    batch = collate(list(dataset), image_size=16)
    assert batch.sizes.tolist() == [[40, 60], [50, 30], [24, 24]]


def test_shapes_export_round_trips_with_masks(tmp_path: Path) -> None:
    export_shapes_coco(tmp_path, "val", 3)
    dataset = load_coco_dir(tmp_path)
    source = shapes_source("val", 3)
    for got, want in zip(dataset, source, strict=True):
        np.testing.assert_array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.classes, want.classes)
    coco = quiet_coco(tmp_path / "instances.json")
    first = dataset.gt["annotations"][0]
    scene = generate_scene(scene_seed("val", 0))
    np.testing.assert_array_equal(coco.annToMask(coco.anns[first["id"]]), scene.masks[0])


def test_detection_source_defaults_to_shapes_and_reads_a_folder(tiny_coco_dir: Path) -> None:
    assert len(detection_source(None, "val", 3)) == 3
    subset = detection_source(tiny_coco_dir, n=1)
    assert len(subset) == 1 and subset.root == tiny_coco_dir
    assert {image["id"] for image in subset.gt["images"]} == {10}
    assert {a["image_id"] for a in subset.gt["annotations"]} == {10}
    with pytest.raises(ValueError, match="endless"):
        detection_source(None, "train")


def edit_instances(root: Path, change) -> None:
    file = root / "instances.json"
    gt = json.loads(file.read_text())
    change(gt)
    file.write_text(json.dumps(gt))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda gt: gt["annotations"][0].update(bbox=[1, 2, 3]), r"annotations\[0\].*bbox"),
        (lambda gt: gt["annotations"][0].update(bbox=[1, 2, -3, 4]), r"annotations\[0\].*<= 0"),
        (lambda gt: gt["annotations"][1].update(bbox=[500, 2, 3, 4]), r"annotations\[1\].*outside"),
        (lambda gt: gt["annotations"][0].update(category_id=5), r"annotations\[0\].*category_id"),
        (lambda gt: gt["annotations"][0].update(image_id=1234), r"annotations\[0\].*image_id"),
        (lambda gt: gt["images"][1].update(file_name="no.png"), r"images\[1\].*no.png.*not found"),
        (lambda gt: gt["images"][0].update(height=41), r"images\[0\].*height.*41"),
        (lambda gt: gt["images"][0].update(file_name="../x.png"), r"images\[0\].*outside"),
        (lambda gt: gt["categories"].append({"id": 3, "name": "x"}), r"categories\[3\].*twice"),
        (lambda gt: gt.pop("images"), r'"images" must be a list'),
        (lambda gt: gt.update(images=[], annotations=[]), r'"images" is empty'),
    ],
)
def test_bad_coco_input_is_refused_naming_the_file_and_field(
    tiny_coco_dir: Path, change, message: str
) -> None:
    edit_instances(tiny_coco_dir, change)
    with pytest.raises(CocoFormatError, match=message) as error:
        load_coco_dir(tiny_coco_dir)
    assert "instances.json" in str(error.value)


def test_missing_json_broken_json_and_non_images_are_refused(tiny_coco_dir: Path) -> None:
    with pytest.raises(CocoFormatError, match=r"no instances\.json"):
        load_coco_dir(tiny_coco_dir / "images")
    with pytest.raises(CocoFormatError, match="not a folder"):
        load_coco_dir(tiny_coco_dir / "missing")
    (tiny_coco_dir / "images" / "img1.png").write_text("not a png")
    with pytest.raises(CocoFormatError, match=r"img1.png: not a readable image"):
        load_coco_dir(tiny_coco_dir)
    (tiny_coco_dir / "instances.json").write_text("{\"images\": [")
    with pytest.raises(CocoFormatError, match=r"instances.json: not valid JSON"):
        load_coco_dir(tiny_coco_dir)


# --- results ---


def test_results_are_in_original_pixels_and_load_in_pycocotools(
    tiny_coco_dir: Path, tmp_path: Path
) -> None:
    dataset = load_coco_dir(tiny_coco_dir)
    batch = collate(list(dataset), image_size=32)
    scores = torch.tensor([[0.9, 0.8], [0.7, 0.0], [0.0, 0.0]])
    results = detections_to_coco_results(
        batch.image_ids, batch.boxes, scores, batch.classes, batch.sizes, dataset.category_ids
    )
    assert len(results) == 3  # padding (class -1) is skipped
    assert results[0] == {"image_id": 10, "category_id": 3, "bbox": [3.0, 2.0, 27.0, 18.0],
                          "score": pytest.approx(0.9)}
    assert results[2]["category_id"] == 7 and results[2]["bbox"] == [5.0, 5.0, 20.0, 40.0]
    pixel_results = detections_to_coco_results(
        [10], [dataset[0].boxes], [[0.5, 0.5]], [dataset[0].classes], [(40, 60)],
        dataset.category_ids, normalized=False,
    )
    assert [r["bbox"] for r in pixel_results] == [r["bbox"] for r in results[:2]]

    file = write_coco_results(tmp_path / "out" / "detections.json", results)
    gt = quiet_coco(tiny_coco_dir / "instances.json")
    loaded = gt.loadRes(str(file))
    assert len(loaded.anns) == 3
    assert sorted(loaded.getImgIds()) == [10, 11, 12]


def test_results_clip_boxes_to_the_image() -> None:
    results = detections_to_coco_results(
        [1], [[[-0.5, 0.5, 0.75, 1.5]]], [[0.3]], [[0]], [[100, 200]], [5]
    )
    assert results[0]["bbox"] == [100.0, 0.0, 100.0, 75.0]
