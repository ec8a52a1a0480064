"""COCO box metrics (mAP, AP50, AP75, AR@100, ...), computed by the field's reference code.

`coco_detection_metrics(gt, results)` runs COCO's own evaluation on a ground-truth instances
dict and a results list (`{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`) and
returns its twelve summary numbers in percent. The default backend is faster-coco-eval (C++),
which gives the same numbers as pycocotools' COCOeval (the tests compare every statistic on
fixtures) in a fraction of the time; `backend="pycocotools"` runs the reference itself.
Both libraries' console output is silenced.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from typing import Literal

import faster_coco_eval
import numpy as np
import pycocotools.coco
import pycocotools.cocoeval

from trainer.data.coco import detections_to_coco_results
from trainer.data.detection import DetectionExample, category_ids, examples_to_coco_gt

# Names of COCOeval.stats, in its order (AR_k = recall with at most k detections per image).
STAT_NAMES: tuple[str, ...] = (
    "map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
    "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
)
Backend = Literal["faster", "pycocotools"]
_LIBRARIES = {
    "faster": (faster_coco_eval.COCO, faster_coco_eval.COCOeval_faster),
    "pycocotools": (pycocotools.coco.COCO, pycocotools.cocoeval.COCOeval),
}


def _check_results(gt: dict, results: Sequence[dict]) -> None:
    """Refuse results the libraries would reject with a bare assertion or silently ignore."""
    image_ids = {image["id"] for image in gt["images"]}
    category_ids_ = {category["id"] for category in gt["categories"]}
    for i, result in enumerate(results):
        if result.get("image_id") not in image_ids:
            raise ValueError(f"results[{i}]: image_id {result.get('image_id')!r} is not in gt")
        if result.get("category_id") not in category_ids_:
            category = result.get("category_id")
            raise ValueError(f"results[{i}]: category_id {category!r} is not in gt")
        bbox = result.get("bbox")
        if not isinstance(bbox, list | tuple) or len(bbox) != 4:
            raise ValueError(f"results[{i}]: bbox must be [x, y, width, height], got {bbox!r}")


def _run_cocoeval(gt: dict, results: list[dict], backend: Backend) -> np.ndarray:
    if backend not in _LIBRARIES:
        raise ValueError(f"backend must be one of {sorted(_LIBRARIES)}, got {backend!r}")
    COCO, COCOeval = _LIBRARIES[backend]
    # Both libraries write into the dicts they are given (loadRes adds ids and areas, evaluation
    # adds "ignore"), so they get copies and the caller's gt and results stay as they were.
    gt = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    results = [dict(r) for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list; an empty results set scores zero instead.
            coco_dt = COCO()
            coco_dt.dataset = {**gt, "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats[: len(STAT_NAMES)], dtype=np.float64)


def coco_detection_metrics(
    gt: dict, results: Sequence[dict], *, backend: Backend = "faster"
) -> dict[str, float]:
    """COCO box metrics of `results` against `gt`, in percent (0-100), keyed by STAT_NAMES.

    Every image of `gt` is evaluated, so an image without detections counts as missed. No
    detections at all give 0.0. A statistic COCO leaves undefined (-1, e.g. AP of large objects
    when there are none) is NaN; so is everything when `gt` has no annotations.
    """
    if not gt["annotations"]:
        return dict.fromkeys(STAT_NAMES, math.nan)
    _check_results(gt, results)
    stats = _run_cocoeval(gt, list(results), backend)
    return {
        name: (math.nan if value < 0 else 100.0 * float(value))
        for name, value in zip(STAT_NAMES, stats, strict=True)
    }


def evaluate_detections(
    examples: Sequence[DetectionExample],
    predictions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    categories: Sequence[dict],
    *,
    backend: Backend = "faster",
) -> dict[str, float]:
    """COCO metrics of per-example predictions against the examples' own boxes.

    `predictions[i]` is `(boxes, scores, classes)` for `examples[i]`: (N, 4) `[ymin, xmin, ymax,
    xmax]` in pixels of that example's image, (N,) scores, (N,) contiguous class indices.
    """
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    results = detections_to_coco_results(
        [example.image_id for example in examples],
        [boxes for boxes, _, _ in predictions],
        [scores for _, scores, _ in predictions],
        [classes for _, _, classes in predictions],
        [example.image.shape[:2] for example in examples],
        category_ids(categories),
        normalized=False,
    )
    return coco_detection_metrics(
        examples_to_coco_gt(examples, categories), results, backend=backend
    )
