"""What a worker does with a tuning run: rows in, `trainer.train.loops.tune`, rows out.

`execute_run` is the body of the Celery task (tests call it in-process), run by the shared job
lifecycle (`common.jobs.job_run`): it loads the run's inputs once (`RunInputs`: configs, data,
the starting checkpoint, the run's own checkpoint when an earlier attempt left one, the reward
model), trains with a log object that writes each logged step to the database (and stops the
trainer when the run is cancelled), evaluates the result (COCO mAP where the images have ground
truth, the learned reward's score of both models for a learned reward), decodes sample images
with the starting and the tuned model, and records the new ModelVersion, described from the
tuned checkpoint. The tuned model is the run's best step on held-out images, its start
included (`trainer.train.selection`); the version's metrics record that selection
(`selection`: the figure and what it was measured against, the start's and the best score, the
best step). A run on the project's own images trains on their export
(`training.project_images`), which fixes its held-out images.
"""

import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

from common.jobs import job_run
from trainer.configs import DataConfig, TuneConfig
from trainer.data.detection import DetectionSource
from trainer.reward_model.model import RewardModel, load_reward_model
from trainer.reward_model.reward import greedy_score
from trainer.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from trainer.train.data import eval_source
from trainer.train.evaluate import best_decoding, evaluate_model
from trainer.train.launch import tune_in_processes
from trainer.train.loops import RunResult, tune
from training.checkpoints import describe, load_version
from training.project_images import annotated_ids, project_images_folder
from training.samples import before_after_samples
from tuning.configs import data_config_from, on_project_images, tune_config_from
from tuning.models import RewardKind, TuningRun
from tuning.services import run_checkpoint_name, tuning_run_succeed, tuning_step_record

logger = logging.getLogger(__name__)

EVAL_DECODINGS = ("class", "confidence", "every_class")


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


def _results(run: TuningRun, inputs: RunInputs, result: RunResult
             ) -> tuple[dict[str, Any], list[dict]]:
    """What the run achieved: COCO metrics of the tuned model where there is ground truth, the
    learned reward's mean score of both models' greedy outputs (for a learned reward), and
    sample outputs of both models side by side."""
    source = eval_source(inputs.data)
    before = inputs.start.build(result.model.device)
    after = (result.model, result.task)
    metrics: dict[str, Any] = {
        "train_seconds": round(result.seconds, 2), "step_seconds": round(result.step_s, 4),
        "selection": result.selection.to_dict() if result.selection else None}
    truth = _with_ground_truth(run, inputs.data, source)
    if truth is not None:
        coco, _ = evaluate_model(result.model, result.task, truth, EVAL_DECODINGS)
        best = best_decoding(coco, EVAL_DECODINGS)
        metrics |= {"eval": coco, "best_decoding": best, "map": coco[best]["map"]}
    if inputs.reward_model is not None:
        inputs.reward_model.to(result.model.device)
        metrics["learned_reward"] = {
            name: round(greedy_score(model, task.codec, inputs.reward_model, source.examples), 4)
            for name, (model, task) in (("before", before), ("after", after))
        }
    samples = before_after_samples(run_id=run.pk, source=source, before=before, after=after)
    return metrics, samples


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
    return {"metrics": metrics, "samples": samples, "description": describe(inputs.start)}


def execute_run(run_id: int, *, worker: str, heartbeat_s: float | None = None) -> None:
    """Train the run to its end (or resume it), then record the result or the error."""
    job_run(
        TuningRun, pk=run_id, worker=worker, heartbeat_s=heartbeat_s,
        stale_after=timedelta(seconds=settings.TUNELAB_RUN_STALE_S),
        work=lambda run: _train(run, worker),
        succeed=lambda run, done: tuning_run_succeed(
            run_id=run.pk, worker=worker, checkpoint_name=run_checkpoint_name(run.pk), **done),
    )
