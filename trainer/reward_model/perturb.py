"""Outputs of varied quality made by spoiling the ground truth, one function per task.

Each op's strength is the candidate's strength (drawn from `STRENGTH_LEVELS`, 0 = the ground
truth itself) times a random share in [0, 1], so candidates differ in kind as well as degree:
- detection (`perturb_boxes`, `perturbation_source`): box jitter, dropped boxes, wrong classes,
  duplicates, spurious boxes;
- captioning (`perturb_captions`): one of the image's references with words replaced by random
  vocabulary words and words dropped;
- colorization (`perturb_colors`): the true colours pulled toward the grey image (desaturated),
  plus chroma noise;
- panoptic (`perturb_panoptic`): the true map with instances erased to background, given
  another class, and blocks of pixels painted another category.
They serve a reward model before any policy exists, cover the quality range evenly, and make
toy problems for tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.data.detection import DetectionBatch
from trainer.data.shapes import CLASS_NAMES
from trainer.reward_model.outputs import (
    BoxOutputs,
    CaptionOutputs,
    ColorOutputs,
    PanopticOutputs,
)
from trainer.tasks.captioning import EOS, PAD, WORD_OFFSET

PERTURB_BLOCK = 8  # side in pixels of the blocks a panoptic perturbation repaints

# Strengths a perturbed candidate is drawn at (0 = the ground truth itself).
STRENGTH_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Perturbation:
    """How strongly each op spoils ground truth at strength 1 (scaled linearly below)."""

    jitter: float = 0.15  # std of each coordinate's shift, as a share of the box's side
    drop: float = 0.5  # probability that a box is left out
    wrong_class: float = 0.4  # probability that a box gets another class
    duplicate: float = 0.4  # probability that a box is repeated (slightly shifted)
    spurious: float = 0.5  # probability of each of `spurious_slots` boxes where nothing is
    spurious_slots: int = 3


def perturb_boxes(
    gt: BoxOutputs,
    strength: Tensor,
    *,
    num_classes: int,
    max_boxes: int,
    generator: torch.Generator,
    perturbation: Perturbation = Perturbation(),
) -> BoxOutputs:
    """Spoil each row of `gt` (N rows) at its `strength` (N,) in [0, 1]; see the module doc.

    Each op's strength is `strength` times a random share in [0, 1], so candidates differ in
    kind as well as degree. The result holds at most `max_boxes` boxes per row, in random order.
    """
    p = perturbation
    n, m = gt.valid.shape
    device = gt.boxes.device

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator, device=device)

    op = strength[:, None] * rand(n, 5)  # per-row strength of jitter/drop/class/dup/spurious
    boxes, classes = gt.boxes.float(), gt.classes.clone()
    sides = (boxes[..., 2:] - boxes[..., :2]).repeat(1, 1, 2)  # (h, w, h, w)

    def jittered(b: Tensor, scale: Tensor) -> Tensor:
        moved = (b + randn(n, m, 4) * scale[:, None, None] * sides).clamp(0, 1)
        y, x = moved[..., 0::2].sort(-1).values, moved[..., 1::2].sort(-1).values
        return torch.stack([y[..., 0], x[..., 0], y[..., 1], x[..., 1]], -1)

    boxes = jittered(boxes, p.jitter * op[:, 0])
    kept = gt.valid & (rand(n, m) >= p.drop * op[:, 1:2])
    relabel = rand(n, m) < p.wrong_class * op[:, 2:3]
    other = (classes + 1 + (rand(n, m) * (num_classes - 1)).long()) % num_classes
    classes = torch.where(relabel, other, classes)
    duplicated = kept & (rand(n, m) < p.duplicate * op[:, 3:4])
    copies = jittered(boxes, torch.full((n,), 0.05, device=device))

    slots = p.spurious_slots
    centre, size = rand(n, slots, 2), 0.1 + 0.3 * rand(n, slots, 2)
    spurious = torch.cat([centre - size / 2, centre + size / 2], -1).clamp(0, 1)
    spurious_classes = (rand(n, slots) * num_classes).long()
    spurious_valid = rand(n, slots) < p.spurious * op[:, 4:5]

    all_boxes = torch.cat([boxes, copies, spurious], 1)
    all_classes = torch.cat([classes, classes, spurious_classes], 1)
    all_valid = torch.cat([kept, duplicated, spurious_valid], 1)
    # Random order with the valid boxes first, then keep the first max_boxes.
    order = (rand(*all_valid.shape) + (~all_valid).float() * 2).argsort(1)[:, :max_boxes]
    return BoxOutputs(
        all_boxes.gather(1, order[..., None].expand(-1, -1, 4)),
        all_classes.gather(1, order),
        all_valid.gather(1, order),
    )


def perturbation_source(
    num_classes: int = len(CLASS_NAMES),
    *,
    levels: tuple[float, ...] = STRENGTH_LEVELS,
    max_boxes: int = 10,
    perturbation: Perturbation = Perturbation(),
) -> Callable[[DetectionBatch, int, torch.Generator], BoxOutputs]:
    """Candidates: each image's ground truth spoilt at a strength drawn from `levels`."""
    strengths = torch.tensor(levels)

    def source(batch: DetectionBatch, n: int, generator: torch.Generator) -> BoxOutputs:
        gt = BoxOutputs(batch.boxes, batch.classes.clamp_min(0), batch.valid)
        rows = torch.arange(len(batch), device=batch.boxes.device).repeat_interleave(n)
        picks = torch.randint(len(levels), (len(rows),), generator=generator)
        return perturb_boxes(gt.select(rows), strengths[picks].to(batch.boxes.device),
                             num_classes=num_classes, max_boxes=max_boxes,
                             generator=generator, perturbation=perturbation)

    return source


def _strengths(count: int, generator: torch.Generator) -> Tensor:
    """(count,) perturbation strengths drawn from the detection candidates' levels."""
    levels = torch.tensor(STRENGTH_LEVELS)
    return levels[torch.randint(len(levels), (count,), generator=generator)]


def perturb_captions(batch: Any, n: int, codec: Any, generator: torch.Generator
                     ) -> CaptionOutputs:
    """n spoilt references per image of a CaptionBatch (see the module docstring)."""
    rows = len(batch) * n
    picks = [refs[int(torch.randint(len(refs), (), generator=generator))]
             for refs in batch.references for _ in range(n)]
    tokens = codec.encode(picks)  # (rows, L): words, EOS, PAD
    strength = _strengths(rows, generator)[:, None] * torch.rand(rows, 2, generator=generator)
    is_word = tokens >= WORD_OFFSET
    replace = is_word & (torch.rand(tokens.shape, generator=generator) < 0.6 * strength[:, :1])
    random_words = WORD_OFFSET + torch.randint(len(codec.words), tokens.shape, generator=generator)
    tokens = torch.where(replace, random_words, tokens)
    keep = ~is_word | (torch.rand(tokens.shape, generator=generator) >= 0.4 * strength[:, 1:])
    keep[:, 0] = True  # a caption keeps at least one word
    # Dropped words leave no gap: the kept tokens move to the front, PAD after them.
    order = (~keep).to(torch.uint8).argsort(dim=1, stable=True)
    tokens = torch.where(keep, tokens, PAD).gather(1, order)
    no_eos = ~(tokens == EOS).any(1)
    tokens[no_eos, -1] = EOS
    return CaptionOutputs(tokens)


def perturb_colors(batch: Any, n: int, generator: torch.Generator) -> ColorOutputs:
    """n spoilt true colourings per image of a ColorBatch (see the module docstring)."""
    rgb, gray = batch.rgb.repeat_interleave(n, 0), batch.gray.repeat_interleave(n, 0)
    rows = len(rgb)
    share = _strengths(rows, generator)[:, None] * torch.rand(rows, 2, generator=generator)
    saturation = (1 - share[:, 0]).view(-1, 1, 1, 1)
    noise = 0.3 * share[:, 1].view(-1, 1, 1, 1) * torch.randn(rgb.shape, generator=generator)
    spoilt = gray + saturation * (rgb - gray) + noise - noise.mean(1, keepdim=True)
    return ColorOutputs.from_rgb(spoilt.clamp(0, 1))


def perturb_panoptic(batch: Any, n: int, things: int, generator: torch.Generator
                     ) -> PanopticOutputs:
    """n spoilt ground-truth maps per image of a PanopticBatch, `things` thing classes (see
    the module docstring)."""
    maps = batch.panoptic.repeat_interleave(n, 0).clone()  # (rows, S, S, 2)
    rows, size = maps.shape[0], maps.shape[1]
    share = _strengths(rows, generator)[:, None] * torch.rand(rows, 3, generator=generator)
    instances = int(maps[..., 1].max()) + 1
    erase = torch.rand(rows, instances, generator=generator) < 0.8 * share[:, :1]
    relabel = torch.rand(rows, instances, generator=generator) < 0.4 * share[:, 1:2]
    other = 1 + torch.randint(things, (rows, instances), generator=generator)
    erase[:, 0] = relabel[:, 0] = False  # the background stays
    instance = maps[..., 1].long()
    pixel_erase = erase.gather(1, instance.flatten(1)).view_as(instance)
    pixel_relabel = relabel.gather(1, instance.flatten(1)).view_as(instance)
    category = torch.where(pixel_relabel, other.gather(1, instance.flatten(1)).view_as(instance),
                           maps[..., 0])
    category = torch.where(pixel_erase, 0, category)
    instance = torch.where(pixel_erase, 0, instance)
    blocks = size // PERTURB_BLOCK
    painted = torch.rand(rows, blocks, blocks, generator=generator) < 0.2 * share[:, 2:, None]
    paint = torch.randint(things + 1, (rows, blocks, blocks), generator=generator)
    painted = F.interpolate(painted[:, None].float(), size=(size, size))[:, 0].bool()
    paint = F.interpolate(paint[:, None].float(), size=(size, size))[:, 0].long()
    category = torch.where(painted, paint, category)
    instance = torch.where(painted, torch.where(paint > 0, instances, 0), instance)
    return PanopticOutputs(torch.stack([category, instance], -1))


