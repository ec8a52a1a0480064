"""Parsers of the field's annotation formats, each checking every record up front.

- COCO instances (`images`, `annotations` with `bbox`, `categories`): detection ground truth.
- COCO results (a list of `{"image_id", "category_id", "bbox", "score"}`): detection outputs.
- COCO captions (`images`, `annotations` with `caption`): captioning ground truth; COCO caption
  results (a list of `{"image_id", "caption"}`): captioning outputs.
- COCO panoptic (`images`, `annotations` with `file_name` and `segments_info`, `categories`),
  with one PNG per image whose colour is the segment id (R + 256 G + 256^2 B).

Parsers take a `Checker` (which file, where problems go) and the raw bytes, and return plain
data keyed by COCO image id; images are matched to files and items by the import service.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.checks import Checker

# The width and height of the image a COCO file names, or None when it names no image the
# import has (reported already).
SizeOf = Callable[[str], tuple[int, int] | None]


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int | None
    height: int | None
    path: str  # where it is in its file, for messages: "images[3]"


@dataclass
class Annotated:
    """What one COCO file says: its images and categories, and records by image id."""

    images: dict[int, CocoImage] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)
    by_image: dict[int, list[Any]] = field(default_factory=dict)


def _optional_int(checker: Checker, record: dict, key: str, path: str) -> int | None:
    return checker.integer(record[key], f"{path}.{key}") if key in record else None


def _images(checker: Checker, document: dict) -> dict[int, CocoImage]:
    images: dict[int, CocoImage] = {}
    names: set[str] = set()
    for path, record in checker.records(document, "images"):
        image_id = checker.integer(checker.field(record, "id", path), f"{path}.id")
        name = checker.text(checker.field(record, "file_name", path), f"{path}.file_name")
        width = _optional_int(checker, record, "width", path)
        height = _optional_int(checker, record, "height", path)
        if image_id is None or name is None:
            continue
        if image_id in images:
            checker.fail(f"{path}.id", f"image id {image_id} appears twice.")
        elif name in names:
            checker.fail(f"{path}.file_name", f"{name!r} appears twice.")
        else:
            images[image_id] = CocoImage(image_id, name, width, height, path)
            names.add(name)
    return images


def _categories(checker: Checker, document: dict) -> dict[int, str]:
    categories: dict[int, str] = {}
    for path, record in checker.records(document, "categories"):
        category_id = checker.integer(checker.field(record, "id", path), f"{path}.id")
        name = checker.text(checker.field(record, "name", path), f"{path}.name")
        if category_id is None or name is None:
            continue
        if category_id in categories:
            checker.fail(f"{path}.id", f"category id {category_id} appears twice.")
        else:
            categories[category_id] = name
    return categories


def _image_id(checker: Checker, record: dict, path: str, images: dict[int, CocoImage],
              images_file: str) -> int | None:
    image_id = checker.integer(checker.field(record, "image_id", path), f"{path}.image_id")
    if image_id is not None and image_id not in images:
        checker.fail(f"{path}.image_id", f"{image_id} is not an image of {images_file}.")
        return None
    return image_id


def _category_id(checker: Checker, record: dict, path: str, categories: set[int] | dict
                 ) -> int | None:
    category_id = checker.integer(
        checker.field(record, "category_id", path), f"{path}.category_id"
    )
    if category_id is not None and category_id not in categories:
        checker.fail(f"{path}.category_id",
                     f"{category_id} is not a category (known: {sorted(categories)}).")
        return None
    return category_id


def _box(checker: Checker, record: dict, path: str, image: CocoImage | None, size_of: SizeOf,
         name: str) -> list[float] | None:
    """The record's bbox, checked to lie inside its image when the image is known."""
    size = size_of(image.file_name) if image is not None else None
    return checker.bbox(checker.field(record, "bbox", path), f"{path}.bbox", name=name,
                        image=(image.file_name, *size) if size is not None else None)


def _document(checker: Checker, data: bytes) -> dict | None:
    document = checker.load(data)
    return None if document is None else checker.mapping(document, "")


def _results(checker: Checker, data: bytes) -> list[tuple[str, dict]]:
    document = checker.load(data)
    if document is None or checker.array(document, "") is None:
        return []
    out = []
    for index, record in enumerate(document):
        if checker.mapping(record, f"[{index}]") is not None:
            out.append((f"[{index}]", record))
    return out


def _crowd(checker: Checker, record: dict, path: str) -> bool:
    crowd = record.get("iscrowd", 0)
    if crowd not in (0, 1) or type(crowd) is bool:
        checker.fail(f"{path}.iscrowd", f"expected 0 or 1, got {crowd!r}.")
        return False
    return crowd == 1


def parse_instances(checker: Checker, data: bytes, size_of: SizeOf) -> Annotated:
    """COCO instances: by_image holds ground-truth objects {"bbox", "category_id"} (and
    "iscrowd": 1 for crowd regions); each box inside its image."""
    parsed = Annotated()
    if (document := _document(checker, data)) is None:
        return parsed
    parsed.images = _images(checker, document)
    parsed.categories = _categories(checker, document)
    for path, record in checker.records(document, "annotations"):
        image_id = _image_id(checker, record, path, parsed.images, checker.file)
        category_id = _category_id(checker, record, path, parsed.categories)
        name = f"annotation {record['id']}'s box" if "id" in record else "the box"
        bbox = _box(checker, record, path, parsed.images.get(image_id), size_of, name)
        crowd = _crowd(checker, record, path)
        if image_id is not None and category_id is not None and bbox is not None:
            target = {"bbox": bbox, "category_id": category_id} | ({"iscrowd": 1} if crowd
                                                                   else {})
            parsed.by_image.setdefault(image_id, []).append(target)
    return parsed


def parse_detection_results(checker: Checker, data: bytes, images: dict[int, CocoImage],
                            images_file: str, categories: set[int], size_of: SizeOf
                            ) -> dict[int, list[dict]]:
    """COCO results for detection: objects {"bbox", "category_id", "score"} by image id, best
    score first; each box inside its image."""
    by_image: dict[int, list[dict]] = {}
    for path, record in _results(checker, data):
        image_id = _image_id(checker, record, path, images, images_file)
        category_id = _category_id(checker, record, path, categories)
        bbox = _box(checker, record, path, images.get(image_id), size_of, "the box")
        score = checker.number(checker.field(record, "score", path), f"{path}.score")
        if None not in (image_id, category_id, bbox, score):
            by_image.setdefault(image_id, []).append(
                {"bbox": bbox, "category_id": category_id, "score": score}
            )
    for objects in by_image.values():
        objects.sort(key=lambda obj: -obj["score"])
    return by_image


def parse_captions(checker: Checker, data: bytes) -> Annotated:
    """COCO captions: by_image holds the reference captions of each image."""
    parsed = Annotated()
    if (document := _document(checker, data)) is None:
        return parsed
    parsed.images = _images(checker, document)
    for path, record in checker.records(document, "annotations"):
        image_id = _image_id(checker, record, path, parsed.images, checker.file)
        caption = checker.text(checker.field(record, "caption", path), f"{path}.caption")
        if image_id is not None and caption is not None:
            parsed.by_image.setdefault(image_id, []).append(caption.strip())
    return parsed


def parse_caption_results(checker: Checker, data: bytes, images: dict[int, CocoImage],
                          images_file: str) -> dict[int, str]:
    """COCO caption results: one caption per image id."""
    captions: dict[int, str] = {}
    for path, record in _results(checker, data):
        image_id = _image_id(checker, record, path, images, images_file)
        caption = checker.text(checker.field(record, "caption", path), f"{path}.caption")
        if image_id is None or caption is None:
            continue
        if image_id in captions:
            checker.fail(f"{path}.image_id", f"image {image_id} has a caption already.")
        else:
            captions[image_id] = caption.strip()
    return captions


@dataclass(frozen=True)
class PanopticAnnotation:
    png: str  # the PNG's file name
    segments: list[dict]  # {"id", "category_id"} (+ "iscrowd": 1)
    path: str


def parse_panoptic(checker: Checker, data: bytes) -> Annotated:
    """COCO panoptic: by_image holds one PanopticAnnotation per image id."""
    parsed = Annotated()
    if (document := _document(checker, data)) is None:
        return parsed
    parsed.images = _images(checker, document)
    parsed.categories = _categories(checker, document)
    for path, record in checker.records(document, "annotations"):
        image_id = _image_id(checker, record, path, parsed.images, checker.file)
        png = checker.text(checker.field(record, "file_name", path), f"{path}.file_name")
        segments: list[dict] = []
        ids: set[int] = set()
        for info_path, info in checker.records(record, "segments_info", path):
            segment_id = checker.integer(checker.field(info, "id", info_path), f"{info_path}.id")
            category_id = _category_id(checker, info, info_path, parsed.categories)
            crowd = _crowd(checker, info, info_path)
            if segment_id is None or category_id is None:
                continue
            if segment_id <= 0 or segment_id in ids:
                checker.fail(f"{info_path}.id",
                             f"segment ids are positive and unique, got {segment_id}.")
                continue
            ids.add(segment_id)
            segments.append({"id": segment_id, "category_id": category_id}
                            | ({"iscrowd": 1} if crowd else {}))
        if image_id is None or png is None:
            continue
        if image_id in parsed.by_image:
            checker.fail(f"{path}.image_id", f"image {image_id} has an annotation already.")
        else:
            parsed.by_image[image_id] = [PanopticAnnotation(png, segments, path)]
    return parsed
