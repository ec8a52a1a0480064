"""What a worker does for a demo project's starting model (the body of the Celery task
`projects.train_demo_model`, run by the shared job lifecycle `common.jobs.job_run`; tests call
it in-process).

A small model of the project's task is MLE-trained on Synthetic Shapes on one CPU thread within
the row's budget (`max_seconds`, and `max_steps`, which tests use to count steps instead of
time), saved as the project's model version `DEMO_MODEL_NAME` with its checkpoint described, and
its samples are stored as the next candidates to rate (`training.candidates`). Training is
short, so a restarted one starts over; one whose model was saved goes straight to the samples.
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from django.conf import settings

from common.jobs import JobStopped, job_run
from projects.demo_training import (
    demo_checkpoint_name,
    demo_model_record,
    demo_training_progress,
    demo_training_succeed,
)
from projects.models import DemoModelTraining, ModelVersion
from trainer.configs import (
    CaptioningTaskConfig,
    ColorizationTaskConfig,
    ColorizerConfig,
    DataConfig,
    DetectionTaskConfig,
    ModelConfig,
    PanopticTaskConfig,
    PretrainConfig,
)
from trainer.train.checkpoint import load_checkpoint
from trainer.train.loops import pretrain
from training.candidates import generate_candidates
from training.checkpoints import describe

# Samples of the trained model per item: two at temperature 1 differ from each other and from
# the perturbed outputs, so every rating mode gets new screens.
SAMPLES = 2
TEMPERATURE = 1.0
# The shortest gap between two progress writes: the home page polls every few seconds.
PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class DemoPlan:
    """A task's demo model: small enough to learn something in a minute or two on one thread
    (trainer/bench/shapes_tasks.py's quick plans are of the same size)."""

    model: Any
    task: Any
    lr: float = 1e-3


PLANS: dict[str, DemoPlan] = {
    "detection": DemoPlan(ModelConfig(d_model=64, heads=4, encoder_layers=2, decoder_layers=2),
                          DetectionTaskConfig()),
    "captioning": DemoPlan(ModelConfig(d_model=64, heads=4, encoder_layers=1, decoder_layers=1),
                           CaptioningTaskConfig(idf_images=200)),
    "colorization": DemoPlan(ColorizerConfig(width=32, blocks=2), ColorizationTaskConfig()),
    "panoptic": DemoPlan(ColorizerConfig(width=32, blocks=2), PanopticTaskConfig(), lr=2e-3),
}


class ProgressLog:
    """The trainer's MetricsLog interface, writing the training's time and step to its row
    (at most every PROGRESS_EVERY_S); stops the trainer when the row is no longer this
    worker's."""

    def __init__(self, training_id: int, worker: str) -> None:
        self.training_id, self.worker = training_id, worker
        self.began = time.perf_counter()
        self.written = -PROGRESS_EVERY_S

    def seconds(self) -> float:
        return time.perf_counter() - self.began

    def write(self, stage: str, step: int, **metrics: Any) -> None:
        now = self.seconds()
        if now - self.written < PROGRESS_EVERY_S:
            return
        self.written = now
        if not demo_training_progress(training_id=self.training_id, worker=self.worker,
                                      seconds=round(now, 1), steps=step + 1):
            raise JobStopped(f"demo training {self.training_id} is no longer {self.worker}'s")


def _train(training: DemoModelTraining, worker: str) -> ModelVersion:
    """MLE-train the project's demo model within the row's budget and record it."""
    task_name = training.project.task
    plan = PLANS[task_name]
    config = PretrainConfig(steps=training.max_steps, batch_size=16, lr=plan.lr,
                            warmup=min(20, training.max_steps // 4),
                            max_seconds=training.max_seconds, log_every=1, threads=1)
    name = demo_checkpoint_name(training.project_id)
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    log = ProgressLog(training.pk, worker)
    result = pretrain(plan.model, plan.task, DataConfig(), config, checkpoint_path=path,
                      task_name=task_name, log=log, progress=False,
                      save_every=training.max_steps)
    seconds = round(result.seconds, 1)
    version = demo_model_record(
        training_id=training.pk, worker=worker, checkpoint_name=name,
        description=describe(load_checkpoint(path)), seconds=seconds, steps=result.steps,
        metrics={"train_seconds": seconds, "steps": result.steps,
                 "step_seconds": round(result.step_s, 4)},
    )
    if version is None:
        raise JobStopped(f"demo training {training.pk} is no longer {worker}'s")
    return version


def _work(training: DemoModelTraining, worker: str) -> int:
    """Train (unless an earlier attempt saved the model), then sample the next candidates;
    returns how many candidates are new. The worker's thread count is put back afterwards:
    its next job may want them all."""
    threads = torch.get_num_threads()
    try:
        version = training.model_version or _train(training, worker)
    finally:
        torch.set_num_threads(threads)
    return generate_candidates(version.pk, samples=SAMPLES, temperature=TEMPERATURE)


def train_demo_model(training_id: int, *, worker: str, heartbeat_s: float | None = None
                     ) -> None:
    """Train the demo project's starting model and sample it; record the result or error."""
    job_run(
        DemoModelTraining, pk=training_id, worker=worker, heartbeat_s=heartbeat_s,
        stale_after=timedelta(seconds=settings.TUNELAB_RUN_STALE_S),
        work=lambda training: _work(training, worker),
        succeed=lambda training, created: demo_training_succeed(
            training_id=training.pk, worker=worker, candidates_created=created),
    )
