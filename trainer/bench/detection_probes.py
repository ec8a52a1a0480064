"""Probes behind the detection ablations in docs/benchmarks.md, on one checkpoint.

    python -m trainer.bench.detection_probes errors CHECKPOINT      # where greedy boxes fail
    python -m trainer.bench.detection_probes oracle CHECKPOINT      # mAP if scores were true IoU
    python -m trainer.bench.detection_probes fixed-batch CHECKPOINT [--lr 1e-4] [--steps 200]
    python -m trainer.bench.detection_probes confidence CHECKPOINT [--lr 1e-3] [--steps 600]
    python -m trainer.bench.detection_probes hedge CHECKPOINT       # greedy boxes, top-k classes

`errors` sorts each held-out ground-truth box by what the greedy decode did with it (a same-class
box at IoU >= 0.75, at 0.5-0.75, a box of another class at IoU >= 0.5, a box at IoU 0.1-0.5,
nothing). `oracle` re-scores the greedy boxes with their true IoU to a same-class ground-truth
box: the most that better box scores alone could give. `fixed-batch` runs REINFORCE on one
batch of 8 train scenes: the estimator works if the reward on those scenes rises. `confidence`
trains only the confidence token (its loss, on the policy's own samples, bench tuning settings)
and evaluates. `hedge` keeps each greedy box's place but writes it once per class among its k
likeliest (k = 1, 2, 3, 5, 8), each scored by that class's probability: what naming a second
class for an unsure box gives the metric (k = 8: the `every_class` decoding). All use the
benchmark's data and tuning settings (`trainer/bench/detection.py`).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
from pathlib import Path

import torch

from trainer.bench.detection import DATA, TUNE
from trainer.eval.detection_metrics import coco_detection_metrics
from trainer.train.checkpoint import load_checkpoint
from trainer.train.data import TrainStream, eval_source
from trainer.train.evaluate import (
    evaluate_model,
    predict_source,
    to_coco_results,
    with_classes,
)
from trainer.train.mle import make_optimizer
from trainer.train.reinforce import reinforce_step


def coco_iou(a: list[float], b: list[float]) -> float:
    """IoU of two COCO `[x, y, w, h]` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def greedy_results(checkpoint: Path) -> tuple[list[dict], dict]:
    model, task = load_checkpoint(checkpoint).build("cpu")
    source = eval_source(DATA)
    return to_coco_results(source, predict_source(model, task, source, fill=False), "class"), \
        source.gt


def errors(checkpoint: Path) -> dict:
    results, gt = greedy_results(checkpoint)
    by_image = collections.defaultdict(list)
    for r in results:
        by_image[r["image_id"]].append(r)
    kinds = collections.Counter()
    for a in gt["annotations"]:
        preds = by_image[a["image_id"]]
        same = max([coco_iou(p["bbox"], a["bbox"]) for p in preds
                    if p["category_id"] == a["category_id"]], default=0.0)
        any_class = max([coco_iou(p["bbox"], a["bbox"]) for p in preds], default=0.0)
        kinds["hit IoU>=0.75" if same >= 0.75 else "hit IoU 0.5-0.75" if same >= 0.5
              else "other class IoU>=0.5" if any_class >= 0.5
              else "box IoU 0.1-0.5" if any_class > 0.1 else "missed"] += 1
    return {"ground_truth": len(gt["annotations"]), "predictions": len(results), **kinds}


def oracle(checkpoint: Path) -> dict:
    results, gt = greedy_results(checkpoint)
    by_image = collections.defaultdict(list)
    for a in gt["annotations"]:
        by_image[a["image_id"]].append(a)
    rescored = [{**r, "score": max([coco_iou(r["bbox"], a["bbox"]) for a in by_image[r["image_id"]]
                                    if a["category_id"] == r["category_id"]], default=0.0)
                 + 1e-3 * r["score"]} for r in results]  # class probability breaks ties
    return {name: {k: round(m[k], 2) for k in ("map", "ap50", "ar100")}
            for name, m in (("class_scores", coco_detection_metrics(gt, results)),
                            ("true_iou_scores", coco_detection_metrics(gt, rescored)))}


def fixed_batch(checkpoint: Path, lr: float, steps: int) -> list[dict]:
    model, task = load_checkpoint(checkpoint).build("cpu")
    batch = TrainStream(DATA, "train", seed=5).next_batch(TUNE.batch_size, model.config.image_size)
    config = dataclasses.replace(TUNE, lr=lr)
    optimizer = make_optimizer(model, lr, 0.0, readout_lr=config.readout_lr)
    generator = torch.Generator().manual_seed(0)

    def greedy_reward() -> float:
        tokens, _ = model.sample(batch.images, 1, temperature=0)
        return round(task.reward(tokens, batch, 1).reward.mean().item(), 3)

    log = [{"step": 0, "greedy_reward": greedy_reward()}]
    for step in range(1, steps + 1):
        metrics = reinforce_step(model, optimizer, task, batch, config, generator)
        if step % 25 == 0:
            log.append({"step": step, "sampled_reward": round(metrics["reward"], 3),
                        "greedy_reward": greedy_reward()})
    return log


def confidence_only(checkpoint: Path, lr: float, steps: int) -> dict:
    model, task = load_checkpoint(checkpoint).build("cpu")
    optimizer = make_optimizer(model, lr, 0.0)
    stream = TrainStream(DATA, "train", seed=1)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        batch = stream.next_batch(TUNE.batch_size, model.config.image_size)
        tokens, _ = model.sample(batch.images, TUNE.samples, temperature=TUNE.temperature,
                                 generator=generator)
        kept = model.trim(tokens)
        loss = task.aux_loss(model.logits(batch.images, kept),
                             task.reward(tokens, batch, TUNE.samples))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return evaluate_model(model, task, eval_source(DATA))[0]


def hedge(checkpoint: Path) -> dict:
    model, task = load_checkpoint(checkpoint).build("cpu")
    source = eval_source(DATA)
    detections = predict_source(model, task, source, fill=False)
    out = {}
    for k in (1, 2, 3, 5, 8):
        hedged = [with_classes(d, d.class_probs.topk(k, dim=-1).indices) for d in detections]
        m = coco_detection_metrics(source.gt, to_coco_results(source, hedged, "class"))
        out[f"top{k}"] = {key: round(m[key], 2) for key in ("map", "ap50", "ar100")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=["errors", "oracle", "fixed-batch", "confidence", "hedge"])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.probe == "errors":
        out = errors(args.checkpoint)
    elif args.probe == "oracle":
        out = oracle(args.checkpoint)
    elif args.probe == "fixed-batch":
        out = fixed_batch(args.checkpoint, args.lr or 1e-4, args.steps or 200)
    elif args.probe == "hedge":
        out = hedge(args.checkpoint)
    else:
        out = confidence_only(args.checkpoint, args.lr or 1e-3, args.steps or 600)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
