"""Panoptic evaluation with torchmetrics' PanopticQuality: dataset PQ, SQ and RQ in percent.

Inputs are the trainer's panoptic maps, `(N, H, W, 2)` (category, instance), as the reward
`trainer.rewards.panoptic.panoptic_quality` takes them. Unlike the mean of per-image rewards,
the dataset figures pool TP, FP, FN and IoU sums over all images per category before averaging
over categories, as COCO's panoptic evaluation does.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import Tensor
from torchmetrics.detection import PanopticQuality

from trainer.data.coco_panoptic import VOID
from trainer.rewards.panoptic import SHAPES_STUFFS, check_maps


def panoptic_metrics(
    preds: Tensor,
    targets: Tensor,
    *,
    num_categories: int,
    stuffs: Collection[int] = SHAPES_STUFFS,
) -> dict[str, float]:
    """Dataset PQ, SQ and RQ in percent (0-100) with torchmetrics' PanopticQuality (the evaluation).

    `preds`, `targets`: (N, H, W, 2) (category, instance) maps of the whole evaluated set, with
    categories in `[0, num_categories)`, and VOID allowed in targets (handled as in the reward);
    `stuffs` as for `panoptic_quality`, the rest are things.
    TP, FP, FN and IoU sums are pooled over images per category, then averaged over categories.
    """
    check_maps(preds, targets)
    stuff_set = {int(s) for s in stuffs}
    if not stuff_set <= set(range(num_categories)):
        raise ValueError(f"stuffs {sorted(stuff_set)} must lie in [0, {num_categories})")
    if preds.numel() and int(max(preds[..., 0].max(), targets[..., 0].max())) >= num_categories:
        raise ValueError(f"categories must lie in [0, {num_categories})")
    metric = PanopticQuality(
        things=set(range(num_categories)) - stuff_set, stuffs=stuff_set, return_sq_and_rq=True
    )
    # torchmetrics turns a target category outside things and stuffs into its void colour.
    void = targets[..., :1] == VOID
    metric.update(preds, torch.where(void, num_categories, targets))
    pq, sq, rq = (100.0 * metric.compute().double()).tolist()
    return {"pq": pq, "sq": sq, "rq": rq}
