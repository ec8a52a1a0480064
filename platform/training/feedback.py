"""A project's ratings and comparisons as the trainer's feedback datasets.

Rows in, tensors out: each item with feedback becomes one image (loaded from MEDIA_ROOT,
resized and normalised as the trainer's batches are), each candidate's output becomes padded
boxes in the trainer's coordinates (`[ymin, xmin, ymax, xmax]` in [0, 1] of the image; the API's
boxes are COCO `[x, y, w, h]` pixels), and categories become contiguous class indices in the
order of their COCO ids, as the trainer's COCO sources number them.

- 1-5 ratings -> RatingDataset;
- A/B preferences -> PreferenceDataset (A shown first; a tie is label 0.5);
- rankings -> RankingDataset (best first; the project's `ranking_k` outputs each).
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from labeling.models import Comparison, Rating
from projects.models import Candidate, Item, Project
from trainer.data.detection import DetectionExample, collate
from trainer.reward_model.data import PreferenceDataset, RankingDataset, RatingDataset
from trainer.reward_model.encoders import BoxOutputs

_LABELS = {"A": 1.0, "B": 0.0, "tie": 0.5}


@dataclass
class Feedback:
    preferences: PreferenceDataset | None = None
    rankings: RankingDataset | None = None
    ratings: RatingDataset | None = None


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

    def tensor(self, image_size: int) -> torch.Tensor:
        return collate([item_example(item) for item in self.items], image_size).images


def item_example(item: Item) -> DetectionExample:
    """An item's image as a trainer example (no boxes; `image_id` is the item's id)."""
    with Image.open(item.image.path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return DetectionExample(image=pixels, boxes=np.zeros((0, 4), np.float32),
                            classes=np.zeros(0, np.int64), image_id=item.pk)


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
    """COCO category id -> contiguous class index, in the order of the ids."""
    return {c["id"]: i for i, c in enumerate(sorted(project.categories, key=lambda c: c["id"]))}


def box_outputs(candidates: list[Candidate], class_of: dict[int, int]) -> BoxOutputs:
    """Candidates' detection outputs as padded boxes."""
    return boxes_from_outputs([c.output for c in candidates],
                              [(c.item.width, c.item.height) for c in candidates], class_of)


def _shown(comparison: Comparison) -> list[Candidate]:
    """The task's candidates in screen order (A, B, ...)."""
    return [slot.candidate for slot in comparison.task.slots.all()]


def project_feedback(project: Project, image_size: int) -> Feedback:
    """Every rating and comparison of the project, as datasets (see the module docstring)."""
    class_of = class_indices(project)
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
            box_outputs([r.candidate for r in ratings], class_of),
            torch.tensor([r.score for r in ratings], dtype=torch.int64),
        )
    if pairs:
        shown = [_shown(c)[:2] for c in pairs]
        parts["preferences"] = (
            [images.of(a.item) for a, _ in shown],
            box_outputs([a for a, _ in shown], class_of),
            box_outputs([b for _, b in shown], class_of),
            torch.tensor([_LABELS[c.choice] for c in pairs]),
        )
    if rankings:
        ranked = []
        for comparison in rankings:
            by_id = {candidate.pk: candidate for candidate in _shown(comparison)}
            ranked.append([by_id[pk] for pk in comparison.ranking])
        parts["rankings"] = (
            [images.of(r[0].item) for r in ranked],
            box_outputs([c for ranking in ranked for c in ranking], class_of),
            len(ranked[0]),
        )
    if not parts:
        return feedback
    pixels = images.tensor(image_size)
    for kind, (index, *rest) in parts.items():
        image_index = torch.tensor(index, dtype=torch.int64)
        if kind == "ratings":
            feedback.ratings = RatingDataset(pixels, image_index, rest[0], rest[1])
        elif kind == "preferences":
            feedback.preferences = PreferenceDataset(pixels, image_index, *rest)
        else:
            feedback.rankings = RankingDataset(pixels, image_index, rest[0], rest[1])
    return feedback
