"""COCO panoptic files: PNG segment maps plus JSON `segments_info`, to and from panoptic maps.

Inside the trainer a panoptic map is `(H, W, 2)` int64, (category, instance) per pixel, the
layout torchmetrics' PanopticQuality and `trainer.rewards.panoptic` take. The category is a
position in a list of COCO categories `{"id", "name", "isthing"}` (as detection uses list
positions for classes), `VOID` (-1) marks unlabelled pixels, and the instance tells apart the
segments of a thing category (it is 0 for stuff and void).

In COCO's format (`panoptic_*.json` next to a folder of PNGs with the same stem) each PNG holds a
segment id per pixel as RGB, `id = R + 256 G + 256^2 B`, 0 being void; the JSON's annotation for
the image lists each segment's `{"id", "category_id", "iscrowd", "bbox": [x, y, w, h], "area"}`.
Crowd segments read as void (see `segments_to_panoptic`); written segments are never crowds.

Synthetic Shapes: the background is the one stuff category, at position 0 (COCO id 9, after the
shapes), and shape class k is the thing at position k + 1 with COCO id k + 1, the detection ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trainer.data.coco import CocoFormatError
from trainer.data.coco_captions import load_json, require_int
from trainer.data.shapes import CLASS_NAMES, Scene

VOID = -1  # category of unlabelled pixels (segment id 0 in COCO files)
SHAPES_PANOPTIC_CATEGORIES: tuple[dict, ...] = (
    {"id": len(CLASS_NAMES) + 1, "name": "background", "isthing": 0},
    *({"id": k + 1, "name": name, "isthing": 1} for k, name in enumerate(CLASS_NAMES)),
)
_MAX_SEGMENT_ID = 256**3 - 1  # what three 8-bit channels can hold


@dataclass(frozen=True, eq=False)
class PanopticImage:
    """One image's panoptic ground truth or prediction."""

    image_id: int
    panoptic: np.ndarray  # (H, W, 2) int64: category position (VOID = -1), instance id
    file_name: str | None = None  # the image's own file (COCO "images" entry), when known


def scene_panoptic(scene: Scene) -> np.ndarray:
    """A Synthetic Shapes scene's panoptic map (H, W, 2) int64 in SHAPES_PANOPTIC_CATEGORIES.

    Category 0 is the background (instance 0), category k + 1 is shape class k; the instance is
    the scene's instance number (object k is instance k + 1).
    """
    instance = scene.panoptic.astype(np.int64)
    category = np.concatenate([[0], scene.classes + 1])[instance]
    return np.stack([category, instance], axis=-1)


def stuff_categories(categories: Sequence[dict]) -> frozenset[int]:
    """Positions of the stuff categories (`isthing` 0), for the panoptic reward and metrics."""
    return frozenset(i for i, category in enumerate(categories) if not category.get("isthing", 1))


def id_to_rgb(segment_ids: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG colours of segment ids: (H, W) ints in [0, 256^3) -> (H, W, 3) uint8."""
    ids = np.asarray(segment_ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() > _MAX_SEGMENT_ID):
        raise ValueError(f"segment ids must lie in [0, {_MAX_SEGMENT_ID}]")
    return np.stack([ids % 256, ids // 256 % 256, ids // 256**2], axis=-1).astype(np.uint8)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of COCO panoptic PNG colours: (H, W, 3) uint8 -> (H, W) int64."""
    rgb = np.asarray(rgb, dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]


def panoptic_to_segments(
    panoptic: np.ndarray, categories: Sequence[dict]
) -> tuple[np.ndarray, list[dict]]:
    """A panoptic map (H, W, 2) as COCO segment ids (H, W) int64 and their `segments_info`.

    Segments are numbered from 1 in order of (instance, category), stuff first (instance 0), so
    a Synthetic Shapes scene's object k is segment k + 2. Void pixels get segment id 0.
    """
    panoptic = np.asarray(panoptic)
    if panoptic.ndim != 3 or panoptic.shape[-1] != 2 or panoptic.dtype.kind not in "iu":
        raise ValueError(f"a panoptic map must be (H, W, 2) integers, got {panoptic.shape}")
    category = panoptic[..., 0].astype(np.int64)
    if category.size and (category.min() < VOID or category.max() >= len(categories)):
        raise ValueError(f"categories must lie in [{VOID}, {len(categories)})")
    if (panoptic[..., 1] < 0).any():
        raise ValueError("instance ids must be >= 0")
    # The extra last entry is what VOID (-1) indexes: void is one segment, like a stuff.
    is_stuff = np.array([not c.get("isthing", 1) for c in categories] + [True])
    # Stuff and void have one segment per category: their instance does not count.
    instance = np.where(is_stuff[category], 0, panoptic[..., 1].astype(np.int64))
    keys = np.stack([instance.ravel(), category.ravel()], axis=1)
    labelled = category.ravel() != VOID
    pairs, inverse = np.unique(keys[labelled], axis=0, return_inverse=True)
    segment_ids = np.zeros(category.size, dtype=np.int64)
    segment_ids[labelled] = inverse.ravel() + 1
    segment_ids = segment_ids.reshape(category.shape)

    # Tight boxes and areas of all segments at once.
    rows, cols = np.indices(category.shape).reshape(2, -1)[:, labelled]
    owner = inverse.ravel()
    count = len(pairs)
    area = np.bincount(owner, minlength=count)
    top, left = np.full(count, category.shape[0]), np.full(count, category.shape[1])
    bottom, right = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    np.minimum.at(top, owner, rows)
    np.minimum.at(left, owner, cols)
    np.maximum.at(bottom, owner, rows)
    np.maximum.at(right, owner, cols)
    segments_info = [
        {
            "id": index + 1,
            "category_id": int(categories[int(pairs[index, 1])]["id"]),
            "iscrowd": 0,
            "bbox": [int(left[index]), int(top[index]),
                     int(right[index] - left[index] + 1), int(bottom[index] - top[index] + 1)],
            "area": int(area[index]),
        }
        for index in range(count)
    ]
    return segment_ids, segments_info


def segments_to_panoptic(
    segment_ids: np.ndarray, segments_info: Sequence[dict], categories: Sequence[dict],
    *, where: str = "segments",
) -> np.ndarray:
    """COCO segment ids (H, W) and `segments_info` as a panoptic map (H, W, 2) int64.

    A thing segment's instance is its rank among the image's thing segments by id (1, 2, ...);
    stuff and void get instance 0. Crowd segments (`iscrowd` 1) are read as void: COCO's
    evaluation neither matches them nor counts them as missed, and void comes closest (it also
    forgives predictions of other categories there). Raises CocoFormatError, prefixed with
    `where`, when a segment is in the PNG but not in `segments_info` or the other way round, or
    has an unknown category.
    """
    position = {int(c["id"]): i for i, c in enumerate(categories)}
    # The extra last entry is what VOID (-1) indexes.
    is_stuff = np.array([not c.get("isthing", 1) for c in categories] + [True])
    ids, category_of, seen = [], [], set()
    for index, segment in enumerate(segments_info):
        if not isinstance(segment, dict) or "id" not in segment or "category_id" not in segment:
            raise CocoFormatError(f"{where}[{index}] needs 'id' and 'category_id'")
        segment_id = require_int(segment["id"], f"{where}[{index}].id")
        category_id = require_int(segment["category_id"], f"{where}[{index}].category_id")
        if category_id not in position:
            raise CocoFormatError(f"{where}[{index}].category_id {category_id} is not a category")
        if segment_id in seen or not 0 < segment_id <= _MAX_SEGMENT_ID:
            raise CocoFormatError(f"{where}[{index}].id {segment_id} is repeated or out of range")
        seen.add(segment_id)
        ids.append(segment_id)
        category_of.append(VOID if segment.get("iscrowd", 0) else position[category_id])

    present = np.unique(segment_ids)
    present = present[present != 0]
    unknown = np.setdiff1d(present, ids)
    if unknown.size:
        raise CocoFormatError(
            f"{where}: PNG segment ids {unknown.tolist()} are not in segments_info"
        )
    absent = np.setdiff1d(ids, present)
    if absent.size:
        raise CocoFormatError(f"{where}: segments_info ids {absent.tolist()} are not in the PNG")
    void = segment_ids == 0
    if not ids:
        return np.stack([np.full_like(segment_ids, VOID), np.zeros_like(segment_ids)], axis=-1)

    order = np.argsort(ids)
    sorted_ids = np.asarray(ids, dtype=np.int64)[order]
    sorted_category = np.asarray(category_of, dtype=np.int64)[order]
    thing = ~is_stuff[sorted_category]
    sorted_instance = np.where(thing, np.cumsum(thing), 0)
    slot = np.where(void, 0, np.searchsorted(sorted_ids, segment_ids))
    category = np.where(void, VOID, sorted_category[slot])
    instance = np.where(void, 0, sorted_instance[slot])
    return np.stack([category, instance], axis=-1).astype(np.int64)


def png_folder(json_path: str | Path) -> Path:
    """COCO's layout: the PNGs of `panoptic_val2017.json` are in `panoptic_val2017/`."""
    return Path(json_path).with_suffix("")


def write_coco_panoptic(
    json_path: str | Path, images: Sequence[PanopticImage], categories: Sequence[dict]
) -> None:
    """Write panoptic maps as a COCO panoptic JSON and a folder of PNGs (see `png_folder`).

    Each image's PNG is `<image_id>.png`; its "images" entry has `file_name` when known.
    """
    folder = png_folder(json_path)
    folder.mkdir(parents=True, exist_ok=True)
    image_entries, annotations = [], []
    for image in images:
        segment_ids, segments_info = panoptic_to_segments(image.panoptic, categories)
        png_name = f"{image.image_id}.png"
        Image.fromarray(id_to_rgb(segment_ids)).save(folder / png_name)
        height, width = segment_ids.shape
        entry = {"id": int(image.image_id), "height": height, "width": width}
        if image.file_name is not None:
            entry["file_name"] = image.file_name
        image_entries.append(entry)
        annotations.append(
            {"image_id": int(image.image_id), "file_name": png_name, "segments_info": segments_info}
        )
    data = {
        "images": image_entries,
        "annotations": annotations,
        "categories": [
            {"id": int(c["id"]), "name": str(c["name"]), "isthing": int(c.get("isthing", 1))}
            for c in categories
        ],
    }
    Path(json_path).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _list(data: dict, key: str, path: str | Path) -> list:
    if not isinstance(data.get(key), list):
        raise CocoFormatError(f"{path}: no {key!r} list")
    return data[key]


def read_coco_panoptic(
    json_path: str | Path, png_dir: str | Path | None = None
) -> tuple[list[PanopticImage], list[dict]]:
    """Panoptic maps and categories of a COCO panoptic JSON; PNGs in `png_dir` or COCO's layout.

    Category positions follow the file's "categories" list. Raises CocoFormatError naming the
    file and entry on any departure from the format.
    """
    data = load_json(json_path)
    if not isinstance(data, dict):
        raise CocoFormatError(f"{json_path}: expected a JSON object")
    categories = _list(data, "categories", json_path)
    for index, category in enumerate(categories):
        if not isinstance(category, dict) or "id" not in category:
            raise CocoFormatError(f"{json_path}: categories[{index}] has no 'id'")
        require_int(category["id"], f"{json_path}: categories[{index}].id")
    file_names = {}
    for index, entry in enumerate(data.get("images", [])):
        if isinstance(entry, dict) and "id" in entry:
            file_names[entry["id"]] = entry.get("file_name")
        else:
            raise CocoFormatError(f"{json_path}: images[{index}] has no 'id'")
    folder = Path(png_dir) if png_dir is not None else png_folder(json_path)

    images: list[PanopticImage] = []
    seen_images: set[int] = set()
    for index, annotation in enumerate(_list(data, "annotations", json_path)):
        where = f"{json_path}: annotations[{index}]"
        if not isinstance(annotation, dict):
            raise CocoFormatError(f"{where} must be an object")
        for key in ("image_id", "file_name", "segments_info"):
            if key not in annotation:
                raise CocoFormatError(f"{where} has no {key!r}")
        image_id = require_int(annotation["image_id"], f"{where}.image_id")
        if image_id in seen_images:
            raise CocoFormatError(f"{where}: image {image_id} has a second annotation")
        seen_images.add(image_id)
        if not isinstance(annotation["segments_info"], list):
            raise CocoFormatError(f"{where}.segments_info must be a list")
        png_path = folder / str(annotation["file_name"])
        try:
            with Image.open(png_path) as png:
                rgb = np.asarray(png.convert("RGB"))
        except FileNotFoundError:
            raise CocoFormatError(f"{where}: PNG {png_path} not found") from None
        except OSError as error:
            raise CocoFormatError(f"{where}: {png_path} is not a readable PNG ({error})") from None
        panoptic = segments_to_panoptic(
            rgb_to_id(rgb), annotation["segments_info"], categories,
            where=f"{where}.segments_info",
        )
        images.append(PanopticImage(image_id, panoptic, file_names.get(image_id)))
    return images, [dict(c) for c in categories]
