"""COCO captions and COCO panoptic files: round trips, the format's details, clear errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.coco import CocoFormatError
from trainer.data.coco_captions import (
    read_coco_captions,
    scene_captions,
    write_coco_caption_results,
    write_coco_captions,
)
from trainer.data.coco_panoptic import (
    SHAPES_PANOPTIC_CATEGORIES,
    VOID,
    PanopticImage,
    id_to_rgb,
    panoptic_to_segments,
    read_coco_panoptic,
    rgb_to_id,
    scene_panoptic,
    stuff_categories,
    write_coco_panoptic,
)
from trainer.data.shapes import ShapesConfig, generate_split
from trainer.rewards.panoptic import panoptic_quality

CONFIG = ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)


@pytest.fixture(scope="module")
def scenes():
    return generate_split("val", 6, CONFIG)


# --- captions ---


def test_captions_round_trip(tmp_path, scenes):
    captions = scene_captions(scenes)
    captions[999] = []  # an image without captions stays listed
    path = tmp_path / "captions.json"
    write_coco_captions(path, captions)
    assert read_coco_captions(path) == captions
    data = json.loads(path.read_text())
    assert set(data) == {"images", "annotations"}
    first = data["annotations"][0]
    assert first == {"id": 1, "image_id": scenes[0].seed, "caption": scenes[0].captions[0]}


def test_captions_keep_image_entries(tmp_path):
    images = [{"id": 3, "file_name": "3.png", "width": 32, "height": 32}]
    path = tmp_path / "captions.json"
    write_coco_captions(path, {3: ["a red circle"]}, images=images)
    assert json.loads(path.read_text())["images"] == images
    with pytest.raises(ValueError, match="not in images"):
        write_coco_captions(path, {4: ["a red circle"]}, images=images)


def test_results_round_trip(tmp_path):
    path = tmp_path / "results.json"
    write_coco_caption_results(path, {4: "a red circle", 9: "two shapes"})
    assert json.loads(path.read_text()) == [
        {"image_id": 4, "caption": "a red circle"}, {"image_id": 9, "caption": "two shapes"}
    ]
    assert read_coco_captions(path) == {4: ["a red circle"], 9: ["two shapes"]}
    with pytest.raises(ValueError, match="not a string"):
        write_coco_caption_results(path, {4: ["a list"]})


def test_results_form_is_read(tmp_path):
    path = tmp_path / "results.json"
    results = [{"image_id": 1, "caption": "a"}, {"image_id": 2, "caption": "b"}]
    path.write_text(json.dumps([*results, {"image_id": 1, "caption": "c"}]))
    assert read_coco_captions(path) == {1: ["a", "c"], 2: ["b"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"images": []}', "no 'annotations'"),
        ('{"annotations": [{"image_id": 1}]}', r"annotations\[0\] has no 'caption'"),
        ('{"annotations": [{"image_id": "1", "caption": "a"}]}', "must be an integer"),
        ('{"annotations": [{"image_id": 1, "caption": 5}]}', "must be a string"),
        ('{"images": [{"id": 1}], "annotations": [{"image_id": 2, "caption": "a"}]}',
         "image_id 2 is not in 'images'"),
        ('{"images": [{"id": 1}, {"id": 1}], "annotations": []}', "listed twice"),
        ('"a string"', "expected an object or a list"),
    ],
)
def test_bad_caption_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFormatError, match=message) as error:
        read_coco_captions(path)
    assert "bad.json" in str(error.value)


def test_missing_caption_file(tmp_path):
    with pytest.raises(CocoFormatError, match="no such file"):
        read_coco_captions(tmp_path / "nowhere.json")


# --- panoptic ---


def test_segment_id_colours():
    ids = np.array([[0, 1, 255], [256, 65536, 256**3 - 1]])
    rgb = id_to_rgb(ids)
    assert rgb[1, 0].tolist() == [0, 1, 0] and rgb[1, 1].tolist() == [0, 0, 1]
    assert np.array_equal(rgb_to_id(rgb), ids)
    with pytest.raises(ValueError, match="segment ids"):
        id_to_rgb(np.array([256**3]))


def test_scene_panoptic_categories(scenes):
    scene = scenes[0]
    panoptic = scene_panoptic(scene)
    assert np.array_equal(panoptic[..., 1], scene.panoptic)
    assert (panoptic[..., 0][scene.panoptic == 0] == 0).all()
    for k, cls in enumerate(scene.classes):
        assert (panoptic[..., 0][scene.masks[k]] == cls + 1).all()
    assert stuff_categories(SHAPES_PANOPTIC_CATEGORIES) == {0}


def test_segments_info_of_a_scene(scenes):
    scene = scenes[1]
    segment_ids, info = panoptic_to_segments(scene_panoptic(scene), SHAPES_PANOPTIC_CATEGORIES)
    assert info[0]["category_id"] == 9 and info[0]["id"] == 1  # background first
    for k, segment in enumerate(info[1:]):
        ymin, xmin, ymax, xmax = scene.boxes[k].tolist()
        assert segment["id"] == k + 2
        assert segment["category_id"] == int(scene.classes[k]) + 1  # the detection ids
        assert segment["bbox"] == [xmin, ymin, xmax - xmin, ymax - ymin]
        assert segment["area"] == int(scene.masks[k].sum())
        assert segment["iscrowd"] == 0
        assert np.array_equal(segment_ids == segment["id"], scene.masks[k])


def test_panoptic_round_trip_of_scenes(tmp_path, scenes):
    images = [PanopticImage(s.seed, scene_panoptic(s), f"{s.seed}.png") for s in scenes]
    json_path = tmp_path / "panoptic_val.json"
    write_coco_panoptic(json_path, images, SHAPES_PANOPTIC_CATEGORIES)
    assert (tmp_path / "panoptic_val" / f"{scenes[0].seed}.png").is_file()
    back, categories = read_coco_panoptic(json_path)
    assert categories == list(SHAPES_PANOPTIC_CATEGORIES)
    assert [b.image_id for b in back] == [s.seed for s in scenes]
    assert [b.file_name for b in back] == [f"{s.seed}.png" for s in scenes]
    for image, read in zip(images, back, strict=True):
        assert read.panoptic.dtype == np.int64
        assert np.array_equal(read.panoptic, image.panoptic)


def test_read_maps_feed_the_reward(tmp_path, scenes):
    """A file's maps, void included, are what the PQ reward takes: read back, they score 1."""
    originals = np.stack([scene_panoptic(s) for s in scenes])
    originals[:, :4] = [VOID, 0]  # unlabelled top rows, as real COCO files have
    images = [PanopticImage(s.seed, m) for s, m in zip(scenes, originals, strict=True)]
    write_coco_panoptic(tmp_path / "p.json", images, SHAPES_PANOPTIC_CATEGORIES)
    back, categories = read_coco_panoptic(tmp_path / "p.json")
    targets = torch.tensor(np.stack([b.panoptic for b in back]))
    preds = torch.tensor(originals).clamp(min=0)  # anything may be predicted on void
    rewards = panoptic_quality(preds, targets, stuffs=stuff_categories(categories))
    assert rewards.tolist() == [1.0] * len(scenes)


def _canonical(panoptic: np.ndarray) -> np.ndarray:
    """The same partition with segments numbered by first appearance (ids are only labels)."""
    _, first, inverse = np.unique(
        panoptic.reshape(-1, 2), axis=0, return_index=True, return_inverse=True
    )
    rank = np.argsort(np.argsort(first))
    return np.stack([panoptic[..., 0].ravel(), rank[inverse.ravel()]], axis=-1)


def test_panoptic_round_trip_of_arbitrary_maps(tmp_path):
    """Void, stuff with instance ids, things sharing an instance id across categories."""
    rng = np.random.default_rng(0)
    categories = [
        {"id": 7, "name": "sky", "isthing": 0},
        {"id": 3, "name": "cat", "isthing": 1},
        {"id": 5, "name": "dog", "isthing": 1},
    ]
    category = rng.integers(VOID, 3, size=(2, 12, 10)).repeat(2, axis=1)
    instance = rng.integers(0, 4, size=(2, 12, 10)).repeat(2, axis=1)
    maps = np.stack([category, instance], axis=-1)
    json_path = tmp_path / "p.json"
    write_coco_panoptic(json_path, [PanopticImage(i, m) for i, m in enumerate(maps)], categories)
    back, _ = read_coco_panoptic(json_path, png_dir=tmp_path / "p")
    for original, read in zip(maps, back, strict=True):
        thing = original[..., 0] >= 1
        expected = np.stack([original[..., 0], np.where(thing, original[..., 1], 0)], axis=-1)
        assert (read.panoptic[..., 0] == original[..., 0]).all()
        assert (read.panoptic[..., 1][~thing] == 0).all()  # void and stuff have no instance
        assert np.array_equal(_canonical(read.panoptic), _canonical(expected))


def _write_one(tmp_path, segment_ids: np.ndarray, segments_info: list) -> str:
    (tmp_path / "p").mkdir(exist_ok=True)
    Image.fromarray(id_to_rgb(segment_ids)).save(tmp_path / "p" / "1.png")
    data = {
        "images": [{"id": 1}],
        "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": segments_info}],
        "categories": list(SHAPES_PANOPTIC_CATEGORIES),
    }
    (tmp_path / "p.json").write_text(json.dumps(data))
    return str(tmp_path / "p.json")


@pytest.mark.parametrize(
    ("segments_info", "message"),
    [
        ([{"id": 1, "category_id": 9}], r"PNG segment ids \[2\] are not in segments_info"),
        ([{"id": 1, "category_id": 9}, {"id": 2, "category_id": 1}, {"id": 3, "category_id": 1}],
         r"ids \[3\] are not in the PNG"),
        ([{"id": 1, "category_id": 9}, {"id": 2, "category_id": 42}], "42 is not a category"),
        ([{"id": 1, "category_id": 9}, {"id": 1, "category_id": 1}], "repeated"),
        ([{"id": 1}], "needs 'id' and 'category_id'"),
    ],
)
def test_bad_panoptic_files_name_the_problem(tmp_path, segments_info, message):
    segment_ids = np.array([[0, 1], [1, 2]])
    path = _write_one(tmp_path, segment_ids, segments_info)
    with pytest.raises(CocoFormatError, match=message) as error:
        read_coco_panoptic(path)
    assert "annotations[0]" in str(error.value)


def test_void_pixels_read_as_void(tmp_path):
    path = _write_one(tmp_path, np.array([[0, 1], [1, 2]]),
                      [{"id": 1, "category_id": 9}, {"id": 2, "category_id": 1}])
    (image,), _ = read_coco_panoptic(path)
    assert image.panoptic.tolist() == [[[VOID, 0], [0, 0]], [[0, 0], [1, 1]]]


def test_crowd_segments_read_as_void(tmp_path):
    path = _write_one(
        tmp_path, np.array([[3, 1], [1, 2]]),
        [{"id": 1, "category_id": 9}, {"id": 2, "category_id": 1},
         {"id": 3, "category_id": 2, "iscrowd": 1}],
    )
    (image,), _ = read_coco_panoptic(path)
    assert image.panoptic.tolist() == [[[VOID, 0], [0, 0]], [[0, 0], [1, 1]]]


def test_missing_png_and_bad_json(tmp_path):
    path = _write_one(tmp_path, np.array([[1]]), [{"id": 1, "category_id": 9}])
    (tmp_path / "p" / "1.png").unlink()
    with pytest.raises(CocoFormatError, match="not found"):
        read_coco_panoptic(path)
    (tmp_path / "q.json").write_text('{"annotations": []}')
    with pytest.raises(CocoFormatError, match="no 'categories' list"):
        read_coco_panoptic(tmp_path / "q.json")


def test_writing_a_bad_map_is_refused(tmp_path):
    bad = np.zeros((4, 4, 2), dtype=np.int64)
    bad[0, 0, 0] = len(SHAPES_PANOPTIC_CATEGORIES)
    with pytest.raises(ValueError, match="categories must lie"):
        write_coco_panoptic(
            tmp_path / "p.json", [PanopticImage(1, bad)], SHAPES_PANOPTIC_CATEGORIES
        )
