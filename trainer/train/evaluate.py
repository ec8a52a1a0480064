"""Evaluation with COCO's own metrics, and writing detections as COCO results files.

A model is scored under several decoding settings (`DECODINGS`), so each model is measured at
its best: greedy decoding, or greedy with EOS forbidden until `max_boxes` boxes ("fill": more
recall, the extra boxes ranked low by their scores); boxes scored by the class token's
probability (Pix2seq) or by the confidence token (the predicted IoU the tuned model learns);
or "every_class": each greedy box reported once per class, scored by that class's probability,
as dense detectors report boxes (a box whose class the model is unsure of also counts, ranked
low, for its second-likeliest class).
Captioning and colorization checkpoints are scored by their task's own evaluation on the
held-out Synthetic Shapes scenes (`evaluate_checkpoint` dispatches on the checkpoint's task).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from trainer.configs import DataConfig
from trainer.data.coco import detections_to_coco_results, write_coco_results
from trainer.data.detection import DetectionSource, collate
from trainer.data.shapes import generate_scene, scene_seed
from trainer.eval.detection_metrics import coco_detection_metrics
from trainer.models.pix2seq import Pix2SeqModel
from trainer.tasks.detection import Detections, DetectionTask, predict
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint
from trainer.train.data import eval_source, shapes_config
from trainer.train.device import pick_device

# name -> (fill to max_boxes, score)
DECODINGS: dict[str, tuple[bool, str]] = {
    "class": (False, "class"),
    "confidence": (False, "confidence"),
    "class_fill": (True, "class"),
    "confidence_fill": (True, "confidence"),
    "every_class": (False, "every_class"),
}


def predict_source(
    model: Pix2SeqModel, task: DetectionTask, source: DetectionSource, *, fill: bool,
    batch_size: int = 100, temperature: float = 0.0, seed: int = 0, progress: bool = False,
) -> list[Detections]:
    """Detections for every example of `source`, in its order."""
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    out: list[Detections] = []
    starts = range(0, len(source), batch_size)
    for start in tqdm(starts, desc="eval", disable=not progress):
        batch = collate(source.examples[start : start + batch_size], model.config.image_size)
        out += predict(model, task.codec, batch.images.to(model.device),
                       min_boxes=task.codec.max_boxes if fill else 0,
                       temperature=temperature, generator=generator)
    return out


def to_coco_results(source: DetectionSource, detections: Sequence[Detections],
                    score: str) -> list[dict]:
    """COCO results (pixels of the original images, COCO category ids). `score`: "class",
    "confidence", or "every_class": each box once per class, scored by that class's
    probability (as dense detectors report boxes)."""
    if score == "every_class":
        detections = [with_classes(d, _all_classes(d)) for d in detections]
    return detections_to_coco_results(
        [e.image_id for e in source.examples],
        [d.boxes for d in detections],
        [d.confidence if score == "confidence" else d.class_prob for d in detections],
        [d.classes for d in detections],
        [e.image.shape[:2] for e in source.examples],
        source.category_ids,
    )


def _all_classes(detections: Detections) -> Tensor:
    """(K, C) every class index, for each box."""
    return torch.arange(detections.class_probs.shape[1]).expand_as(detections.class_probs)


def with_classes(detections: Detections, classes: Tensor) -> Detections:
    """Each box once per class of its row of `classes` (K, k) (box-major), scored by that
    class's probability."""
    k = classes.shape[1]
    return Detections(
        boxes=detections.boxes.repeat_interleave(k, 0),
        classes=classes.flatten(),
        class_prob=detections.class_probs.gather(1, classes).flatten(),
        confidence=detections.confidence.repeat_interleave(k, 0),
        class_probs=detections.class_probs.repeat_interleave(k, 0),
    )


def evaluate_model(
    model: Pix2SeqModel, task: DetectionTask, source: DetectionSource,
    decodings: Sequence[str] = tuple(DECODINGS), *, progress: bool = False,
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    """COCO metrics (percent) and results of each decoding setting by name."""
    metrics, results = {}, {}
    predictions: dict[bool, list[Detections]] = {}
    for name in decodings:
        fill, score = DECODINGS[name]
        if fill not in predictions:
            predictions[fill] = predict_source(model, task, source, fill=fill, progress=progress)
        results[name] = to_coco_results(source, predictions[fill], score)
        full = coco_detection_metrics(source.gt, results[name])
        metrics[name] = {k: round(full[k], 2) for k in ("map", "ap50", "ap75", "ar100")}
        metrics[name]["boxes_per_image"] = round(len(results[name]) / max(1, len(source)), 2)
    return metrics, results


def best_decoding(metrics: dict[str, dict[str, float]], allowed: Sequence[str]) -> str:
    """The decoding setting with the highest mAP among `allowed`."""
    return max(allowed, key=lambda name: metrics[name]["map"])


def evaluate_checkpoint(
    checkpoint: Checkpoint, data: DataConfig, decodings: Sequence[str], *,
    out: str | None = None, progress: bool = True,
) -> dict:
    """`eval` command: metrics per decoding; `out` gets the results of the best one.
    Captioning and colorization: their task's metrics on the held-out scenes (no `out`)."""
    evaluate = task_entry(checkpoint.task_name).evaluate_scenes
    if evaluate is not None:
        return _evaluate_on_scenes(checkpoint, data, evaluate, out=out)
    model, task = checkpoint.build(pick_device())
    source = eval_source(data)
    _check_categories(checkpoint, source)
    metrics, results = evaluate_model(model, task, source, decodings, progress=progress)
    best = best_decoding(metrics, decodings)
    report = {"checkpoint_stage": checkpoint.stage, "step": checkpoint.step,
              "images": len(source), "best": best, **{k: v for k, v in metrics.items()}}
    if out:
        write_coco_results(Path(out), results[best])
        report["out"] = out
    return report


def _evaluate_on_scenes(checkpoint: Checkpoint, data: DataConfig, evaluate: Callable, *,
                        out: str | None) -> dict:
    """The first `eval_images` scenes of the eval split, scored by the task's `evaluate`."""
    if data.data_dir or out:
        raise ValueError(f"{checkpoint.task_name} is evaluated on Synthetic Shapes only, "
                         "without --data or --out")
    model, task = checkpoint.build(pick_device())
    scenes = [generate_scene(scene_seed(data.eval_split, i), shapes_config(data))
              for i in range(data.eval_images)]
    return {"task": checkpoint.task_name, "checkpoint_stage": checkpoint.stage,
            "step": checkpoint.step, "images": len(scenes),
            **evaluate(model, task, scenes)}


def sample_checkpoint(
    checkpoint: Checkpoint, data: DataConfig, *, out: str, n: int, temperature: float,
    seed: int,
) -> int:
    """`sample` command: n sampled detection sets per image, scored by the confidence token
    (tuned) or class probability (pretrained), as one COCO results file; returns its size."""
    if checkpoint.task_name != "detection":
        raise ValueError(f"sample writes detections; {checkpoint.task_name} has none")
    model, task = checkpoint.build(pick_device())
    source = eval_source(data)
    _check_categories(checkpoint, source)
    score = "confidence" if checkpoint.stage == "tune" else "class"
    results: list[dict] = []
    for i in range(n):
        detections = predict_source(model, task, source, fill=False, temperature=temperature,
                                    seed=seed + i)
        results += to_coco_results(source, detections, score)
    write_coco_results(Path(out), results)
    return len(results)


def _check_categories(checkpoint: Checkpoint, source: DetectionSource) -> None:
    if len(source.categories) != len(checkpoint.class_names):
        raise ValueError(
            f"the data has {len(source.categories)} categories, the checkpoint was trained on "
            f"{len(checkpoint.class_names)} ({', '.join(checkpoint.class_names)})"
        )
