"""Decoding settings that turn a model's boxes into COCO results (`trainer.train.evaluate`)."""

from __future__ import annotations

import torch

from trainer.data.detection import shapes_source
from trainer.eval.detection_metrics import coco_detection_metrics
from trainer.tasks.detection import Detections
from trainer.train.evaluate import to_coco_results


def unsure_detections(source, wrong: float, right: float) -> list[Detections]:
    """Every true box, named the next class with probability `wrong` and its own with `right`
    (the rest spread over the other classes)."""
    c = len(source.categories)
    out = []
    for example in source.examples:
        k = len(example.classes)
        true = torch.as_tensor(example.classes)
        named = (true + 1) % c
        probs = torch.full((k, c), (1 - wrong - right) / (c - 2))
        probs[torch.arange(k), named] = wrong
        probs[torch.arange(k), true] = right
        size = torch.tensor(example.image.shape[:2] * 2, dtype=torch.float32)
        boxes = torch.as_tensor(example.boxes) / size
        out.append(Detections(boxes, named, probs[torch.arange(k), named],
                              torch.full((k,), 0.5), probs))
    return out


def test_every_class_reports_each_box_once_per_class_with_its_probability() -> None:
    source = shapes_source("val", 5)
    detections = unsure_detections(source, wrong=0.6, right=0.3)
    results = to_coco_results(source, detections, "every_class")
    c = len(source.categories)
    assert len(results) == c * sum(len(d.classes) for d in detections)
    first = [r for r in results if r["image_id"] == source.examples[0].image_id][:c]
    assert [r["category_id"] for r in first] == [cat["id"] for cat in source.categories]
    assert torch.allclose(torch.tensor([r["score"] for r in first]), detections[0].class_probs[0])
    # Every box is named the wrong class: nothing counts, unless each class is reported; then
    # every object is found, behind the wrongly named boxes that outscore it.
    named = coco_detection_metrics(source.gt, to_coco_results(source, detections, "class"))
    every = coco_detection_metrics(source.gt, results)
    assert named["map"] == named["ar100"] == 0.0
    assert every["ar100"] == 100.0 and 0 < every["map"] < 100
