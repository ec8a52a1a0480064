"""COCO captions files: read and write reference captions and model captions.

The dataset form is COCO's `captions_*.json`:
`{"images": [{"id", ...}], "annotations": [{"id", "image_id", "caption"}]}`; the results form,
in which COCO takes a model's captions, is a list `[{"image_id", "caption"}]`. Both read into
`{image_id: [caption, ...]}`. A file that breaks the format raises `CocoFormatError` (the one of
`trainer.data.coco`), whose message names the file and the offending entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer.data.coco import CocoFormatError
from trainer.data.shapes import Scene


def load_json(path: str | Path) -> Any:
    """The parsed JSON of `path`, or CocoFormatError naming the file."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise CocoFormatError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CocoFormatError(f"{path}: not valid JSON ({error})") from None


def require_int(value: Any, where: str) -> int:
    """`value` as an int (JSON integers only, not booleans or strings), or CocoFormatError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CocoFormatError(f"{where} must be an integer, got {value!r}")
    return value


def _annotation(entry: Any, where: str) -> tuple[int, str]:
    if not isinstance(entry, dict):
        raise CocoFormatError(f"{where} must be an object, got {entry!r}")
    for key in ("image_id", "caption"):
        if key not in entry:
            raise CocoFormatError(f"{where} has no {key!r}")
    if not isinstance(entry["caption"], str):
        raise CocoFormatError(f"{where}.caption must be a string, got {entry['caption']!r}")
    return require_int(entry["image_id"], f"{where}.image_id"), entry["caption"]


def read_coco_captions(path: str | Path) -> dict[int, list[str]]:
    """Captions per image id from a COCO captions file (dataset or results form).

    In the dataset form, every image of "images" is a key (with [] if it has no caption), and an
    annotation of an image not listed there is an error. Captions keep the file's order.
    """
    data = load_json(path)
    if isinstance(data, list):  # results form
        annotations, images = data, None
    elif isinstance(data, dict):
        if "annotations" not in data:
            raise CocoFormatError(f"{path}: no 'annotations' list")
        annotations, images = data["annotations"], data.get("images")
    else:
        raise CocoFormatError(f"{path}: expected an object or a list, got {type(data).__name__}")
    if not isinstance(annotations, list):
        raise CocoFormatError(f"{path}: 'annotations' must be a list")

    captions: dict[int, list[str]] = {}
    if images is not None:
        if not isinstance(images, list):
            raise CocoFormatError(f"{path}: 'images' must be a list")
        for index, image in enumerate(images):
            if not isinstance(image, dict) or "id" not in image:
                raise CocoFormatError(f"{path}: images[{index}] has no 'id'")
            image_id = require_int(image["id"], f"{path}: images[{index}].id")
            if image_id in captions:
                raise CocoFormatError(f"{path}: images[{index}].id {image_id} is listed twice")
            captions[image_id] = []
    for index, entry in enumerate(annotations):
        image_id, caption = _annotation(entry, f"{path}: annotations[{index}]")
        if images is None:
            captions.setdefault(image_id, [])
        elif image_id not in captions:
            raise CocoFormatError(
                f"{path}: annotations[{index}].image_id {image_id} is not in 'images'"
            )
        captions[image_id].append(caption)
    return captions


def write_coco_captions(
    path: str | Path,
    captions: Mapping[int, Sequence[str]],
    *,
    images: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write `{image_id: [caption, ...]}` as a COCO captions file (dataset form).

    `images` are the COCO image entries (`id`, and `file_name`, `width`, `height` when known);
    by default `{"id": image_id}` for each key of `captions`. Annotation ids run from 1.
    """
    if images is None:
        images = [{"id": int(image_id)} for image_id in captions]
    listed = {int(image["id"]) for image in images}
    annotations = []
    for image_id, texts in captions.items():
        if int(image_id) not in listed:
            raise ValueError(f"captions of image {image_id}, which is not in images")
        if isinstance(texts, str):
            raise ValueError(f"captions of image {image_id} must be a list of strings")
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"caption of image {image_id} is not a string: {text!r}")
            annotations.append(
                {"id": len(annotations) + 1, "image_id": int(image_id), "caption": text}
            )
    data = {"images": [dict(image) for image in images], "annotations": annotations}
    Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")


def write_coco_caption_results(path: str | Path, captions: Mapping[int, str]) -> None:
    """Write a model's caption per image id in COCO's results form `[{"image_id", "caption"}]`."""
    results = []
    for image_id, caption in captions.items():
        if not isinstance(caption, str):
            raise ValueError(f"caption of image {image_id} is not a string: {caption!r}")
        results.append({"image_id": int(image_id), "caption": caption})
    Path(path).write_text(json.dumps(results, indent=1), encoding="utf-8")


def scene_captions(scenes: Iterable[Scene]) -> dict[int, list[str]]:
    """Reference captions of Synthetic Shapes scenes, keyed by seed (a scene's image id)."""
    return {int(scene.seed): list(scene.captions) for scene in scenes}
