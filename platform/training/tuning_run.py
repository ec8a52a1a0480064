"""What a worker does with a tuning run: rows in, `trainer.train.loops.tune`, rows out.

`execute_run` is the body of the Celery task (tests call it in-process), run by the shared job
lifecycle (`common.jobs.job_run`): it loads the run's inputs once (`RunInputs`: configs, data,
the starting checkpoint, the run's own checkpoint when an earlier attempt left one, the reward
model), trains with a log object that writes each logged step to the database (and stops the
trainer when the run is cancelled), evaluates the result on held-out images (detection: COCO
mAP where the images have ground truth and the learned reward's score of both models for a
learned reward; captioning, colorization and panoptic: the task's own evaluation on Synthetic
Shapes scenes, their data, and for a learned reward its score of both models with the gold
figure of both beside it), with the task's main figure as `metrics["heldout"]` (`{"name",
"value"}`), decodes sample images with the starting and the tuned model into the task's
candidate format, and records the new ModelVersion, described from the tuned checkpoint. The
tuned model is the run's best step on held-out images, its start included
(`trainer.train.selection`); the version's metrics record that selection (`selection`: the
figure and what it was measured against, the start's and the best score, the best step). A
detection run on the project's own images trains on their export (`training.project_images`),
which fixes its held-out images.
"""

import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from torch import nn

from common.jobs import job_run
from trainer.configs import DataConfig, TuneConfig
from trainer.data.detection import DetectionSource
from trainer.data.shapes import generate_scene, scene_seed
from trainer.reward_model.model import RewardModel, load_reward_model
from trainer.reward_model.reward import greedy_score, greedy_task_score
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from trainer.train.data import eval_source, shapes_config
from trainer.train.evaluate import best_decoding, evaluate_model
from trainer.train.launch import tune_in_processes
from trainer.train.loops import RunResult, tune
from training.checkpoints import describe, load_version
from training.outputs import Picture, task_outputs
from training.project_images import annotated_ids, project_images_folder
from training.samples import SAMPLE_IMAGES, before_after_samples
from tuning.configs import data_config_from, on_project_images, tune_config_from
from tuning.models import RewardKind, TuningRun
from tuning.services import run_checkpoint_name, tuning_run_succeed, tuning_step_record

logger = logging.getLogger(__name__)

EVAL_DECODINGS = ("class", "confidence", "every_class")
# The figure of each Synthetic Shapes task's evaluation that `metrics["heldout"]` names (detection
# names its COCO mAP): (name, key of `evaluate_scenes`' result).
HELDOUT = {"captioning": ("cider_d", "cider"), "colorization": ("colorization_reward", "reward"),
           "panoptic": ("pq", "pq")}


class RunLog:
    """The trainer's MetricsLog interface, writing to the run's rows instead of a file."""

    def __init__(self, run_id: int, worker: str) -> None:
        self.run_id = run_id
        self.worker = worker

    def write(self, stage: str, step: int, **metrics: Any) -> None:
        if stage == "select":  # the score after the last step: the result records it
            return
        tuning_step_record(run_id=self.run_id, worker=self.worker, step=step,
                           metrics=_plain(metrics))


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values: numbers as floats (NaN and infinities, which JSON lacks, as null)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            out[key] = str(value)
            continue
        out[key] = number if math.isfinite(number) else None
    return out


@dataclass(frozen=True)
class RunInputs:
    """Everything a run trains from, each file read once."""

    config: TuneConfig
    data: DataConfig  # its folder as this worker sees it
    start: Checkpoint  # the starting version's: the KL reference and the "before" model
    begin: Checkpoint  # where training starts: `start`, or the run's own when resuming
    reward_model: RewardModel | None  # None when the run tunes on the metric
    own: Path  # the run's own checkpoint file

    @classmethod
    def load(cls, run: TuningRun) -> "RunInputs":
        own = Path(settings.MEDIA_ROOT) / run_checkpoint_name(run.pk)
        start = load_version(run.start_version)
        reward_model = (load_reward_model(run.reward_model.file.path)[0]
                        if run.reward == RewardKind.LEARNED else None)
        return cls(config=tune_config_from(run.config), data=_data_config(run), start=start,
                   begin=_resumed(run, own) or start, reward_model=reward_model, own=own)


def _resumed(run: TuningRun, own: Path) -> Checkpoint | None:
    """The run's own checkpoint when an earlier attempt saved one (its worker died)."""
    if not own.is_file():
        return None
    try:
        checkpoint = load_checkpoint(own)
    except CheckpointError:
        logger.warning("run %s: unreadable checkpoint %s, starting over", run.pk, own)
        return None
    return checkpoint if checkpoint.stage == "tune" else None


def _data_config(run: TuningRun) -> DataConfig:
    """The run's DataConfig with its folder as this worker sees it (the project's images are
    exported to one first)."""
    data = data_config_from(run.data_config)
    if on_project_images(run.data_config):
        return dataclasses.replace(data, data_dir=str(project_images_folder(run)))
    return data


def _with_ground_truth(run: TuningRun, data: DataConfig, source: DetectionSource
                       ) -> DetectionSource | None:
    """The images of `source` that have ground truth, or None where no object is annotated."""
    if on_project_images(run.data_config):
        source = source.with_images(annotated_ids(Path(data.data_dir)))
    return source if source.gt["annotations"] else None


@dataclass(frozen=True)
class Evaluation:
    """A tuned model's held-out figures, and what its samples are decoded on."""

    metrics: dict[str, Any]
    pictures: list[Picture]  # the sample images
    categories: list[dict]  # what the outputs name (`training.outputs.task_outputs`)


def _detection_results(run: TuningRun, inputs: RunInputs, result: RunResult,
                       before: tuple[nn.Module, Any]) -> Evaluation:
    """COCO metrics of the tuned model where there is ground truth and the learned reward's
    mean score of both models' greedy outputs (for a learned reward)."""
    source = eval_source(inputs.data)
    metrics: dict[str, Any] = {}
    truth = _with_ground_truth(run, inputs.data, source)
    if truth is not None:
        coco, _ = evaluate_model(result.model, result.task, truth, EVAL_DECODINGS)
        best = best_decoding(coco, EVAL_DECODINGS)
        metrics |= {"eval": coco, "best_decoding": best, "map": coco[best]["map"],
                    "heldout": {"name": "map", "value": coco[best]["map"]}}
    if inputs.reward_model is not None:
        inputs.reward_model.to(result.model.device)
        metrics["learned_reward"] = {
            name: round(greedy_score(model, task.codec, inputs.reward_model, source.examples), 4)
            for name, (model, task) in (("before", before), ("after", (result.model, result.task)))
        }
    pictures = [Picture.from_pixels(e.image, e.image_id) for e in source.examples[:SAMPLE_IMAGES]]
    return Evaluation(metrics, pictures, source.categories)


def _scenes_results(run: TuningRun, inputs: RunInputs, result: RunResult,
                    before: tuple[nn.Module, Any]) -> Evaluation:
    """The task's own evaluation of the tuned model on the held-out scenes, its main figure as
    `heldout`; for a learned reward also the reward model's mean score of both models' greedy
    outputs (`learned_reward`) and the gold figure of both (`gold`), so a reward that rose
    while the metric fell shows; the outputs name the project's categories."""
    data = inputs.data
    scenes = [generate_scene(scene_seed(data.eval_split, i), shapes_config(data))
              for i in range(data.eval_images)]
    name = inputs.start.task_name
    evaluate = task_entry(name).evaluate_scenes
    figures = _plain(evaluate(result.model.eval(), result.task, scenes))
    heldout, key = HELDOUT[name]
    metrics = {"eval": figures, "heldout": {"name": heldout, "value": figures[key]}}
    if inputs.reward_model is not None:
        inputs.reward_model.to(result.model.device)
        models = (("before", before), ("after", (result.model, result.task)))
        metrics["learned_reward"] = {
            side: round(greedy_task_score(model, task, inputs.reward_model, scenes), 4)
            for side, (model, task) in models}
        start = _plain(evaluate(before[0].eval(), before[1], scenes))[key]
        metrics["gold"] = {"name": heldout, "before": start, "after": figures[key]}
    pictures = [Picture.from_scene(scene) for scene in scenes[:SAMPLE_IMAGES]]
    return Evaluation(metrics, pictures, run.project.categories)


def _results(run: TuningRun, inputs: RunInputs, result: RunResult
             ) -> tuple[dict[str, Any], list[dict]]:
    """What the run achieved: the held-out evaluation of the tuned model (COCO mAP for
    detection where there is ground truth, the task's own evaluation on Synthetic Shapes for
    the others) and sample outputs of both models side by side."""
    name = inputs.start.task_name
    before = inputs.start.build(result.model.device)
    metrics: dict[str, Any] = {
        "train_seconds": round(result.seconds, 2), "step_seconds": round(result.step_s, 4),
        "selection": result.selection.to_dict() if result.selection else None}
    evaluation = (_scenes_results(run, inputs, result, before) if task_entry(name).shapes_only
                  else _detection_results(run, inputs, result, before))
    first, second = (task_outputs(name, model, task, class_names=inputs.start.class_names,
                                  categories=evaluation.categories)
                     for model, task in (before, (result.model, result.task)))
    samples = before_after_samples(run_id=run.pk, pictures=evaluation.pictures, before=first,
                                   after=second)
    return metrics | evaluation.metrics, samples


def _train(run: TuningRun, worker: str) -> dict[str, Any]:
    """Train the run to its end (or resume it); what `tuning_run_succeed` records."""
    inputs = RunInputs.load(run)
    # Several processes: torchrun's, whose metrics this process writes to the database.
    train = tune if inputs.config.processes == 1 else tune_in_processes
    result = train(inputs.begin, inputs.data, inputs.config, checkpoint_path=inputs.own,
                   reward_model=inputs.reward_model, reference=inputs.start,
                   log=RunLog(run.pk, worker), progress=False, save_every=run.save_every)
    metrics, samples = _results(run, inputs, result)
    # The tuned model has the starting one's task, classes and size.
    return {"metrics": metrics, "samples": samples, "description": describe(inputs.start),
            "steps": result.steps}


def execute_run(run_id: int, *, worker: str, heartbeat_s: float | None = None) -> None:
    """Train the run to its end (or resume it), then record the result or the error."""
    job_run(
        TuningRun, pk=run_id, worker=worker, heartbeat_s=heartbeat_s,
        stale_after=timedelta(seconds=settings.TUNELAB_RUN_STALE_S),
        work=lambda run: _train(run, worker),
        succeed=lambda run, done: tuning_run_succeed(
            run_id=run.pk, worker=worker, checkpoint_name=run_checkpoint_name(run.pk), **done),
    )
