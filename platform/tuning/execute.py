"""What a worker does with a tuning run: rows in, `trainer.train.loops.tune`, rows out.

`execute_run` is the body of the Celery task (tests call it in-process). It claims the run,
resumes from the run's own checkpoint when an earlier attempt left one (a worker died), trains
with a log object that writes each logged step to the database (and stops the trainer when the
run is cancelled), evaluates the result (COCO mAP where the images have ground truth, the
learned reward's score of both models for a learned reward), decodes sample images with the
starting and the tuned model, and records the new ModelVersion, or the error. A run on the
project's own images trains on their export (`tuning.project_data`).
A thread beats the run's heartbeat while it trains, so the reaper can tell a slow step from a
dead worker.
"""

import dataclasses
import functools
import logging
import math
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

from common.jobs import beating
from trainer.data.detection import DetectionSource
from trainer.reward_model.model import RewardModel, load_reward_model
from trainer.reward_model.reward import greedy_score
from trainer.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from trainer.train.config import DataConfig
from trainer.train.data import eval_source
from trainer.train.evaluate import best_decoding, evaluate_model
from trainer.train.launch import tune_in_processes
from trainer.train.loops import RunResult, tune
from tuning.configs import data_config_from, data_dir_path, on_project_images, tune_config_from
from tuning.models import RewardKind, TuningRun
from tuning.project_data import annotated_ids, project_images_folder
from tuning.samples import before_after_samples
from tuning.services import (
    RunCancelled,
    RunTakenOver,
    tuning_run_claim,
    tuning_run_fail,
    tuning_run_heartbeat,
    tuning_run_succeed,
    tuning_step_record,
)

logger = logging.getLogger(__name__)

EVAL_DECODINGS = ("class", "confidence", "every_class")


def run_checkpoint_name(run_id: int) -> str:
    """Where a run keeps its checkpoint, relative to MEDIA_ROOT (shared by all workers)."""
    return f"tuning/runs/{run_id}/checkpoint.pt"


class RunLog:
    """The trainer's MetricsLog interface, writing to the run's rows instead of a file."""

    def __init__(self, run_id: int, worker: str) -> None:
        self.run_id = run_id
        self.worker = worker

    def write(self, stage: str, step: int, **metrics: Any) -> None:
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


def _starting_point(run: TuningRun, own: Path) -> tuple[Checkpoint, Checkpoint]:
    """Where training starts (the run's own checkpoint if an earlier attempt saved one, else
    the starting version's) and the starting version's checkpoint, the KL reference."""
    start = load_checkpoint(run.start_version.checkpoint.path)
    if own.is_file():
        try:
            checkpoint = load_checkpoint(own)
        except CheckpointError:
            logger.warning("run %s: unreadable checkpoint %s, starting over", run.pk, own)
        else:
            if checkpoint.stage == "tune":
                return checkpoint, start
    return start, start


def _reward_model(run: TuningRun) -> RewardModel | None:
    """The run's learned reward model, or None when it tunes on the metric."""
    if run.reward != RewardKind.LEARNED:
        return None
    return load_reward_model(run.reward_model.file.path)[0]


def _data_config(run: TuningRun) -> DataConfig:
    """The run's DataConfig with its folder as this worker sees it (the project's images are
    exported to one first)."""
    data = data_config_from(run.data_config)
    if on_project_images(run.data_config):
        return dataclasses.replace(data, data_dir=str(project_images_folder(run)))
    if data.data_dir:
        data = dataclasses.replace(data, data_dir=str(data_dir_path(data.data_dir)))
    return data


def _with_ground_truth(run: TuningRun, data: DataConfig, source: DetectionSource
                       ) -> DetectionSource | None:
    """The images of `source` that have ground truth, or None where no object is annotated."""
    if on_project_images(run.data_config):
        source = source.with_images(annotated_ids(Path(data.data_dir)))
    return source if source.gt["annotations"] else None


def _results(run: TuningRun, result: RunResult, data: DataConfig
             ) -> tuple[dict[str, Any], list[dict]]:
    """What the run achieved: COCO metrics of the tuned model where there is ground truth, the
    learned reward's mean score of both models' greedy outputs (for a learned reward), and
    sample outputs of both models side by side."""
    source = eval_source(data)
    before = load_checkpoint(run.start_version.checkpoint.path).build(result.model.device)
    after = (result.model, result.task)
    metrics: dict[str, Any] = {"train_seconds": round(result.seconds, 2),
                               "step_seconds": round(result.step_s, 4)}
    truth = _with_ground_truth(run, data, source)
    if truth is not None:
        coco, _ = evaluate_model(result.model, result.task, truth, EVAL_DECODINGS)
        best = best_decoding(coco, EVAL_DECODINGS)
        metrics |= {"eval": coco, "best_decoding": best, "map": coco[best]["map"]}
    reward_model = _reward_model(run)
    if reward_model is not None:
        reward_model.to(result.model.device)
        metrics["learned_reward"] = {
            name: round(greedy_score(model, task.codec, reward_model, source.examples), 4)
            for name, (model, task) in (("before", before), ("after", after))
        }
    samples = before_after_samples(run_id=run.pk, source=source, before=before, after=after)
    return metrics, samples


def execute_run(run_id: int, *, worker: str, heartbeat_s: float | None = None) -> None:
    """Train the run to its end (or resume it), then record the result or the error."""
    stale_after = timedelta(seconds=settings.TUNELAB_RUN_STALE_S)
    run = tuning_run_claim(run_id=run_id, worker=worker, stale_after=stale_after)
    if run is None:
        logger.info("run %s: nothing to do for %s", run_id, worker)
        return
    name = run_checkpoint_name(run.pk)
    own = Path(settings.MEDIA_ROOT) / name
    try:
        alive = functools.partial(tuning_run_heartbeat, run_id=run.pk, worker=worker)
        with beating(alive, heartbeat_s, name=f"heartbeat-run-{run.pk}"):
            config = tune_config_from(run.config)
            data = _data_config(run)
            begin, reference = _starting_point(run, own)
            # Several processes: torchrun's, whose metrics this process writes to the database.
            train = tune if config.processes == 1 else tune_in_processes
            result = train(begin, data, config, checkpoint_path=own,
                           reward_model=_reward_model(run), reference=reference,
                           log=RunLog(run.pk, worker), progress=False, save_every=run.save_every)
            metrics, samples = _results(run, result, data)
        tuning_run_succeed(run_id=run.pk, worker=worker, checkpoint_name=name, metrics=metrics,
                           samples=samples)
    except (RunCancelled, RunTakenOver) as stop:
        logger.info("run %s: %s stops (%s)", run.pk, worker, type(stop).__name__)
    except Exception as error:  # any failure of the run is recorded on it, the worker lives on
        logger.exception("run %s failed", run.pk)
        detail = "".join(traceback.format_exception(error, limit=-3))
        tuning_run_fail(run_id=run.pk, worker=worker,
                        error=f"{type(error).__name__}: {error}\n\n{detail}")
