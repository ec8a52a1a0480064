"""Detection data for the trainer: examples, their sources, and batches of model inputs.

A `DetectionExample` is one image with its ground truth in the trainer's coordinates
(`[ymin, xmin, ymax, xmax]` pixels, classes as contiguous indices 0..C-1). A source gives
examples together with its `categories` (COCO `{"id", "name"}` dicts) and the mapping between
contiguous indices and COCO category ids:

- `ShapesStream`: an endless stream of fresh Synthetic Shapes scenes, for training;
- `shapes_source` / `shapes_examples`: a fixed Synthetic Shapes split, for evaluation;
- `DetectionSource`: a fixed set of examples with the COCO ground truth they evaluate against
  (a user's COCO folder is loaded into one by `trainer.data.coco.load_coco_dir`).

`collate` turns examples into a `DetectionBatch` of square, normalised image tensors and padded,
normalised boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from trainer.data.shapes import (
    CLASS_NAMES,
    DEFAULT_CONFIG,
    Scene,
    ShapesConfig,
    generate_scene,
    scene_seed,
)

# ImageNet statistics: images in a batch are (x / 255 - MEAN) / STD per channel, which puts
# natural images and Synthetic Shapes at roughly zero mean and unit variance.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

# COCO category ids start at 1; Synthetic Shapes class k is category k + 1.
SHAPES_CATEGORIES: tuple[dict, ...] = tuple(
    {"id": index + 1, "name": name} for index, name in enumerate(CLASS_NAMES)
)


@dataclass(frozen=True, eq=False)
class DetectionExample:
    """One image and its boxes, in the trainer's coordinates."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (K, 4) float32 [ymin, xmin, ymax, xmax] pixels of `image`
    classes: np.ndarray  # (K,) int64 contiguous class indices 0..C-1
    image_id: int  # COCO image id (for Synthetic Shapes, the scene's seed)
    file_name: str | None = None  # image file relative to its COCO folder, if it has one


@dataclass
class DetectionBatch:
    """Model inputs and padded targets for B examples with at most M objects each."""

    images: torch.Tensor  # (B, 3, S, S) float32, (x / 255 - IMAGE_MEAN) / IMAGE_STD
    boxes: torch.Tensor  # (B, M, 4) float32 [ymin, xmin, ymax, xmax] in [0, 1] of the image
    classes: torch.Tensor  # (B, M) int64 contiguous class indices, -1 where padded
    valid: torch.Tensor  # (B, M) bool, False where padded
    image_ids: torch.Tensor  # (B,) int64 COCO image ids
    sizes: torch.Tensor  # (B, 2) int64 original (H, W), to map boxes back to pixels

    def to(self, device: torch.device | str) -> DetectionBatch:
        """The same batch with every tensor on `device`."""
        return DetectionBatch(
            images=self.images.to(device),
            boxes=self.boxes.to(device),
            classes=self.classes.to(device),
            valid=self.valid.to(device),
            image_ids=self.image_ids.to(device),
            sizes=self.sizes.to(device),
        )

    def __len__(self) -> int:
        return self.images.shape[0]


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float pixel values in [0, 255] -> the model's normalised floats."""
    mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
    # One fused pass, x * 1 / (255 std) - mean / std: batches are normalised on every step.
    return torch.addcmul(-mean / std, images.float(), 1.0 / (255.0 * std))


def denormalize_images(images: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_images`: (B, 3, H, W) uint8, for viewing or writing files."""
    mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
    return ((images * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)


def _resize(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, size, size) float in [0, 255], untouched when already that size."""
    tensor = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    if tensor.shape[1:] == (size, size):
        return tensor
    # Antialiasing keeps small, thin shapes from aliasing away when large photos are shrunk.
    return F.interpolate(
        tensor[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0]


def collate(examples: Sequence[DetectionExample], image_size: int) -> DetectionBatch:
    """Stack examples into a batch of `image_size` square images and padded boxes.

    Non-square or differently sized images are stretched to the square (as in Pix2seq); boxes
    are normalised by each image's original size, so they stay correct after the resize.
    """
    if not examples:
        raise ValueError("collate needs at least one example")
    slots = max(1, max(len(example.classes) for example in examples))
    batch = len(examples)
    boxes = torch.zeros(batch, slots, 4)
    classes = torch.full((batch, slots), -1, dtype=torch.int64)
    sizes = torch.tensor([example.image.shape[:2] for example in examples], dtype=torch.int64)
    for row, example in enumerate(examples):
        k = len(example.classes)
        height, width = example.image.shape[:2]
        scale = torch.tensor([height, width, height, width], dtype=torch.float32)
        boxes[row, :k] = (torch.from_numpy(example.boxes).float() / scale).clamp(0.0, 1.0)
        classes[row, :k] = torch.from_numpy(example.classes)
    images = torch.stack([_resize(example.image, image_size) for example in examples])
    return DetectionBatch(
        images=normalize_images(images),
        boxes=boxes,
        classes=classes,
        valid=classes >= 0,
        image_ids=torch.tensor([example.image_id for example in examples], dtype=torch.int64),
        sizes=sizes,
    )


def category_ids(categories: Sequence[dict]) -> tuple[int, ...]:
    """COCO category id of each contiguous class index (categories in the order given)."""
    return tuple(int(category["id"]) for category in categories)


def category_index(categories: Sequence[dict]) -> dict[int, int]:
    """Contiguous class index of each COCO category id."""
    return {int(category["id"]): index for index, category in enumerate(categories)}


def examples_to_coco_gt(
    examples: Sequence[DetectionExample], categories: Sequence[dict]
) -> dict:
    """The COCO instances dict of `examples` (boxes `[x, y, w, h]` pixels, category ids).

    `file_name` falls back to `<image_id>.png`, the name `write_coco_dir` gives such images.
    """
    ids = category_ids(categories)
    images, annotations = [], []
    for example in examples:
        height, width = example.image.shape[:2]
        images.append(
            {
                "id": int(example.image_id),
                "file_name": example.file_name or f"{example.image_id}.png",
                "height": int(height),
                "width": int(width),
            }
        )
        for box, cls in zip(example.boxes.tolist(), example.classes.tolist(), strict=True):
            ymin, xmin, ymax, xmax = box
            w, h = xmax - xmin, ymax - ymin
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(example.image_id),
                    "category_id": ids[cls],
                    "bbox": [xmin, ymin, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": int(c["id"]), "name": str(c["name"])} for c in categories],
    }


class Categorised:
    """Category lookups shared by every source; `categories` are COCO `{"id", "name"}` dicts
    and a category's position in the list is its contiguous class index."""

    categories: list[dict]

    @property
    def category_ids(self) -> tuple[int, ...]:
        """COCO category id of each contiguous class index."""
        return category_ids(self.categories)

    @property
    def category_index(self) -> dict[int, int]:
        """Contiguous class index of each COCO category id."""
        return category_index(self.categories)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(str(category["name"]) for category in self.categories)


@dataclass(frozen=True, eq=False)
class DetectionSource(Categorised):
    """A fixed set of examples, its categories, and the COCO ground truth to evaluate against.

    `gt` is the COCO instances dict (for a user's folder, the file as read, crowd annotations
    included, because COCO evaluation uses them to ignore detections in crowds).
    """

    examples: list[DetectionExample]
    categories: list[dict]  # COCO categories {"id", "name"}; list position = class index
    gt: dict = field(repr=False)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> DetectionExample:
        return self.examples[index]

    def __iter__(self) -> Iterator[DetectionExample]:
        return iter(self.examples)

    def subset(self, n: int) -> DetectionSource:
        """The first `n` examples, with the ground truth of their images only."""
        return self.with_images({example.image_id for example in self.examples[:n]})

    def with_images(self, image_ids: Collection[int]) -> DetectionSource:
        """The examples of these image ids (in the source's order), with their ground truth."""
        kept = set(image_ids)
        examples = [example for example in self.examples if example.image_id in kept]
        gt = {
            **self.gt,
            "images": [image for image in self.gt["images"] if image["id"] in kept],
            "annotations": [a for a in self.gt["annotations"] if a["image_id"] in kept],
        }
        return dataclasses.replace(self, examples=examples, gt=gt)

    def endless(self, seed: int = 0) -> Iterator[DetectionExample]:
        """Examples forever, reshuffled each epoch (for training on a fixed set)."""
        if not self.examples:
            raise ValueError("an empty source cannot be repeated")
        rng = np.random.default_rng(seed)
        while True:
            for index in rng.permutation(len(self.examples)):
                yield self.examples[index]


def scene_to_example(scene: Scene) -> DetectionExample:
    """The detection view of a Synthetic Shapes scene (its image id is its seed)."""
    return DetectionExample(
        image=scene.image, boxes=scene.boxes, classes=scene.classes, image_id=scene.seed
    )


def shapes_examples(
    split: str, n: int, config: ShapesConfig = DEFAULT_CONFIG
) -> list[DetectionExample]:
    """The first `n` examples of a fixed Synthetic Shapes split."""
    return [scene_to_example(generate_scene(scene_seed(split, i), config)) for i in range(n)]


def shapes_source(split: str, n: int, config: ShapesConfig = DEFAULT_CONFIG) -> DetectionSource:
    """A fixed Synthetic Shapes split as a source, with its COCO ground truth."""
    examples = shapes_examples(split, n, config)
    categories = [dict(category) for category in SHAPES_CATEGORIES]
    return DetectionSource(examples, categories, examples_to_coco_gt(examples, categories))


class ShapesStream(Categorised):
    """Fresh Synthetic Shapes examples: scene_seed(split, i) for i = start, start + 1, ..."""

    def __init__(
        self, config: ShapesConfig = DEFAULT_CONFIG, split: str = "train", start: int = 0
    ) -> None:
        scene_seed(split, start)  # refuses a bad split or start now, not at the first batch
        self.config = config
        self.split = split
        self.index = start  # the next scene to generate; save it to resume the stream
        self.categories = [dict(category) for category in SHAPES_CATEGORIES]

    def __iter__(self) -> Iterator[DetectionExample]:
        return self

    def __next__(self) -> DetectionExample:
        scene = generate_scene(scene_seed(self.split, self.index), self.config)
        self.index += 1
        return scene_to_example(scene)

    def next_batch(self, batch_size: int, image_size: int | None = None) -> DetectionBatch:
        """`batch_size` fresh examples collated at `image_size` (default: the scene size)."""
        examples = [next(self) for _ in range(batch_size)]
        return collate(examples, image_size or self.config.image_size)
