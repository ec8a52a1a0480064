"""Outputs of varied quality to compare, and simulated feedback on them.

A *candidate source* is `(batch, n, generator) -> BoxOutputs`: n outputs for each image of a
DetectionBatch, image-major (rows i * n ... i * n + n - 1 belong to image i). Two exist:
- `perturbation_source`: ground truth spoilt at a random strength per candidate (box jitter,
  dropped boxes, wrong classes, duplicates, spurious boxes, each op with its own random share of
  the strength), for when no policy exists yet or to cover the quality range evenly;
- `policy_source`: samples of a Pix2seq policy, decoded to boxes (what the tuned policy will
  actually show the reward model).

`make_preference_data`, `make_ranking_data` and `make_rating_data` draw images (Synthetic
Shapes by default), candidates and simulated feedback (`simulate.py`) with its hidden gold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from trainer.data.detection import DetectionBatch, DetectionExample, ShapesStream, collate
from trainer.data.shapes import CLASS_NAMES, DEFAULT_CONFIG
from trainer.reward_model.data import PreferenceDataset, RankingDataset, RatingDataset
from trainer.reward_model.encoders import BoxOutputs
from trainer.reward_model.simulate import (
    DEFAULT_TIE_EPS,
    gold_scores,
    simulate_preferences,
    simulate_rankings,
    simulate_ratings,
)

CandidateSource = Callable[[DetectionBatch, int, torch.Generator], BoxOutputs]

# Strengths a perturbed candidate is drawn at (0 = the ground truth itself).
STRENGTH_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
# Reward-model data comes from its own stretch of the endless train split, far beyond where
# training runs read (`TrainStream` starts seed s at s * 10**8).
RM_SCENE_OFFSET = 9 * 10**8


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
) -> CandidateSource:
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


def policy_source(model, codec, *, temperature: float = 1.0) -> CandidateSource:
    """Candidates: `model.sample` token sequences decoded to boxes by a DetectionCodec."""

    def source(batch: DetectionBatch, n: int, generator: torch.Generator) -> BoxOutputs:
        tokens, _ = model.sample(batch.images.to(model.device), n, temperature=temperature,
                                 generator=generator)
        decoded = codec.decode(tokens)
        return BoxOutputs(decoded.boxes.cpu(), decoded.classes.cpu(), decoded.valid.cpu())

    return source


@dataclass(frozen=True)
class _Candidates:
    """Images, their ground truth and n candidates per image with gold scores."""

    images: Tensor  # (I, 3, S, S)
    outputs: BoxOutputs  # I * n, image-major
    gold: Tensor  # (I, n)


def _candidates(
    num_images: int,
    per_image: int,
    seed: int,
    source: CandidateSource | str,
    examples: Iterator[DetectionExample] | None,
    image_size: int,
    chunk: int = 64,
) -> _Candidates:
    if num_images < 1:
        raise ValueError(f"need at least one image, got {num_images}")
    if source == "perturb":
        source = perturbation_source()
    elif isinstance(source, str):
        raise ValueError(f"unknown candidate source {source!r} (use 'perturb' or a function)")
    if examples is None:
        examples = ShapesStream(DEFAULT_CONFIG, "train", RM_SCENE_OFFSET + seed * 10**6)
    generator = torch.Generator().manual_seed(seed)
    images, outputs, gold = [], [], []
    for start in range(0, num_images, chunk):
        batch = collate([next(examples) for _ in range(min(chunk, num_images - start))],
                        image_size)
        candidates = source(batch, per_image, generator)
        gold.append(gold_scores(
            candidates.boxes, candidates.classes, candidates.valid,
            *(t.repeat_interleave(per_image, 0) for t in (batch.boxes, batch.classes, batch.valid)),
        ).view(len(batch), per_image))
        images.append(batch.images)
        outputs.append(candidates)
    return _Candidates(torch.cat(images), BoxOutputs.cat(outputs), torch.cat(gold))


def make_preference_data(
    n_pairs: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    pairs_per_image: int = 2,
    tie_eps: float = DEFAULT_TIE_EPS,
    examples: Iterator[DetectionExample] | None = None,
    image_size: int = 64,
) -> PreferenceDataset:
    """`n_pairs` simulated preferences, `pairs_per_image` per image (2 candidates a pair).

    Images come from `examples` (default: Synthetic Shapes scenes of the train split, a stretch
    of its own for each seed), resized to `image_size`; candidates from `candidate_source`
    ("perturb" or a CandidateSource).
    """
    images = -(-n_pairs // pairs_per_image)
    drawn = _candidates(images, 2 * pairs_per_image, seed, candidate_source, examples,
                        image_size)
    rows = torch.arange(n_pairs)
    image_index = rows // pairs_per_image
    first = image_index * 2 * pairs_per_image + 2 * (rows % pairs_per_image)
    gold = drawn.gold.flatten()
    gold_a, gold_b = gold[first], gold[first + 1]
    generator = torch.Generator().manual_seed(seed + 1)
    return PreferenceDataset(
        images=drawn.images,
        image_index=image_index,
        a=drawn.outputs.select(first),
        b=drawn.outputs.select(first + 1),
        label=simulate_preferences(gold_a, gold_b, noise=noise, tie_eps=tie_eps,
                                   generator=generator),
        gold_a=gold_a,
        gold_b=gold_b,
    )


def make_ranking_data(
    n_rankings: int,
    k: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    examples: Iterator[DetectionExample] | None = None,
    image_size: int = 64,
) -> RankingDataset:
    """`n_rankings` simulated rankings of `k` candidates, one ranking per image."""
    drawn = _candidates(n_rankings, k, seed, candidate_source, examples, image_size)
    order = simulate_rankings(drawn.gold, noise=noise,
                              generator=torch.Generator().manual_seed(seed + 1))
    rows = (torch.arange(n_rankings)[:, None] * k + order).flatten()
    return RankingDataset(
        images=drawn.images,
        image_index=torch.arange(n_rankings),
        ranked=drawn.outputs.select(rows),
        k=k,
        gold=drawn.gold.gather(1, order),
    )


def make_rating_data(
    n_images: int,
    per_image: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    examples: Iterator[DetectionExample] | None = None,
    image_size: int = 64,
) -> RatingDataset:
    """Simulated 1-5 ratings of `per_image` candidates on each of `n_images` images."""
    drawn = _candidates(n_images, per_image, seed, candidate_source, examples, image_size)
    gold = drawn.gold.flatten()
    return RatingDataset(
        images=drawn.images,
        image_index=torch.arange(n_images).repeat_interleave(per_image),
        outputs=drawn.outputs,
        rating=simulate_ratings(gold, noise=noise,
                                generator=torch.Generator().manual_seed(seed + 1)),
        gold=gold,
    )
