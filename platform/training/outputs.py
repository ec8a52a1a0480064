"""A model's outputs on images in the API's candidate format (docs/api.md), for every task.

The next round's candidates (`training.candidates`) and a run's before/after samples
(`training.samples`) both decode pictures of any size with a version's model and store what
the annotator UI draws (frontend/static/annotate/render/):

- detection: `{"objects": [{"bbox": [x, y, w, h], "category_id", "score"}]}` (pixels of the
  image, the categories' COCO ids in class order);
- captioning: `{"caption": "A red circle."}` (`trainer.render.caption_text`);
- colorization: `{"image_url"}`, the colorized image as a PNG at the picture's size;
- panoptic: `{"png_url", "overlay_url", "segments": [{"id", "category_id"}]}` as an import
  stores it: the COCO panoptic PNG of segment ids (which the UI repaints in the categories'
  colours, with outlines) and the translucent overlay drawn from it (`ingest.panoptic`), both
  at the picture's size.

Images reach the models as the trainer's batches bring them: stretched to the model's square
input (`collate`; colorization's `color_batch` with the picture's greyscale), and maps and
colours come back resized to the picture. Decoding is greedy at temperature 0, else a sample
at that temperature seeded by `seed`, so a sample can be drawn again. `decode` returns each
picture's raw output and `output` turns one into the API's format, storing its files through
`store`, so a caller writes files only for the outputs it keeps.

A panoptic model's map positions are the background (0) and its classes (k + 1); the outputs
name them by the categories of the same names (the background: a category named
"background"; where there is none, its pixels stay unlabelled), or by the model's own ids
(`SHAPES_PANOPTIC_CATEGORIES`' numbering: classes 1..K, the background K + 1) where no
categories are given.
"""

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ingest.panoptic import overlay_png
from trainer.data.coco import detections_to_coco_results
from trainer.data.coco_panoptic import VOID, id_to_rgb, panoptic_to_segments
from trainer.data.detection import DetectionExample, collate
from trainer.data.shapes import Scene
from trainer.render import caption_text, colorized_png
from trainer.tasks.colorization import color_batch
from trainer.tasks.detection import predict

Store = Callable[[str, bytes], str]  # (file name, PNG bytes) -> the stored file's URL
BACKGROUND = "background"


@dataclass(frozen=True)
class Picture:
    """An image to decode, in colour and in grey (what a colorizer sees)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    gray: np.ndarray  # (H, W) uint8 ITU-R 601 luma
    image_id: int

    @property
    def seed(self) -> int:
        """The id under the name `color_batch` reads from a scene."""
        return self.image_id

    @classmethod
    def from_pixels(cls, image: np.ndarray, image_id: int) -> "Picture":
        """(H, W, 3) uint8 RGB, in grey by PIL's L: ITU-R 601 luma, as Synthetic Shapes'."""
        return cls(image, np.asarray(Image.fromarray(image).convert("L")), image_id)

    @classmethod
    def from_file(cls, path: str | Path, image_id: int) -> "Picture":
        with Image.open(path) as image:
            return cls.from_pixels(np.asarray(image.convert("RGB")), image_id)

    @classmethod
    def from_scene(cls, scene: Scene) -> "Picture":
        return cls(scene.image, scene.gray, scene.seed)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        height, width = self.image.shape[:2]
        return width, height


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class TaskOutputs(Protocol):
    """One model's outputs in its task's candidate format."""

    def shown(self, picture: Picture) -> np.ndarray:
        """The picture as the model's input is shown beside its outputs."""

    def decode(self, pictures: Sequence[Picture], *, temperature: float, seed: int
               ) -> list[Any]:
        """Each picture's raw output."""

    def output(self, decoded: Any, picture: Picture, store: Store, stem: str) -> dict:
        """One raw output in the API's format; its files are stored as `<stem>...png`."""


def _examples(pictures: Sequence[Picture]) -> list[DetectionExample]:
    return [DetectionExample(image=p.image, boxes=np.zeros((0, 4), np.float32),
                             classes=np.zeros(0, np.int64), image_id=p.image_id)
            for p in pictures]


def _sample(model: nn.Module, images: Tensor, temperature: float, seed: int) -> Tensor:
    """One output's tokens per image: greedy at temperature 0, else a seeded sample."""
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with torch.no_grad():
        tokens, _ = model.sample(images.to(model.device), 1, temperature=temperature,
                                 generator=generator)
    return tokens


def _nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(S, S, ...) values at (width, height) = `size`, each pixel taking its nearest cell."""
    width, height = size
    rows = ((np.arange(height) + 0.5) * values.shape[0] / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * values.shape[1] / width).astype(np.int64)
    return values[rows][:, cols]


@dataclass
class DetectionOutputs:
    model: nn.Module
    task: Any
    category_ids: Sequence[int]  # COCO id of each class, in class order

    def shown(self, picture: Picture) -> np.ndarray:
        return picture.image

    def decode(self, pictures: Sequence[Picture], *, temperature: float, seed: int
               ) -> list[dict]:
        model = self.model.eval()
        examples = _examples(pictures)
        generator = torch.Generator(device=model.device).manual_seed(seed)
        with torch.no_grad():
            images = collate(examples, model.config.image_size).images.to(model.device)
            detections = predict(model, self.task.codec, images, temperature=temperature,
                                 generator=generator)
        results = detections_to_coco_results(
            [e.image_id for e in examples], [d.boxes for d in detections],
            [d.class_prob for d in detections], [d.classes for d in detections],
            [e.image.shape[:2] for e in examples], self.category_ids,
        )
        by_image: dict[int, list[dict]] = {e.image_id: [] for e in examples}
        for result in results:
            by_image[result["image_id"]].append({
                "bbox": [round(v, 1) for v in result["bbox"]],
                "category_id": result["category_id"], "score": round(result["score"], 3),
            })
        return [{"objects": by_image[e.image_id]} for e in examples]

    def output(self, decoded: dict, picture: Picture, store: Store, stem: str) -> dict:
        return decoded


@dataclass
class CaptionOutputs:
    model: nn.Module
    task: Any

    def shown(self, picture: Picture) -> np.ndarray:
        return picture.image

    def decode(self, pictures: Sequence[Picture], *, temperature: float, seed: int
               ) -> list[str]:
        images = collate(_examples(pictures), self.model.config.image_size).images
        return self.task.codec.decode(_sample(self.model, images, temperature, seed))

    def output(self, decoded: str, picture: Picture, store: Store, stem: str) -> dict:
        return {"caption": caption_text(decoded)}


@dataclass
class ColorOutputs:
    model: nn.Module
    task: Any

    def shown(self, picture: Picture) -> np.ndarray:
        return picture.gray

    def decode(self, pictures: Sequence[Picture], *, temperature: float, seed: int
               ) -> list[np.ndarray]:
        batch = color_batch(pictures, self.model.config.image_size)
        tokens = _sample(self.model, batch.images, temperature, seed)
        rgb = self.task.codec.decode(tokens, batch.gray.to(tokens.device))
        return list((rgb.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())

    def output(self, decoded: np.ndarray, picture: Picture, store: Store, stem: str) -> dict:
        image = Image.fromarray(decoded).resize(picture.size, Image.Resampling.BILINEAR)
        return {"image_url": store(f"{stem}.png", colorized_png(np.asarray(image)))}


@dataclass
class PanopticOutputs:
    model: nn.Module
    task: Any
    categories: list[dict]  # what the segments name: {"id", "name", "isthing"}
    position_index: np.ndarray  # a map position's index in `categories`, or VOID

    def shown(self, picture: Picture) -> np.ndarray:
        return picture.image

    def decode(self, pictures: Sequence[Picture], *, temperature: float, seed: int
               ) -> list[np.ndarray]:
        size = self.model.config.image_size
        images = collate(_examples(pictures), size).images
        maps = self.task.codec.decode(_sample(self.model, images, temperature, seed), size)
        return list(maps.cpu().numpy())

    def output(self, decoded: np.ndarray, picture: Picture, store: Store, stem: str) -> dict:
        resized = _nearest(decoded, picture.size)
        category = self.position_index[resized[..., 0]]
        ids, segments = panoptic_to_segments(np.stack([category, resized[..., 1]], axis=-1),
                                             self.categories)
        return {
            "png_url": store(f"{stem}.png", png_bytes(id_to_rgb(ids))),
            "overlay_url": store(f"{stem}_overlay.png", overlay_png(ids)),
            "segments": [{"id": s["id"], "category_id": s["category_id"]} for s in segments],
        }


def panoptic_outputs(model: nn.Module, task: Any, class_names: Sequence[str],
                     categories: Sequence[dict]) -> PanopticOutputs:
    """The outputs of a panoptic model of `class_names`, named by `categories` (see the module
    docstring)."""
    own = [{"id": len(class_names) + 1, "name": BACKGROUND},
           *({"id": k + 1, "name": name} for k, name in enumerate(class_names))]
    by_name = {category["name"]: category for category in categories or own}
    named = [by_name.get(category["name"]) for category in own]
    kept = [{"id": c["id"], "name": c["name"], "isthing": int(c["name"] != BACKGROUND)}
            for c in named if c is not None]
    index, found = [], 0
    for category in named:
        index.append(VOID if category is None else found)
        found += category is not None
    return PanopticOutputs(model, task, kept, np.array(index, dtype=np.int64))


def task_outputs(task_name: str, model: nn.Module, task: Any, *, class_names: Sequence[str],
                 categories: Sequence[dict]) -> TaskOutputs:
    """The outputs of a model of `task_name`; `categories` name its classes (for detection in
    class order, as many as it has classes)."""
    if task_name == "detection":
        return DetectionOutputs(model, task, [category["id"] for category in categories])
    if task_name == "captioning":
        return CaptionOutputs(model, task)
    if task_name == "colorization":
        return ColorOutputs(model, task)
    if task_name == "panoptic":
        return panoptic_outputs(model, task, class_names, categories)
    raise ValueError(f"no candidate format for the task {task_name!r}")
