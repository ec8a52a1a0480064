"""Straightforward per-image, per-box version of the detection reward, for tests and benchmarks.

`reference_detection_reward` follows the paper's reward function step by step, threshold by
threshold, with plain Python loops over floats (google-research/big_vision
`big_vision/configs/proj/reward_tune/detection_reward.py`, `_reward_fn_thr`): threshold the IoU
matrix, keep each prediction's best gt, match each gt to its best remaining prediction, count
matches and duplicates. `trainer.rewards.detection.detection_reward` computes the same figures
in closed form over a whole batch; tests check that the two agree, and
`time_reward_vs_reference` measures how much faster the batched version is.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Sequence

import torch
from torch import Tensor

from trainer.rewards.detection import (
    CONFIDENCE_IOU_THRESHOLD,
    DEFAULT_IOU_THRESHOLDS,
    detection_reward,
)

Box = Sequence[float]
# Fixture coordinates are multiples of 1/GRID: exact in float32 and float64, so both versions
# see bit-identical IoUs, and exact copies create the ties and duplicates worth testing.
GRID = 32


def reference_iou(a: Box, b: Box) -> float:
    """IoU of two `[ymin, xmin, ymax, xmax]` boxes; boxes with negative extent have area 0."""
    inter_h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_h * inter_w
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _first_argmax(values: Sequence[float]) -> int:
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


def _match_at(iou: list[list[float]], threshold: float) -> tuple[list[int], list[float], list[int]]:
    """One threshold of the paper: (kept gt per prediction, its IoU or 0, match per gt or -1)."""
    thresholded = [[v if v > threshold else 0.0 for v in row] for row in iou]
    kept_gt = [_first_argmax(row) for row in thresholded]
    kept_iou = [row[g] for row, g in zip(thresholded, kept_gt, strict=True)]
    num_gts = len(iou[0])
    gt_match = []
    for g in range(num_gts):
        column = [v if k == g else 0.0 for k, v in zip(kept_gt, kept_iou, strict=True)]
        p = _first_argmax(column)
        gt_match.append(p if column[p] > 0.0 else -1)
    return kept_gt, kept_iou, gt_match


def reference_detection_reward(
    pred_boxes: Sequence[Box],
    pred_classes: Sequence[int],
    pred_valid: Sequence[bool],
    gt_boxes: Sequence[Box],
    gt_classes: Sequence[int],
    gt_valid: Sequence[bool],
    *,
    class_weights: Sequence[float] | None = None,
    duplicate_penalty: float = 0.3,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
) -> tuple[float, list[float], list[bool]]:
    """Reward of one image's predictions, with each prediction's IoU target and matched flag."""
    num_preds = len(pred_boxes)
    if num_preds == 0 or not gt_boxes:
        return 0.0, [0.0] * num_preds, [False] * num_preds
    iou = [
        [
            reference_iou(p, g) if pv and gv and pc == gc else 0.0
            for g, gc, gv in zip(gt_boxes, gt_classes, gt_valid, strict=True)
        ]
        for p, pc, pv in zip(pred_boxes, pred_classes, pred_valid, strict=True)
    ]

    def weight(cls: int) -> float:
        return 1.0 if class_weights is None else class_weights[cls]

    rewards = []
    for threshold in iou_thresholds:
        kept_gt, kept_iou, gt_match = _match_at(iou, threshold)
        matched = sum(weight(gt_classes[g]) for g in range(len(gt_boxes)) if gt_match[g] >= 0)
        duplicates = sum(
            weight(pred_classes[p])
            for p in range(num_preds)
            if kept_iou[p] > 0.0 and gt_match[kept_gt[p]] != p
        )
        rewards.append(matched - duplicate_penalty * duplicates)

    kept_gt, kept_iou, gt_match = _match_at(iou, CONFIDENCE_IOU_THRESHOLD)
    is_match = [kept_iou[p] > 0.0 and gt_match[kept_gt[p]] == p for p in range(num_preds)]
    return sum(rewards) / len(rewards), kept_iou, is_match


def reference_detection_reward_batch(
    fixture: dict[str, Tensor], **options: object
) -> tuple[list[float], list[list[float]], list[list[bool]]]:
    """`reference_detection_reward` on each row of a batch given as `detection_reward` kwargs."""
    results = _score_rows({name: tensor.tolist() for name, tensor in fixture.items()}, options)
    rewards, pred_ious, matched = zip(*results, strict=True) if results else ((), (), ())
    return list(rewards), list(pred_ious), list(matched)


def _score_rows(
    rows: dict[str, list], options: dict[str, object]
) -> list[tuple[float, list[float], list[bool]]]:
    fields = ("pred_boxes", "pred_classes", "pred_valid", "gt_boxes", "gt_classes", "gt_valid")
    return [
        reference_detection_reward(*(rows[name][i] for name in fields), **options)
        for i in range(len(rows["pred_boxes"]))
    ]


def random_detection_fixture(
    generator: torch.Generator,
    batch: int,
    max_preds: int,
    max_gts: int,
    num_classes: int,
    valid_rate: float = 0.85,
) -> dict[str, Tensor]:
    """Random `detection_reward` kwargs full of the hard cases: exact copies of gt boxes
    (duplicates and ties), jittered copies near the thresholds, wrong classes, unrelated boxes,
    zero-area and flipped boxes, and padding scattered anywhere."""

    def ints(low: int, high: int, *shape: int) -> Tensor:
        return torch.randint(low, high, shape, generator=generator)

    def random_boxes(*shape: int) -> Tensor:
        corner = ints(0, GRID * 3 // 4 + 1, *shape, 2)
        size = ints(1, GRID * 3 // 8 + 1, *shape, 2)
        return torch.cat([corner, corner + size], dim=-1).float() / GRID

    gt_boxes = random_boxes(batch, max_gts)
    gt_classes = ints(0, num_classes, batch, max_gts)
    source = ints(0, max(max_gts, 1), batch, max_preds)
    if max_gts:
        copies = gt_boxes.gather(1, source[..., None].expand(-1, -1, 4))
        copied_classes = gt_classes.gather(1, source)
    else:
        copies = random_boxes(batch, max_preds)
        copied_classes = ints(0, num_classes, batch, max_preds)
    jittered = copies + ints(-2, 3, batch, max_preds, 4).float() / GRID
    flipped = copies[..., [2, 3, 0, 1]]
    flat = torch.cat([copies[..., :2], copies[..., :2]], dim=-1)
    kind = ints(0, 6, batch, max_preds)[..., None]
    pred_boxes = torch.where(kind == 0, copies, jittered)
    pred_boxes = torch.where(kind == 2, random_boxes(batch, max_preds), pred_boxes)
    pred_boxes = torch.where(kind == 3, flipped, pred_boxes)
    pred_boxes = torch.where(kind == 4, flat, pred_boxes)
    wrong_class = torch.rand(batch, max_preds, generator=generator) < 0.2
    pred_classes = torch.where(wrong_class, ints(0, num_classes, batch, max_preds), copied_classes)
    return {
        "pred_boxes": pred_boxes,
        "pred_classes": pred_classes,
        "pred_valid": torch.rand(batch, max_preds, generator=generator) < valid_rate,
        "gt_boxes": gt_boxes,
        "gt_classes": gt_classes,
        "gt_valid": torch.rand(batch, max_gts, generator=generator) < valid_rate,
    }


def time_reward_vs_reference(
    n_images: int = 16, samples: int = 8, seed: int = 0, repeats: int = 20
) -> dict[str, float]:
    """Seconds to score one REINFORCE batch: n_images x samples sequences, up to 10
    predictions and 8 gt boxes each, 80 classes.

    - `reward_s`: `detection_reward` on the batch (median of `repeats` calls after a warm-up).
    - `pycocotools_reward_equiv_s`: the same per-sequence figures from
      `reference_detection_reward`, the per-image, per-box Python loop (best of 3; tensors
      are turned into lists outside the timing).
    - `pycocotools_evaluate_s`: for scale only, pycocotools' per-image evaluation
      (`COCOeval.evaluate`, one area range, each sequence as an image, best of 3, built
      outside the timing). Its greedy score-ordered matching gives different figures.
    - `speedup`: `pycocotools_reward_equiv_s / reward_s`.
    """
    generator = torch.Generator().manual_seed(seed)
    fixture = random_detection_fixture(
        generator, n_images * samples, max_preds=10, max_gts=8, num_classes=80
    )
    detection_reward(**fixture)
    vectorised = []
    for _ in range(repeats):
        start = time.perf_counter()
        detection_reward(**fixture)
        vectorised.append(time.perf_counter() - start)
    rows = {name: tensor.tolist() for name, tensor in fixture.items()}
    looped = []
    for _ in range(3):
        start = time.perf_counter()
        _score_rows(rows, {})
        looped.append(time.perf_counter() - start)
    reward_s = statistics.median(vectorised)
    reference_s = min(looped)
    return {
        "reward_s": reward_s,
        "pycocotools_reward_equiv_s": reference_s,
        "pycocotools_evaluate_s": _time_pycocotools_evaluate(rows),
        "speedup": reference_s / reward_s,
    }


def _time_pycocotools_evaluate(rows: dict[str, list]) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box: Box) -> list[float]:
        return [box[1], box[0], max(0.0, box[3] - box[1]), max(0.0, box[2] - box[0])]

    def objects(side: str, image: int) -> list[tuple[list[float], int]]:
        return [
            (xywh(box), cls)
            for box, cls, valid in zip(
                rows[f"{side}_boxes"][image],
                rows[f"{side}_classes"][image],
                rows[f"{side}_valid"][image],
                strict=True,
            )
            if valid
        ]

    images = range(len(rows["gt_boxes"]))
    annotations = [
        {"image_id": i, "category_id": cls, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0}
        for i in images
        for bbox, cls in objects("gt", i)
    ]
    for number, annotation in enumerate(annotations, start=1):
        annotation["id"] = number
    categories = {cls for classes in rows["gt_classes"] + rows["pred_classes"] for cls in classes}
    results = [
        {"image_id": i, "category_id": cls, "bbox": bbox, "score": 1.0 - 0.01 * rank}
        for i in images
        for rank, (bbox, cls) in enumerate(objects("pred", i))
    ]
    timings = []
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = {
            "images": [{"id": i} for i in images],
            "annotations": annotations,
            "categories": [{"id": cls} for cls in sorted(categories)],
        }
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
        evaluation.params.areaRng = [[0.0, 1e10]]
        evaluation.params.areaRngLbl = ["all"]
        for _ in range(3):
            start = time.perf_counter()
            evaluation.evaluate()
            timings.append(time.perf_counter() - start)
    return min(timings)
