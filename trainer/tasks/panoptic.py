"""Panoptic segmentation as one token per patch: the codec maps <-> tokens and the task glue.

Codec. The image is cut into patches of `patch` pixels a side; each patch gets one token: 0 for
the background (the one stuff category), else a thing category and an instance *slot*,
`1 + k * slots + s` for shape class k in slot s. An instance's slot is the cell of its box centre
on a `slot_grid` x `slot_grid` grid over the image: a label every patch of the object can work
out from what it sees of the object (where the object is), so the per-patch distribution, which
is independent across patches given the image, can agree on one label per instance. Two
instances of one class whose centres share a cell merge. The ground truth encoded and decoded
back scores PQ 71.0 with the defaults (4-pixel patches, 4x4 slots) on the val split (300 scenes
of up to 6 objects), 85.3 with 2-pixel patches: the loss is the patches' blocky outlines, merges
cost under 0.5. 4-pixel patches are the default because the model learns faster on them: in
7 CPU minutes MLE reached PQ 22.3 against 14.2 in 10 minutes with 2-pixel patches (2.6x
cheaper steps, and fewer stray patches making segments of their own).

A patch's target is the token of the segment that covers most of its pixels; a token decodes to
the panoptic pair (category, instance) = (k + 1, s + 1), or (0, 0) for the background, painted
over the patch's pixels. Categories follow `SHAPES_PANOPTIC_CATEGORIES` (0 background, k + 1
shape class k), as the reward and the evaluation take them.

Reward: the PQ of each sampled map against the ground truth (`panoptic_quality`, equal to
torchmetrics' per image); MLE: cross-entropy of each patch to its target (`mle_step`). Maps are
compared at the model's input size (the scenes' ground truth resized by nearest neighbour when
the two differ; at the default 64 pixels they are the scenes' own maps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.configs import PanopticTaskConfig
from trainer.data.detection import collate, scene_to_example
from trainer.data.shapes import Scene
from trainer.eval.panoptic_metrics import panoptic_metrics
from trainer.models.colorizer import ColorGridSpec
from trainer.models.panoptic_net import PanopticNet
from trainer.rewards.panoptic import SHAPES_STUFFS, panoptic_quality

BACKGROUND_TOKEN = 0




class PanopticCodec:
    """Panoptic ground truth -> one token per patch, tokens -> panoptic maps (module docstring)."""

    def __init__(self, config: PanopticTaskConfig, num_things: int) -> None:
        if config.slot_grid < 1 or num_things < 1:
            raise ValueError("need slot_grid >= 1 and at least one thing category")
        self.config, self.num_things = config, num_things
        self.slots = config.slot_grid**2
        self.bins = 1 + num_things * self.slots
        self.spec = ColorGridSpec(bins=self.bins, patch=config.patch)

    def instance_tokens(self, classes: np.ndarray, boxes: np.ndarray, size: float) -> np.ndarray:
        """(K + 1,) token of each segment of a scene: the background, then instance k of class
        `classes[k]` with box `boxes[k]` (yxyx pixels of a `size`-pixel image)."""
        grid = self.config.slot_grid
        centre = (boxes[:, :2] + boxes[:, 2:]) / (2 * size)  # (K, 2) y, x in [0, 1]
        cell = np.clip(np.floor(centre * grid), 0, grid - 1).astype(np.int64)
        slot = cell[:, 0] * grid + cell[:, 1]
        return np.concatenate([[BACKGROUND_TOKEN], 1 + classes * self.slots + slot])

    def encode(self, instances: Tensor, segment_tokens: Tensor) -> Tensor:
        """(B, P) target tokens from instance maps (B, S, S) (0 background, k + 1 instance k)
        and each image's segment tokens (B, M) (`instance_tokens`, padded): per patch, the
        segment covering most of its pixels (ties to the lower index)."""
        counts = F.one_hot(instances, segment_tokens.shape[1]).permute(0, 3, 1, 2).float()
        majority = F.avg_pool2d(counts, self.config.patch).argmax(dim=1).flatten(1)
        return segment_tokens.gather(1, majority)

    def decode(self, tokens: Tensor, size: int) -> Tensor:
        """(N, P) tokens -> (N, size, size, 2) int64 panoptic maps (category, instance)."""
        n, patches = tokens.shape
        grid = math.isqrt(patches)
        if grid * grid != patches or size % grid:
            raise ValueError(f"{patches} patches do not tile a {size}-pixel square")
        thing = tokens > BACKGROUND_TOKEN
        index = (tokens - 1).clamp_min(0)
        category = torch.where(thing, index // self.slots + 1, 0)
        instance = torch.where(thing, index % self.slots + 1, 0)
        maps = torch.stack([category, instance], dim=-1).view(n, grid, grid, 2)
        scale = size // grid
        return maps.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


@dataclass
class PanopticBatch:
    """Model inputs, ground truth and MLE targets of B images."""

    images: Tensor  # (B, 3, S, S) normalised as the detection pipeline's batches
    panoptic: Tensor  # (B, S, S, 2) int64 ground truth (category, instance)
    targets: Tensor  # (B, P) int64 each patch's target token
    image_ids: Tensor  # (B,) int64 (a Synthetic Shapes scene's seed)

    def to(self, device: torch.device | str) -> PanopticBatch:
        return PanopticBatch(self.images.to(device), self.panoptic.to(device),
                             self.targets.to(device), self.image_ids.to(device))

    def __len__(self) -> int:
        return self.images.shape[0]


def panoptic_batch(scenes: Sequence[Scene], image_size: int, codec: PanopticCodec) -> PanopticBatch:
    """Scenes as a batch at `image_size`; images go through the detection pipeline's `collate`
    (same resizing and normalisation), instance maps are resized by nearest neighbour."""
    if not scenes:
        raise ValueError("panoptic_batch needs at least one scene")
    images = collate([scene_to_example(scene) for scene in scenes], image_size).images
    instances = torch.from_numpy(np.stack([scene.panoptic for scene in scenes])).long()
    if instances.shape[-1] != image_size:
        instances = F.interpolate(instances[:, None].float(), size=(image_size, image_size),
                                  mode="nearest")[:, 0].long()
    segments = 1 + max(len(scene.classes) for scene in scenes)
    categories = torch.zeros(len(scenes), segments, dtype=torch.int64)
    tokens = torch.zeros(len(scenes), segments, dtype=torch.int64)
    for row, scene in enumerate(scenes):
        k = len(scene.classes)
        categories[row, 1 : k + 1] = torch.from_numpy(scene.classes) + 1
        size = scene.panoptic.shape[0]
        tokens[row, : k + 1] = torch.from_numpy(
            codec.instance_tokens(scene.classes, scene.boxes, size))
    category = categories.gather(1, instances.flatten(1)).view_as(instances)
    return PanopticBatch(
        images=images,
        panoptic=torch.stack([category, instances], dim=-1),
        targets=codec.encode(instances, tokens),
        image_ids=torch.tensor([scene.seed for scene in scenes], dtype=torch.int64),
    )


def segments_per_map(tokens: Tensor) -> Tensor:
    """(N, P) tokens -> (N,) number of distinct segments (distinct tokens) of each map."""
    ordered = tokens.sort(dim=1).values
    return (ordered[:, 1:] != ordered[:, :-1]).sum(dim=1) + 1


@dataclass(frozen=True)
class ScoredPanoptic:
    """The task's verdict on sampled maps."""

    reward: Tensor  # (N,) PQ in [0, 1] of each map against its image's ground truth
    segments: Tensor  # (N,) segments in each map

    def select(self, rows: Tensor) -> ScoredPanoptic:
        return ScoredPanoptic(self.reward[rows], self.segments[rows])

    def metrics(self) -> dict[str, float]:
        return {"segments_per_sample": self.segments.float().mean().item()}


class PanopticTask:
    """What the training loops need from panoptic segmentation: targets, rewards, no auxiliary
    loss. `num_things`: the shape classes (each a thing category; the background is the stuff)."""

    def __init__(self, config: PanopticTaskConfig, num_things: int) -> None:
        self.config = config
        self.codec = PanopticCodec(config, num_things)

    @property
    def spec(self) -> ColorGridSpec:
        return self.codec.spec

    def collate(self, scenes: Sequence[Scene], image_size: int) -> PanopticBatch:
        return panoptic_batch(scenes, image_size, self.codec)

    def targets(self, batch: PanopticBatch, generator: torch.Generator | None) -> Tensor:
        """MLE targets: each patch's token (`generator` unused: nothing to order)."""
        return batch.targets

    def reward(self, tokens: Tensor, batch: PanopticBatch, n: int) -> ScoredPanoptic:
        """PQ of n samples per image (image-major rows) against the image's ground truth."""
        maps = self.codec.decode(tokens, batch.panoptic.shape[1])
        truth = batch.panoptic.repeat_interleave(n, dim=0)
        return ScoredPanoptic(panoptic_quality(maps, truth, stuffs=SHAPES_STUFFS),
                              segments_per_map(tokens))

    def aux_loss(self, logits: Tensor, scored: ScoredPanoptic) -> Tensor:
        """Panoptic segmentation has no auxiliary loss."""
        return logits.new_zeros(())


@torch.no_grad()
def segment(model: PanopticNet, codec: PanopticCodec, images: Tensor) -> Tensor:
    """(B, S, S, 2) greedy panoptic maps (each patch's most likely token)."""
    return codec.decode(model.greedy(images.to(model.device)), model.config.image_size)


@torch.no_grad()
def evaluate_panoptic(
    model: PanopticNet, task: PanopticTask, scenes: Sequence[Scene], *, batch_size: int = 100
) -> dict[str, float]:
    """torchmetrics' dataset PQ, SQ and RQ (percent) of greedy maps of `scenes`, the mean
    reward (per-image PQ in [0, 1]) and the mean number of segments per map."""
    preds, truths = [], []
    for start in range(0, len(scenes), batch_size):
        batch = task.collate(scenes[start : start + batch_size], model.config.image_size)
        preds.append(segment(model, task.codec, batch.images).cpu())
        truths.append(batch.panoptic)
    pred, truth = torch.cat(preds), torch.cat(truths)
    figures = panoptic_metrics(pred, truth, num_categories=task.codec.num_things + 1,
                               stuffs=SHAPES_STUFFS)
    reward = panoptic_quality(pred, truth, stuffs=SHAPES_STUFFS)
    segments = pred[..., 0] * (task.codec.slots + 1) + pred[..., 1]
    return {**figures, "reward": reward.mean().item(),
            "segments_per_image": segments_per_map(segments.flatten(1)).float().mean().item()}
