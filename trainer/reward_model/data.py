"""Feedback as tensors: pairwise preferences, rankings and 1-5 ratings of outputs on images.

Each dataset keeps its images once (`images`: the policy's inputs, normalised as the task's
batches are; greyscale for colorization) and refers to them by `image_index`, since one image
carries several comparisons. Outputs are the task's container (`outputs.py`: boxes, caption
tokens, colorized images, panoptic maps). The hidden gold scores (`gold_*`) are there only when
the feedback was simulated: evaluation reports agreement with them, training never reads them.

`split_by_image` holds out whole images, so held-out accuracy measures the reward model on
images it has never seen, not on new pairs of familiar ones. `as_pairs` turns any dataset into
the pairs it implies, which is how held-out pairwise accuracy is measured for all three.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from trainer.configs import RATING_LEVELS
from trainer.reward_model.outputs import Outputs


def _optional(x: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if x is None else x[rows]


def _check_index(images: Tensor, image_index: Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must have shape (I, C, H, W), got {tuple(images.shape)}")
    if image_index.ndim != 1 or image_index.dtype != torch.int64:
        raise ValueError("image_index must be a 1-D int64 tensor")
    if len(image_index) and (image_index.min() < 0 or image_index.max() >= len(images)):
        raise ValueError(f"image_index must lie in [0, {len(images)})")


@dataclass(frozen=True)
class PreferenceDataset:
    """N comparisons: on image `image_index[n]`, output `a[n]` vs output `b[n]`."""

    images: Tensor  # (I, C, S, S) normalised model inputs
    image_index: Tensor  # (N,) int64
    a: Outputs  # N outputs
    b: Outputs  # N outputs
    label: Tensor  # (N,) float P(a preferred): 1 (a), 0 (b) or 0.5 (tie)
    gold_a: Tensor | None = None  # (N,) hidden gold score of a (simulated feedback only)
    gold_b: Tensor | None = None  # (N,)

    def __post_init__(self) -> None:
        _check_index(self.images, self.image_index)
        n = len(self.image_index)
        if len(self.a) != n or len(self.b) != n or self.label.shape != (n,):
            raise ValueError(f"a, b and label must have {n} rows, like image_index")
        if ((self.label < 0) | (self.label > 1)).any():
            raise ValueError("labels are probabilities that a is preferred: in [0, 1]")

    def __len__(self) -> int:
        return len(self.image_index)

    def subset(self, rows: Tensor) -> PreferenceDataset:
        return replace(self, image_index=self.image_index[rows], a=self.a.select(rows),
                       b=self.b.select(rows), label=self.label[rows],
                       gold_a=_optional(self.gold_a, rows), gold_b=_optional(self.gold_b, rows))

    def as_pairs(self) -> PreferenceDataset:
        return self


@dataclass(frozen=True)
class RankingDataset:
    """N rankings of K outputs each on image `image_index[n]`, best first."""

    images: Tensor  # (I, C, S, S)
    image_index: Tensor  # (N,) int64
    ranked: Outputs  # N * K outputs; row n * K + j is the j-th best of ranking n
    k: int  # outputs per ranking
    gold: Tensor | None = None  # (N, K) hidden gold scores in ranked order

    def __post_init__(self) -> None:
        _check_index(self.images, self.image_index)
        if self.k < 2:
            raise ValueError(f"a ranking needs at least 2 outputs, got k={self.k}")
        if len(self.ranked) != len(self.image_index) * self.k:
            raise ValueError(f"ranked must hold {len(self.image_index)} x {self.k} outputs")

    def __len__(self) -> int:
        return len(self.image_index)

    def subset(self, rows: Tensor) -> RankingDataset:
        rows = torch.arange(len(self))[rows]
        output_rows = (rows[:, None] * self.k + torch.arange(self.k)).flatten()
        return replace(self, image_index=self.image_index[rows],
                       ranked=self.ranked.select(output_rows), gold=_optional(self.gold, rows))

    def as_pairs(self) -> PreferenceDataset:
        """Every pair of every ranking, the better-ranked output as `a` (label 1)."""
        better, worse = torch.triu_indices(self.k, self.k, offset=1)
        ranking = torch.arange(len(self)).repeat_interleave(len(better))
        better, worse = better.repeat(len(self)), worse.repeat(len(self))
        gold = self.gold
        return PreferenceDataset(
            images=self.images,
            image_index=self.image_index[ranking],
            a=self.ranked.select(ranking * self.k + better),
            b=self.ranked.select(ranking * self.k + worse),
            label=torch.ones(len(ranking)),
            gold_a=None if gold is None else gold[ranking, better],
            gold_b=None if gold is None else gold[ranking, worse],
        )


@dataclass(frozen=True)
class RatingDataset:
    """N outputs rated 1..5, output n on image `image_index[n]`."""

    images: Tensor  # (I, C, S, S)
    image_index: Tensor  # (N,) int64
    outputs: Outputs  # N outputs
    rating: Tensor  # (N,) int64 in 1..RATING_LEVELS
    gold: Tensor | None = None  # (N,) hidden gold scores

    def __post_init__(self) -> None:
        _check_index(self.images, self.image_index)
        if len(self.outputs) != len(self.image_index) or self.rating.shape != (len(self),):
            raise ValueError("outputs and rating must have one row per image_index entry")
        if self.rating.dtype != torch.int64:
            raise ValueError(f"ratings must be int64, got {self.rating.dtype}")
        if len(self) and (self.rating.min() < 1 or self.rating.max() > RATING_LEVELS):
            raise ValueError(f"ratings must lie in 1..{RATING_LEVELS}")

    def __len__(self) -> int:
        return len(self.image_index)

    def subset(self, rows: Tensor) -> RatingDataset:
        return replace(self, image_index=self.image_index[rows],
                       outputs=self.outputs.select(rows), rating=self.rating[rows],
                       gold=_optional(self.gold, rows))

    def as_pairs(self) -> PreferenceDataset:
        """Every pair of outputs on the same image with different ratings, better as `a`."""
        same_image = self.image_index[:, None] == self.image_index[None, :]
        better, worse = (same_image & (self.rating[:, None] > self.rating[None, :])).nonzero().T
        gold = self.gold
        return PreferenceDataset(
            images=self.images,
            image_index=self.image_index[better],
            a=self.outputs.select(better),
            b=self.outputs.select(worse),
            label=torch.ones(len(better)),
            gold_a=None if gold is None else gold[better],
            gold_b=None if gold is None else gold[worse],
        )


FeedbackDataset = PreferenceDataset | RankingDataset | RatingDataset


def join_preferences(parts: list[PreferenceDataset]) -> PreferenceDataset:
    """All comparisons of `parts` in one dataset (each part's images kept, its indices moved
    past the images before it); gold scores kept when every part has them."""
    offsets = torch.tensor([0, *[len(p.images) for p in parts]]).cumsum(0)
    simulated = all(p.gold_a is not None and p.gold_b is not None for p in parts)
    return PreferenceDataset(
        images=torch.cat([p.images for p in parts]),
        image_index=torch.cat([p.image_index + offset
                                 for p, offset in zip(parts, offsets[:-1], strict=True)]),
        a=type(parts[0].a).cat([p.a for p in parts]),
        b=type(parts[0].b).cat([p.b for p in parts]),
        label=torch.cat([p.label for p in parts]),
        gold_a=torch.cat([p.gold_a for p in parts]) if simulated else None,
        gold_b=torch.cat([p.gold_b for p in parts]) if simulated else None,
    )


def split_by_image(
    dataset: FeedbackDataset, fraction: float, seed: int
) -> tuple[FeedbackDataset, FeedbackDataset]:
    """(train, held-out): a random `fraction` of the images goes to held-out with all its rows.

    At least one image lands on each side when there are two or more.
    """
    used = dataset.image_index.unique()
    order = used[torch.randperm(len(used), generator=torch.Generator().manual_seed(seed))]
    count = min(max(1, round(fraction * len(used))), max(0, len(used) - 1))
    heldout = torch.isin(dataset.image_index, order[:count])
    return dataset.subset(~heldout), dataset.subset(heldout)
