"""COCO box metrics: the trainer's evaluation equals pycocotools' COCOeval on fixtures."""

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from trainer.data.coco import load_coco_dir
from trainer.data.detection import shapes_source
from trainer.eval.detection_metrics import (
    STAT_NAMES,
    coco_detection_metrics,
    evaluate_detections,
)


def random_gt(rng: np.random.Generator) -> dict:
    """Eight 300x400 images, three categories, boxes from tiny to huge (all COCO area ranges),
    a few crowd boxes, and one image without objects."""
    images = [{"id": i + 1, "file_name": f"{i}.png", "height": 300, "width": 400}
              for i in range(8)]
    categories = [{"id": 2, "name": "a"}, {"id": 5, "name": "b"}, {"id": 9, "name": "c"}]
    annotations = []
    for image in images[:-1]:
        for _ in range(rng.integers(1, 7)):
            w, h = rng.uniform(4, 250, size=2)
            x, y = rng.uniform(0, 400 - w), rng.uniform(0, 300 - h)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image["id"],
                "category_id": int(rng.choice([2, 5, 9])), "bbox": [x, y, w, h],
                "area": w * h, "iscrowd": int(rng.random() < 0.1),
            })
    return {"images": images, "annotations": annotations, "categories": categories}


def noisy_results(gt: dict, rng: np.random.Generator) -> list[dict]:
    """Jittered copies of the truth (sometimes the wrong class), false positives, tied scores,
    and one image with more than 100 detections so maxDets cuts in."""
    results = []
    for ann in gt["annotations"]:
        for _ in range(rng.integers(0, 3)):
            x, y, w, h = ann["bbox"]
            jitter = rng.normal(0, 0.05, size=4) * [w, h, w, h]
            category = ann["category_id"] if rng.random() < 0.8 else int(rng.choice([2, 5, 9]))
            results.append({
                "image_id": ann["image_id"], "category_id": category,
                "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0),
                         max(h + jitter[3], 1.0)],
                "score": float(np.round(rng.random(), 1)),  # rounded: many ties
            })
    for image_id in [1] * 130 + [8] * 5:
        w, h = rng.uniform(5, 200, size=2)
        results.append({
            "image_id": image_id, "category_id": int(rng.choice([2, 5, 9])),
            "bbox": [rng.uniform(0, 400 - w), rng.uniform(0, 300 - h), w, h],
            "score": float(rng.random()),
        })
    return results


def reference_stats(gt: dict, results: list[dict]) -> dict[str, float]:
    """pycocotools' COCOeval, used the documented way (through JSON, as the tools read files)."""
    gt, results = json.loads(json.dumps(gt)), json.loads(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        name: math.nan if value < 0 else 100.0 * value
        for name, value in zip(STAT_NAMES, evaluator.stats, strict=True)
    }


def assert_stats_equal(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(STAT_NAMES)
    for name in STAT_NAMES:
        if math.isnan(want[name]):
            assert math.isnan(got[name]), name
        else:
            assert abs(got[name] - want[name]) <= 1e-9, (name, got[name], want[name])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_metrics_equal_pycocotools_on_random_fixtures(seed: int, backend: str) -> None:
    rng = np.random.default_rng(seed)
    gt = random_gt(rng)
    results = noisy_results(gt, rng)
    want = reference_stats(gt, results)
    assert 5 < want["map"] < 95  # a fixture where every statistic has something to count
    assert_stats_equal(coco_detection_metrics(gt, results, backend=backend), want)


def test_metrics_equal_pycocotools_on_a_coco_folder_with_crowds(tiny_coco_dir: Path) -> None:
    gt = load_coco_dir(tiny_coco_dir).gt
    results = [
        {"image_id": 10, "category_id": 3, "bbox": [3.0, 2.0, 27.0, 18.0], "score": 0.9},
        {"image_id": 10, "category_id": 11, "bbox": [38.0, 12.0, 20.0, 30.0], "score": 0.8},
        {"image_id": 10, "category_id": 7, "bbox": [31.0, 0.0, 9.0, 8.0], "score": 0.95},  # crowd
        {"image_id": 11, "category_id": 3, "bbox": [5.0, 5.0, 20.0, 40.0], "score": 0.7},
        {"image_id": 12, "category_id": 7, "bbox": [1.0, 1.0, 10.0, 10.0], "score": 0.6},
    ]
    assert_stats_equal(coco_detection_metrics(gt, results), reference_stats(gt, results))


def test_perfect_detections_score_100_and_none_score_0() -> None:
    source = shapes_source("val", 10)
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
         "score": 1.0}
        for a in source.gt["annotations"]
    ]
    metrics = coco_detection_metrics(source.gt, perfect)
    assert metrics["map"] == metrics["ap50"] == metrics["ap75"] == metrics["ar100"] == 100.0
    nothing = coco_detection_metrics(source.gt, [])
    assert nothing["map"] == nothing["ap50"] == nothing["ar100"] == 0.0


def test_evaluation_leaves_its_inputs_as_they_were() -> None:
    rng = np.random.default_rng(3)
    gt = random_gt(rng)
    results = noisy_results(gt, rng)
    gt_before, results_before = json.dumps(gt), json.dumps(results)
    first = coco_detection_metrics(gt, results)
    assert json.dumps(gt) == gt_before and json.dumps(results) == results_before
    assert_stats_equal(coco_detection_metrics(gt, results), first)


def test_evaluate_detections_from_examples_and_pixel_predictions() -> None:
    source = shapes_source("val", 6)
    examples = list(source)
    perfect = [(e.boxes, np.ones(len(e.classes)), e.classes) for e in examples]
    assert evaluate_detections(examples, perfect, source.categories)["map"] == 100.0
    # Each image loses its first object and the rest get graded scores: the same as COCO
    # results built by hand from the ground truth.
    partial = [(e.boxes[1:], np.linspace(0.9, 0.1, len(e.classes) - 1), e.classes[1:])
               for e in examples]
    by_hand = []
    for example, (_, scores, _) in zip(examples, partial, strict=True):
        own = [a for a in source.gt["annotations"] if a["image_id"] == example.image_id]
        by_hand += [{**a, "score": float(score)} for a, score in zip(own[1:], scores, strict=True)]
    metrics = evaluate_detections(examples, partial, source.categories)
    assert_stats_equal(metrics, coco_detection_metrics(source.gt, by_hand))
    assert 0 < metrics["ar100"] < 100
    with pytest.raises(ValueError, match="predictions for"):
        evaluate_detections(examples, perfect[:2], source.categories)


def test_results_that_do_not_match_the_gt_are_refused_clearly() -> None:
    gt = shapes_source("val", 2).gt
    good = {"image_id": gt["images"][0]["id"], "category_id": 1, "bbox": [0, 0, 5, 5],
            "score": 0.5}
    with pytest.raises(ValueError, match=r"results\[0\]: image_id 999"):
        coco_detection_metrics(gt, [{**good, "image_id": 999}])
    with pytest.raises(ValueError, match=r"results\[1\]: category_id 42"):
        coco_detection_metrics(gt, [good, {**good, "category_id": 42}])
    with pytest.raises(ValueError, match="backend"):
        coco_detection_metrics(gt, [good], backend="detectron")  # type: ignore[arg-type]
