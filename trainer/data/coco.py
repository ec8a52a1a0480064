"""COCO files at the trainer's edge: a user's image folder with `instances.json`, and results.

`load_coco_dir(DIR)` reads `DIR/instances.json` (COCO instances format) and the images it names
(paths relative to DIR) into a `CocoDataset`, checking everything a user can get wrong and saying
which file and field is at fault (`CocoFormatError`). Crowd annotations (`iscrowd: 1`) are left
out of the training examples but kept in the ground truth, where COCO evaluation uses them.

`write_coco_dir` writes examples back as PNGs plus `instances.json` (tests, and exporting
Synthetic Shapes with `export_shapes_coco`). `detections_to_coco_results` turns the trainer's
detections into the COCO results list that pycocotools' `COCO.loadRes` reads as it is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from trainer.data.detection import (
    SHAPES_CATEGORIES,
    DetectionExample,
    DetectionSource,
    examples_to_coco_gt,
    scene_to_example,
)
from trainer.data.shapes import DEFAULT_CONFIG, Scene, ShapesConfig, generate_split

INSTANCES_FILE = "instances.json"


class CocoFormatError(ValueError):
    """A COCO folder or file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True, eq=False)
class CocoDataset(DetectionSource):
    """A user's COCO folder: its examples, categories, cleaned ground truth and location."""

    root: Path


def _fail(where: Path | str, message: str) -> CocoFormatError:
    return CocoFormatError(f"{where}: {message}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise _fail(path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    if not isinstance(data, dict):
        raise _fail(path, "the top level must be an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _fail(path, f'"{key}" must be a list')
    return data


def _check_categories(path: Path, raw: list) -> list[dict]:
    categories, seen = [], set()
    for i, category in enumerate(raw):
        where = f"categories[{i}]"
        if not isinstance(category, dict) or not _is_id(category.get("id")):
            raise _fail(path, f'{where}: "id" must be an integer')
        if not isinstance(category.get("name"), str) or not category["name"]:
            raise _fail(path, f'{where}: "name" must be a non-empty string')
        if category["id"] in seen:
            raise _fail(path, f"{where}: category id {category['id']} appears twice")
        seen.add(category["id"])
        categories.append({"id": category["id"], "name": category["name"]})
    if not categories:
        raise _fail(path, '"categories" is empty: a detector needs at least one category')
    # Sorted by id, so the contiguous class index does not depend on the file's order.
    return sorted(categories, key=lambda category: category["id"])


def _load_image(root: Path, path: Path, where: str, record: object) -> tuple[dict, np.ndarray]:
    if not isinstance(record, dict) or not _is_id(record.get("id")):
        raise _fail(path, f'{where}: "id" must be an integer')
    name = record.get("file_name")
    if not isinstance(name, str) or not name:
        raise _fail(path, f'{where}: "file_name" must be a non-empty string')
    file = (root / name).resolve()
    if not file.is_relative_to(root.resolve()):
        raise _fail(path, f'{where}: file_name "{name}" points outside {root}')
    if not file.is_file():
        raise _fail(path, f'{where}: image file "{name}" not found in {root}')
    try:
        with Image.open(file) as opened:
            image = np.array(opened.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise _fail(file, f"not a readable image ({error.__class__.__name__})") from None
    height, width = image.shape[:2]
    for key, actual in (("height", height), ("width", width)):
        if key in record and record[key] != actual:
            raise _fail(path, f'{where}: "{key}" is {record[key]} but "{name}" is {actual} px')
    return {"id": record["id"], "file_name": name, "height": height, "width": width}, image


def _check_annotation(
    path: Path, where: str, ann: object, images: dict[int, dict], category_ids: set[int]
) -> dict:
    if not isinstance(ann, dict):
        raise _fail(path, f"{where}: must be an object")
    if not _is_id(ann.get("image_id")) or ann["image_id"] not in images:
        raise _fail(path, f'{where}: "image_id" {ann.get("image_id")!r} is not an image id')
    if not _is_id(ann.get("category_id")) or ann["category_id"] not in category_ids:
        raise _fail(path, f'{where}: unknown "category_id" {ann.get("category_id")!r}')
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise _fail(path, f'{where}: "bbox" must be [x, y, width, height] numbers, got {bbox!r}')
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise _fail(path, f'{where}: "bbox" {bbox} has a width or height <= 0')
    image = images[ann["image_id"]]
    # Boxes a little past the border are common in real annotations: clip them to the image.
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(image["width"])), min(y + h, float(image["height"]))
    if x1 <= x0 or y1 <= y0:
        raise _fail(path, f'{where}: "bbox" {bbox} lies outside its {image["width"]}x'
                          f'{image["height"]} image "{image["file_name"]}"')
    iscrowd = ann.get("iscrowd", 0)
    if iscrowd not in (0, 1):
        raise _fail(path, f'{where}: "iscrowd" must be 0 or 1, got {iscrowd!r}')
    area = ann.get("area", (x1 - x0) * (y1 - y0))
    if not _is_number(area) or area < 0:
        raise _fail(path, f'{where}: "area" must be a number >= 0, got {area!r}')
    return {**ann, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(area), "iscrowd": iscrowd}


def load_coco_dir(path: str | Path) -> CocoDataset:
    """Read `path/instances.json` and its images; raise `CocoFormatError` on any bad input.

    Annotations get ids 1..N in file order (results never refer to them). Categories are sorted
    by id; a category's position is its contiguous class index.
    """
    root = Path(path)
    if not root.is_dir():
        raise _fail(root, "not a folder (expected a folder of images with instances.json)")
    file = root / INSTANCES_FILE
    if not file.is_file():
        raise _fail(root, f"no {INSTANCES_FILE} in this folder (a COCO instances file is needed)")
    data = _read_json(file)
    categories = _check_categories(file, data["categories"])
    category_ids = {category["id"] for category in categories}

    if not data["images"]:
        raise _fail(file, '"images" is empty: there is nothing to train or evaluate on')
    images: dict[int, dict] = {}
    pixels: dict[int, np.ndarray] = {}
    for i, record in enumerate(data["images"]):
        image, array = _load_image(root, file, f"images[{i}]", record)
        if image["id"] in images:
            raise _fail(file, f"images[{i}]: image id {image['id']} appears twice")
        images[image["id"]], pixels[image["id"]] = image, array

    annotations = [
        {**_check_annotation(file, f"annotations[{i}]", ann, images, category_ids), "id": i + 1}
        for i, ann in enumerate(data["annotations"])
    ]
    index = {category["id"]: k for k, category in enumerate(categories)}
    by_image: dict[int, list[dict]] = {image_id: [] for image_id in images}
    for ann in annotations:
        if not ann["iscrowd"]:
            by_image[ann["image_id"]].append(ann)
    examples = []
    for image_id, image in images.items():
        own = by_image[image_id]
        examples.append(
            DetectionExample(
                image=pixels[image_id],
                boxes=np.array(
                    [[y, x, y + h, x + w] for x, y, w, h in (a["bbox"] for a in own)],
                    dtype=np.float32,
                ).reshape(-1, 4),
                classes=np.array([index[a["category_id"]] for a in own], dtype=np.int64),
                image_id=image_id,
                file_name=image["file_name"],
            )
        )
    gt = {"images": list(images.values()), "annotations": annotations, "categories": categories}
    return CocoDataset(examples=examples, categories=categories, gt=gt, root=root)


def write_coco_dir(
    path: str | Path,
    examples: Sequence[DetectionExample],
    categories: Sequence[dict],
    gt: dict | None = None,
) -> Path:
    """Write each example's image as a PNG and `instances.json`; return the JSON's path.

    `gt` replaces the instances built from the examples (e.g. `scenes_to_coco`'s, with masks);
    its `file_name`s must be the examples' (`<image_id>.png` where an example has none).
    """
    root = Path(path)
    gt = gt if gt is not None else examples_to_coco_gt(examples, categories)
    names = {record["id"]: record["file_name"] for record in gt["images"]}
    for example in examples:
        target = root / names[example.image_id]
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(example.image).save(target)
    file = root / INSTANCES_FILE
    file.write_text(json.dumps(gt), encoding="utf-8")
    return file


def scenes_to_coco(scenes: Sequence[Scene]) -> dict:
    """COCO instances of Synthetic Shapes scenes, with each visible mask as an RLE segmentation
    and its pixel count as the area (as COCO's own annotations have)."""
    categories = [dict(category) for category in SHAPES_CATEGORIES]
    gt = examples_to_coco_gt([scene_to_example(scene) for scene in scenes], categories)
    masks = [mask for scene in scenes for mask in scene.masks]
    for ann, mask in zip(gt["annotations"], masks, strict=True):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        ann["area"] = float(mask.sum())
    return gt


def export_shapes_coco(
    path: str | Path, split: str, n: int, config: ShapesConfig = DEFAULT_CONFIG
) -> Path:
    """Write the first `n` scenes of a Synthetic Shapes split as a COCO folder."""
    scenes = generate_split(split, n, config)
    examples = [scene_to_example(scene) for scene in scenes]
    categories = [dict(category) for category in SHAPES_CATEGORIES]
    return write_coco_dir(path, examples, categories, gt=scenes_to_coco(scenes))


def _as_numpy(values: object) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def detections_to_coco_results(
    image_ids: Sequence[int] | np.ndarray | torch.Tensor,
    boxes: Sequence | np.ndarray | torch.Tensor,
    scores: Sequence | np.ndarray | torch.Tensor,
    classes: Sequence | np.ndarray | torch.Tensor,
    sizes: Sequence | np.ndarray | torch.Tensor,
    category_ids: Sequence[int],
    *,
    normalized: bool = True,
) -> list[dict]:
    """COCO results `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}` in pixels.

    Per image b: `boxes[b]` (N, 4) `[ymin, xmin, ymax, xmax]`, normalised to [0, 1] of the image
    (`normalized=True`) or in its pixels; `scores[b]`, `classes[b]` (N,) with contiguous class
    indices, where a class < 0 marks padding and is skipped; `sizes[b]` the original (H, W).
    Arrays may be padded (B, N, ...) tensors or per-image lists. Boxes are clipped to the image.
    """
    results = []
    for b, image_id in enumerate(_as_numpy(image_ids).tolist()):
        height, width = (float(v) for v in _as_numpy(sizes[b]))
        box = _as_numpy(boxes[b]).astype(np.float64).reshape(-1, 4)
        if normalized:
            box = box * np.array([height, width, height, width])
        box = np.clip(box, 0.0, [height, width, height, width])
        for (ymin, xmin, ymax, xmax), score, cls in zip(
            box.tolist(), _as_numpy(scores[b]).tolist(), _as_numpy(classes[b]).tolist(),
            strict=True,
        ):
            if cls < 0:
                continue
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[int(cls)]),
                    # Thousandths of a pixel: exact enough, and float32 noise stays out of files.
                    "bbox": [
                        round(v, 3)
                        for v in (xmin, ymin, max(xmax - xmin, 0.0), max(ymax - ymin, 0.0))
                    ],
                    "score": float(score),
                }
            )
    return results


def write_coco_results(path: str | Path, results: Sequence[dict]) -> Path:
    """Write a COCO results list as JSON (what `COCO.loadRes` and the COCO tools read)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(list(results)), encoding="utf-8")
    return file
