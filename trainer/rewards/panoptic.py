"""Panoptic reward: panoptic quality (PQ, Kirillov et al. 2019) of each predicted map, per image.

A panoptic map gives every pixel a (category, instance) pair, stacked in a last axis of 2 as
torchmetrics' `PanopticQuality` takes it: `(B, H, W, 2)` integers. A segment is the set of pixels
sharing a pair; for a *stuff* category the instance is ignored (one segment per category).
Synthetic Shapes (`trainer.data.coco_panoptic.scene_panoptic`) uses category 0 for the
background, the one stuff category, and category k + 1 for shape class k, all things.

Per image, predicted and ground-truth segments of the same category match when their IoU is
above 0.5 (at most one match each, as IoU > 0.5 is exclusive); then per category
`PQ_c = sum of matched IoUs / (TP + FP / 2 + FN / 2)`, and the image's reward is the mean of
`PQ_c` over the categories present in the prediction or the ground truth. This is exactly
torchmetrics' `PanopticQuality` run on that image alone (the tests check it), so the reward's
mean over a dataset is not the dataset PQ, which pools TP/FP/FN over images before dividing;
`trainer.eval.panoptic_metrics` gives that figure, from torchmetrics.

Ground truth may hold void pixels (category `VOID` = -1, unlabelled in COCO files; Synthetic
Shapes has none), handled as torchmetrics does: void is never matched, a predicted segment's
IoU leaves out its void pixels, and an unmatched predicted segment that is more than half void
is not a false positive. Predictions need a category >= 0 everywhere.

Vectorised over the batch: segment areas and segment-pair intersections are counted with
bincount (torch.unique when the key range is large) on combined (image, category, instance)
keys, with no loop over pixels, segments or images.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import Tensor

from trainer.data.coco_panoptic import VOID

BACKGROUND = 0  # Synthetic Shapes' stuff category; shape class k is thing category k + 1
SHAPES_STUFFS: frozenset[int] = frozenset({BACKGROUND})


def check_maps(preds: Tensor, targets: Tensor) -> None:
    """ValueError unless preds and targets are (B, H, W, 2) integer maps alike, with
    categories >= 0 (>= VOID in targets) and instances >= 0."""
    if preds.shape != targets.shape or preds.ndim != 4 or preds.shape[-1] != 2:
        raise ValueError(
            "preds and targets must both be (B, H, W, 2) (category, instance), got "
            f"{tuple(preds.shape)} and {tuple(targets.shape)}"
        )
    if preds.is_floating_point() or targets.is_floating_point():
        raise ValueError("panoptic maps must hold integers")
    if preds.numel() == 0:
        return
    if preds.min() < 0:
        raise ValueError("predicted categories and instances must be >= 0")
    if targets[..., 0].min() < VOID or targets[..., 1].min() < 0:
        raise ValueError(f"target categories must be >= {VOID} (void) and instances >= 0")


def _distinct(key: Tensor, span: int) -> tuple[Tensor, Tensor, Tensor]:
    """torch.unique(key) with inverse and counts, for non-negative keys below `span`.

    Counting with bincount and a lookup table is linear and several times faster than
    torch.unique's sort, so it is used whenever the table stays small next to the input.
    """
    if span > max(4 * key.numel(), 1 << 16):
        return torch.unique(key, return_inverse=True, return_counts=True)
    counts = torch.bincount(key, minlength=span)
    values = counts.nonzero().squeeze(1)
    rank = torch.cumsum(counts > 0, dim=0) - 1
    return values, rank[key], counts[values]


def _segment_keys(maps: Tensor, is_stuff: Tensor, instance_span: int) -> Tensor:
    """Key of each pixel's segment, unique over the batch: (B, H, W, 2) -> (B, H*W).

    key = (image * C + category) * instance_span + instance, the instance being 0 for stuff;
    VOID becomes the last category C - 1, a stuff.
    """
    batch = maps.shape[0]
    num_categories = is_stuff.numel()
    category = maps[..., 0].reshape(batch, -1).long() % num_categories
    instance = torch.where(is_stuff[category], 0, maps[..., 1].reshape(batch, -1).long())
    image = torch.arange(batch, device=maps.device)[:, None]
    return (image * num_categories + category) * instance_span + instance


def _stats(
    preds: Tensor, targets: Tensor, stuffs: Collection[int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per image and category: (B, C) IoU sum of matches, TP, FP and FN, all float64."""
    check_maps(preds, targets)
    batch = preds.shape[0]
    device = preds.device
    highest = torch.cat([preds.reshape(-1, 2), targets.reshape(-1, 2)]).amax(dim=0).tolist()
    num_categories, instance_span = (highest[0] + 1, highest[1] + 1) if preds.numel() else (1, 1)
    # One more category, the last, stands for VOID (-1 modulo C + 1).
    is_stuff = torch.zeros(num_categories + 1, dtype=torch.bool, device=device)
    is_stuff[[s for s in stuffs if 0 <= s < num_categories] + [num_categories]] = True
    image_span = (num_categories + 1) * instance_span  # keys of one image's possible segments
    key_span = batch * image_span

    pred_pixels = _segment_keys(preds, is_stuff, instance_span).reshape(-1)
    gt_pixels = _segment_keys(targets, is_stuff, instance_span).reshape(-1)
    pred_keys, pred_segment, pred_area = _distinct(pred_pixels, key_span)
    gt_keys, _, gt_area = _distinct(gt_pixels, key_span)
    # A pixel pairs its predicted segment with a ground-truth segment of the same image, so the
    # pair needs only the ground truth's key within the image.
    pairs, _, intersection = _distinct(
        pred_segment * image_span + gt_pixels % image_span, pred_keys.numel() * image_span
    )
    pred_of_pair = pairs // image_span
    gt_of_pair = torch.searchsorted(
        gt_keys, pred_keys[pred_of_pair] // image_span * image_span + pairs % image_span
    )
    pred_category = pred_keys // instance_span  # image * (C + 1) + category
    gt_category = gt_keys // instance_span
    gt_void = gt_category % (num_categories + 1) == num_categories
    pair_void = gt_void[gt_of_pair]
    pred_void_area = torch.zeros_like(pred_area).index_add_(
        0, pred_of_pair[pair_void], intersection[pair_void]
    )
    union = (
        pred_area[pred_of_pair] - pred_void_area[pred_of_pair] + gt_area[gt_of_pair] - intersection
    )
    iou = intersection.double() / union.double()
    # Predictions are never void, so a category match excludes void ground truth.
    matched = (pred_category[pred_of_pair] == gt_category[gt_of_pair]) & (iou > 0.5)
    pred_matched = torch.zeros_like(pred_area, dtype=torch.bool)
    pred_matched[pred_of_pair[matched]] = True
    gt_matched = torch.zeros_like(gt_area, dtype=torch.bool)
    gt_matched[gt_of_pair[matched]] = True

    def per_image_category(image_category: Tensor, values: Tensor) -> Tensor:
        out = torch.zeros(key_span // instance_span, dtype=torch.float64, device=device)
        out.index_add_(0, image_category, values.double())
        return out.view(batch, num_categories + 1)[:, :num_categories]

    match_category = gt_category[gt_of_pair[matched]]
    iou_sum = per_image_category(match_category, iou[matched])
    tp = per_image_category(match_category, torch.ones_like(iou[matched]))
    # An unmatched prediction lying mostly on void is not held against the model.
    false_positive = ~pred_matched & (2 * pred_void_area <= pred_area)
    fp = per_image_category(pred_category, false_positive)
    fn = per_image_category(gt_category, ~gt_matched & ~gt_void)
    return iou_sum, tp, fp, fn


def panoptic_quality(
    preds: Tensor, targets: Tensor, *, stuffs: Collection[int] = SHAPES_STUFFS
) -> Tensor:
    """PQ of each predicted map against its ground truth, in [0, 1]: (B, H, W, 2) x 2 -> (B,).

    Channel 0 of the last axis is the category, channel 1 the instance id (ignored for the
    categories in `stuffs`; every other category is a thing). B is usually images x samples:
    repeat an image's ground truth for its samples. Returns float32 on the inputs' device
    (computed in float64).
    """
    iou_sum, tp, fp, fn = _stats(preds, targets, stuffs)
    denominator = tp + 0.5 * fp + 0.5 * fn
    present = denominator > 0
    per_category = torch.where(present, iou_sum / torch.where(present, denominator, 1.0), 0.0)
    return (per_category.sum(dim=1) / present.sum(dim=1)).to(torch.float32)
