"""Held-out selection: a tuning run ends with the policy that scored best on fixed held-out images.

`tune` scores its policy on held-out images (`heldout_for`) before its first step, every
`TuneConfig.select_every` steps and after its last one, and ends with the weights of the best
score; the starting model is a candidate like the others, so a run never ends worse on those
images than it started. The images: the first `select_images` of Synthetic Shapes' val split
(the final evaluations use test), or of a data folder's held-out share, which training never
draws (`trainer.train.data.folder_shares`). The score is the task's main metric against the
ground truth (`SELECT_METRICS`: detection COCO mAP at its best decoding, captioning CIDEr-D,
colorization the task's reward, colourfulness and fidelity together, panoptic PQ) or, where
the held-out images have no ground truth and a learned reward tunes the run, the reward model's
mean score of the policy's greedy outputs (`LEARNED_REWARD`).

`Selection` is the record: the metric and where it comes from, the score of every evaluated
step, the start's and the best one's. It is stored in the checkpoint's run config, with the
best weights beside the model's (`Checkpoint.best_state`), so a resumed run keeps them.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainer.configs import DataConfig, TuneConfig
from trainer.data.detection import DetectionSource, shapes_source
from trainer.data.shapes import generate_scene, scene_seed
from trainer.reward_model.model import RewardModel
from trainer.reward_model.reward import greedy_score
from trainer.tasks.registry import task_entry
from trainer.train.data import TrainStream, shapes_config
from trainer.train.evaluate import DECODINGS, best_decoding, evaluate_model

# Each task's main figure, by the name its evaluation (`evaluate_scenes`) gives it.
SELECT_METRICS = {"detection": "map", "captioning": "cider", "colorization": "reward",
                  "panoptic": "pq"}
LEARNED_REWARD = "learned_reward"  # the metric where the held-out images lack ground truth
SOURCES = ("ground_truth", LEARNED_REWARD)  # what a selection's scores were measured against
SPLIT = "val"  # Synthetic Shapes split of the held-out scenes
NAMES = {"map": "mAP", "cider": "CIDEr-D", "reward": "reward", "pq": "PQ",
         LEARNED_REWARD: "learned reward"}

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class HeldOut:
    """What selection scores a policy on, and how: `score(model, task) -> float`."""

    metric: str
    source: str  # one of SOURCES
    images: int
    key: str  # names the images and the score: a record made on others is not continued
    score: Callable[[nn.Module, Any], float]


def heldout_for(task_name: str, data: DataConfig, config: TuneConfig, stream: TrainStream,
                reward_model: RewardModel | None = None) -> HeldOut:
    """The held-out images of a run on `data` (a data folder's come from the run's `stream`,
    which holds them out of training); ValueError naming the setting when there are none or
    nothing can score them."""
    n = config.select_images
    if stream.shares is None:
        scenes = [generate_scene(scene_seed(SPLIT, i), shapes_config(data)) for i in range(n)]
        key = f"shapes {SPLIT} {n} objects {data.min_objects}-{data.max_objects}"
        if task_name == "detection":
            return _mean_ap(shapes_source(SPLIT, n, shapes_config(data)), key)
        metric, evaluate = SELECT_METRICS[task_name], task_entry(task_name).evaluate_scenes
        return HeldOut(metric, "ground_truth", n, key,
                       lambda model, task: evaluate(model, task, scenes)[metric])
    source = stream.shares.heldout.subset(n)
    if not len(source):
        raise ValueError(f"select_every={config.select_every} scores held-out images, and "
                         f"{data.data_dir} holds none out (val_fraction={data.val_fraction}); "
                         "set val_fraction > 0, or select_every=0 to tune without selection")
    ids = ",".join(str(example.image_id) for example in source.examples)
    key = f"folder {len(source)} images {hashlib.sha256(ids.encode()).hexdigest()[:12]}"
    if stream.shares.ground_truth:
        return _mean_ap(source, key)
    if reward_model is None:
        raise ValueError(f"{data.data_dir}: the held-out images have no ground truth, and no "
                         "learned reward scores them; set select_every=0 to tune without "
                         "selection")
    return HeldOut(LEARNED_REWARD, LEARNED_REWARD, len(source), key,
                   lambda model, task: greedy_score(model, task.codec, reward_model,
                                                    source.examples))


def _mean_ap(source: DetectionSource, key: str) -> HeldOut:
    """COCO mAP (percent) at the model's best decoding."""
    def score(model: nn.Module, task: Any) -> float:
        metrics, _ = evaluate_model(model, task, source, DECODINGS)
        return metrics[best_decoding(metrics, list(DECODINGS))]["map"]

    return HeldOut("map", "ground_truth", len(source), key, score)


@dataclass
class Selection:
    """A run's held-out scores, by step, and which step is the best (the first to reach the
    highest score: a later tie does not replace it)."""

    metric: str
    source: str
    images: int
    key: str
    start_step: int
    scores: dict[int, float] = field(default_factory=dict)
    best_step: int | None = None
    seconds: float = 0.0  # spent scoring

    @property
    def start_metric(self) -> float | None:
        return self.scores.get(self.start_step)

    @property
    def best_metric(self) -> float | None:
        return None if self.best_step is None else self.scores[self.best_step]

    @property
    def improved(self) -> bool:
        """Some step scored above the start: the run ends with weights other than its start's."""
        return self.best_step is not None and self.best_step != self.start_step

    def consider(self, step: int, score: float) -> bool:
        """Record `step`'s score; True when it is the new best (NaN never is, but the first)."""
        self.scores[step] = score
        best = self.best_metric
        if self.best_step is None or (not math.isnan(score) and
                                      (math.isnan(best) or score > best)):
            self.best_step = step
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "name": NAMES.get(self.metric, self.metric),
                "source": self.source, "images": self.images,
                "key": self.key, "start_step": self.start_step,
                "start_metric": self.start_metric, "best_step": self.best_step,
                "best_metric": self.best_metric, "improved": self.improved,
                "seconds": round(self.seconds, 2),
                "history": [[step, score] for step, score in sorted(self.scores.items())]}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Selection | None:
        if not values:
            return None
        return cls(metric=values["metric"], source=values["source"], images=values["images"],
                   key=values["key"], start_step=values["start_step"],
                   scores={int(step): float(score) for step, score in values["history"]},
                   best_step=values["best_step"], seconds=values.get("seconds", 0.0))

    def summary(self) -> str:
        """One line: what the selection measured and what it kept."""
        return summary_line(self.to_dict())


def summary_line(record: dict[str, Any] | None) -> str:
    """One line from a `Selection.to_dict()` record (None: selection was off)."""
    if not record:
        return "held-out selection off (select_every=0): the tuned checkpoint is the last step"
    name = record["name"]
    measured = ("ground truth" if record["source"] == "ground_truth"
                else "the learned reward's mean score, no ground truth")
    head = f"held-out {name} ({record['images']} images, {measured}): "
    if not record["improved"]:
        return head + (f"start {_figure(record['start_metric'])}; no step beat the start: the "
                       "tuned checkpoint is the starting model")
    return head + (f"start {_figure(record['start_metric'])} -> best "
                   f"{_figure(record['best_metric'])} at step {record['best_step']}")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class Selector:
    """Scores the policy at the selection steps and keeps the best weights. Only the process
    that writes checkpoints (`active`) scores; every process agrees on which steps are due."""

    def __init__(self, heldout: HeldOut, every: int, record: Selection, best: State | None,
                 active: bool) -> None:
        self.heldout, self.every, self.record, self.best = heldout, every, record, best
        self.active = active

    @classmethod
    def begin(cls, heldout: HeldOut, every: int, model: nn.Module, step: int,
              saved: dict[str, Any] | None, best_state: State | None, active: bool) -> Selector:
        """A selector from `step`: continuing the `saved` record (a resumed checkpoint's, whose
        best weights are `best_state`, or its own weights when None) if it scored the same
        images the same way, else a new record whose start is `step`."""
        record = Selection.from_dict(saved)
        if record is None or (record.key, record.metric) != (heldout.key, heldout.metric):
            record = Selection(heldout.metric, heldout.source, heldout.images, heldout.key,
                               start_step=step)
            return cls(heldout, every, record, None, active)
        best = best_state if best_state is not None else _copy(model.state_dict())
        return cls(heldout, every, record, _copy(best, model), active)

    def due(self, step: int) -> bool:
        """Whether the policy at `step` (after `step` updates) is to be scored."""
        return step not in self.record.scores and (
            step == self.record.start_step or step % self.every == 0)

    def select(self, step: int, model: nn.Module, task: Any) -> dict[str, float]:
        """Score the policy at `step`; `{"heldout_<metric>": score}` for the log (empty on an
        inactive process)."""
        if not self.active:
            return {}
        began, training = time.perf_counter(), model.training
        with torch.no_grad():
            score = float(self.heldout.score(model, task))
        model.train(training)
        if self.record.consider(step, score):
            self.best = _copy(model.state_dict())
        self.record.seconds += time.perf_counter() - began
        return {f"heldout_{self.heldout.metric}": score}

    def finish(self, step: int, model: nn.Module, task: Any) -> dict[str, float]:
        """Score the last step if it is not yet, then give `model` the best weights; the
        scores logged (empty when the last step was scored already)."""
        logged = self.select(step, model, task) if step not in self.record.scores else {}
        if self.active and self.best is not None:
            model.load_state_dict(self.best)
        return logged

    def best_state(self) -> State | None:
        """The best weights for a checkpoint of the run so far (on the CPU)."""
        return None if self.best is None else {k: v.cpu() for k, v in self.best.items()}


def _copy(state: State, like: nn.Module | None = None) -> State:
    """A detached copy of `state` (on `like`'s device when given)."""
    device = next(like.parameters()).device if like is not None else None
    return {k: v.detach().to(device or v.device, copy=True) for k, v in state.items()}
