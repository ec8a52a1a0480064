"""A project's ratings and comparisons as the trainer's feedback datasets, for every task.

Rows in, tensors out: each item with feedback becomes one image (loaded from MEDIA_ROOT,
resized and normalised as the task's policy sees it: RGB as the trainer's detection batches,
the greyscale input `2 * gray - 1` for colorization, whose colours are the output), and each
candidate's output (docs/api.md) becomes the reward model's container of its task
(`trainer.reward_model.outputs`):

- detection: padded boxes in the trainer's coordinates (`[ymin, xmin, ymax, xmax]` in [0, 1] of
  the image; the API's boxes are COCO `[x, y, w, h]` pixels), categories as contiguous class
  indices (`rewards.classes`);
- captioning: the caption's tokens of the captioning codec with the reward model's vocabulary
  (`max_count`, `max_words`). The codec has no token for an unknown word, and dropping one
  would score another caption than the annotator saw, so a caption with a word outside the
  vocabulary refuses the training with the candidate and the words;
- colorization: the colorized image (`image_url`), resized to the model's input;
- panoptic: the map of (category position, instance) per pixel from the candidate's id PNG
  (`png_url`) and `segments`, nearest-resampled to the model's input: position 0 is the
  background (also the PNG's unlabelled pixels, id 0), k + 1 thing class k; each thing segment
  is an instance of its own.

Kinds of feedback:
- 1-5 ratings -> RatingDataset;
- A/B preferences -> PreferenceDataset (A shown first; a tie is label 0.5);
- rankings -> RankingDataset (best first; the project's `ranking_k` outputs each).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import torch
import torch.nn.functional as F
from django.conf import settings
from django.utils._os import safe_join
from PIL import Image

from ingest.panoptic import segment_ids
from labeling.models import Comparison, Rating
from projects.models import Candidate, Item, Project, VisionTask
from rewards.classes import class_categories
from trainer.configs import CaptioningTaskConfig, RewardModelConfig
from trainer.data.detection import DetectionExample, collate
from trainer.reward_model.data import PreferenceDataset, RankingDataset, RatingDataset
from trainer.reward_model.outputs import (
    BoxOutputs,
    CaptionOutputs,
    ColorOutputs,
    Outputs,
    PanopticOutputs,
)
from trainer.tasks.captioning import CaptionCodec
from trainer.tasks.colorization import color_batch
from training.outputs import Picture

_LABELS = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass
class Feedback:
    preferences: PreferenceDataset | None = None
    rankings: RankingDataset | None = None
    ratings: RatingDataset | None = None


def media_path(url: str) -> Path:
    """The file under MEDIA_ROOT that a stored output's URL (`/media/<name>`) names."""
    path = unquote(urlparse(url).path).lstrip("/")
    prefix = settings.MEDIA_URL.strip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{url!r} is not a media file's URL")
    return Path(safe_join(settings.MEDIA_ROOT, path[len(prefix):]))


def item_example(item: Item) -> DetectionExample:
    """An item's image as a trainer example (no boxes; `image_id` is the item's id)."""
    with Image.open(item.image.path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return DetectionExample(image=pixels, boxes=np.zeros((0, 4), np.float32),
                            classes=np.zeros(0, np.int64), image_id=item.pk)


def rgb_images(items: Sequence[Item], image_size: int) -> torch.Tensor:
    """(I, 3, S, S) normalised RGB, as the trainer's detection batches."""
    return collate([item_example(item) for item in items], image_size).images


def gray_images(items: Sequence[Item], image_size: int) -> torch.Tensor:
    """(I, 1, S, S) the greyscale input `2 * gray - 1` a colorizer sees."""
    return color_batch([Picture.from_file(item.image.path, item.pk) for item in items],
                       image_size).images


def boxes_from_outputs(outputs: list[dict], sizes: list[tuple[int, int]],
                       class_of: dict[int, int]) -> BoxOutputs:
    """Detection outputs (`{"objects": [{"bbox": [x, y, w, h], "category_id"}]}`, pixels of
    images of `sizes` (width, height)) as padded boxes (see the module docstring)."""
    slots = max([1, *(len(output.get("objects", [])) for output in outputs)])
    boxes = torch.zeros(len(outputs), slots, 4)
    classes = torch.zeros(len(outputs), slots, dtype=torch.int64)
    valid = torch.zeros(len(outputs), slots, dtype=torch.bool)
    for row, (output, (width, height)) in enumerate(zip(outputs, sizes, strict=True)):
        for slot, obj in enumerate(output.get("objects", [])):
            x, y, w, h = obj["bbox"]
            boxes[row, slot] = torch.tensor([y / height, x / width, (y + h) / height,
                                             (x + w) / width]).clamp(0, 1)
            classes[row, slot] = class_of[obj["category_id"]]
            valid[row, slot] = True
    return BoxOutputs(boxes, classes, valid)


def class_indices(project: Project) -> dict[int, int]:
    """COCO category id -> contiguous class index (`rewards.classes`)."""
    return {c["id"]: i for i, c in enumerate(class_categories(project))}


def box_outputs(candidates: list[Candidate], class_of: dict[int, int]) -> BoxOutputs:
    """Candidates' detection outputs as padded boxes."""
    return boxes_from_outputs([c.output for c in candidates],
                              [(c.item.width, c.item.height) for c in candidates], class_of)


def caption_codec(config: RewardModelConfig | None) -> CaptionCodec:
    """The captioning codec of the reward model's vocabulary (the task's default without one)."""
    if config is None:
        return CaptionCodec(CaptioningTaskConfig())
    return CaptionCodec(CaptioningTaskConfig(max_words=config.max_words,
                                             max_count=config.max_count))


def caption_outputs(candidates: list[Candidate], codec: CaptionCodec) -> CaptionOutputs:
    """Candidates' captions as tokens; ValueError naming the candidate and the unknown words."""
    rows = []
    for candidate in candidates:
        try:
            rows.append(codec.encode([candidate.output.get("caption", "")]))
        except ValueError as error:
            reason = str(error).removeprefix("caption 0 ")
            raise ValueError(f"candidate {candidate.pk} (item {candidate.item.file_name}): its "
                             f"caption {reason}; the reward model reads only the captioning "
                             f"vocabulary") from None
    return CaptionOutputs(torch.cat(rows))


def output_rgb(output: dict) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colorization output's image."""
    with Image.open(media_path(output["image_url"])) as image:
        return np.asarray(image.convert("RGB"))


def rgb_tensor(pixels: np.ndarray, image_size: int | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, S, S) float in [0, 1], resized as `color_batch` resizes."""
    rgb = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float() / 255
    if image_size is not None and rgb.shape[-2:] != (image_size, image_size):
        rgb = F.interpolate(rgb[None], size=(image_size, image_size), mode="bilinear",
                            antialias=True, align_corners=False)[0].clamp(0, 1)
    return rgb


def color_outputs(candidates: list[Candidate], image_size: int) -> ColorOutputs:
    return ColorOutputs.from_rgb(torch.stack([rgb_tensor(output_rgb(c.output), image_size)
                                              for c in candidates]))


def panoptic_positions(project: Project) -> dict[int, int]:
    """Category id -> map position: 0 the background, k + 1 thing class k."""
    things = {c["id"]: k + 1 for k, c in enumerate(class_categories(project))}
    return {c["id"]: things.get(c["id"], 0) for c in project.categories or []}


def panoptic_map(output: dict, positions: dict[int, int]) -> np.ndarray:
    """(H, W, 2) int64 (category position, instance) of a panoptic output or ground truth
    (`png_url` + `segments`; see the module docstring)."""
    ids = segment_ids(media_path(output["png_url"]).read_bytes())
    category = np.zeros(ids.shape, np.int64)
    instance = np.zeros(ids.shape, np.int64)
    for number, segment in enumerate(output.get("segments", []), start=1):
        if segment["category_id"] not in positions:
            raise ValueError(f"segment {segment['id']} names category {segment['category_id']},"
                             " which the project does not have")
        position = positions[segment["category_id"]]
        where = ids == segment["id"]
        category[where] = position
        instance[where] = number if position else 0
    return np.stack([category, instance], axis=-1)


def resized_map(panoptic: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width, 2): each cell the value of the pixel nearest its centre."""
    rows = ((np.arange(height) + 0.5) * panoptic.shape[0] / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * panoptic.shape[1] / width).astype(np.int64)
    return panoptic[rows][:, cols]


def panoptic_outputs(candidates: list[Candidate], positions: dict[int, int], image_size: int
                     ) -> PanopticOutputs:
    maps = [resized_map(panoptic_map(c.output, positions), image_size, image_size)
            for c in candidates]
    return PanopticOutputs(torch.from_numpy(np.stack(maps)))


@dataclass(frozen=True)
class TaskFeedback:
    """How one task's items become model inputs and its candidates outputs."""

    images: Callable[[Sequence[Item], int], torch.Tensor]  # (items, size) -> (I, C, S, S)
    outputs: Callable[[list[Candidate]], Outputs]


def task_feedback(project: Project, size: int, config: RewardModelConfig | None = None
                  ) -> TaskFeedback:
    """The project's task's way from rows to tensors at `size`; `config` gives the captioning
    vocabulary."""
    if project.task == VisionTask.DETECTION:
        class_of = class_indices(project)
        return TaskFeedback(rgb_images, lambda candidates: box_outputs(candidates, class_of))
    if project.task == VisionTask.CAPTIONING:
        codec = caption_codec(config)
        return TaskFeedback(rgb_images, lambda candidates: caption_outputs(candidates, codec))
    if project.task == VisionTask.COLORIZATION:
        return TaskFeedback(gray_images, lambda candidates: color_outputs(candidates, size))
    positions = panoptic_positions(project)
    return TaskFeedback(rgb_images,
                        lambda candidates: panoptic_outputs(candidates, positions, size))


class _Images:
    """Items' images, each loaded once, indexed in order of first use."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.items: list[Item] = []

    def of(self, item: Item) -> int:
        if item.pk not in self.index:
            self.index[item.pk] = len(self.items)
            self.items.append(item)
        return self.index[item.pk]


def _shown(comparison: Comparison) -> list[Candidate]:
    """The task's candidates in screen order (A, B, ...)."""
    return [slot.candidate for slot in comparison.task.slots.all()]


def project_feedback(project: Project, image_size: int,
                     config: RewardModelConfig | None = None) -> Feedback:
    """Every rating and comparison of the project, as datasets (see the module docstring);
    `config` gives the captioning vocabulary (the defaults' without one)."""
    task = task_feedback(project, image_size, config)
    images = _Images()
    feedback = Feedback()
    ratings = list(Rating.objects.filter(task__project=project)
                   .select_related("candidate__item").order_by("id"))
    comparisons = list(
        Comparison.objects.filter(task__project=project).select_related("task")
        .prefetch_related("task__slots__candidate__item").order_by("id")
    )
    pairs = [c for c in comparisons if c.choice]
    rankings = [c for c in comparisons if c.ranking]
    parts: dict[str, tuple] = {}
    if ratings:
        parts["ratings"] = (
            [images.of(r.candidate.item) for r in ratings],
            task.outputs([r.candidate for r in ratings]),
            torch.tensor([r.score for r in ratings], dtype=torch.int64),
        )
    if pairs:
        shown = [_shown(c)[:2] for c in pairs]
        parts["preferences"] = (
            [images.of(a.item) for a, _ in shown],
            task.outputs([a for a, _ in shown]),
            task.outputs([b for _, b in shown]),
            torch.tensor([_LABELS[c.choice] for c in pairs]),
        )
    if rankings:
        ranked = []
        for comparison in rankings:
            by_id = {candidate.pk: candidate for candidate in _shown(comparison)}
            ranked.append([by_id[pk] for pk in comparison.ranking])
        parts["rankings"] = (
            [images.of(r[0].item) for r in ranked],
            task.outputs([c for ranking in ranked for c in ranking]),
            len(ranked[0]),
        )
    if not parts:
        return feedback
    pixels = task.images(images.items, image_size)
    for kind, (index, *rest) in parts.items():
        image_index = torch.tensor(index, dtype=torch.int64)
        if kind == "ratings":
            feedback.ratings = RatingDataset(pixels, image_index, rest[0], rest[1])
        elif kind == "preferences":
            feedback.preferences = PreferenceDataset(pixels, image_index, *rest)
        else:
            feedback.rankings = RankingDataset(pixels, image_index, rest[0], rest[1])
    return feedback

