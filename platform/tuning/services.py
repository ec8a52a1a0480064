"""Writes for tuning runs: launch, cancel, retry, and the worker's side (record steps,
succeed; the shared lifecycle in `common.jobs` claims, beats and fails) plus the reaper that
requeues runs whose worker died.

Every function is keyword-only and atomic. A run is enqueued only after its transaction commits
(`transaction.on_commit`), so a worker never sees a run that was rolled back; the task is sent
by name so this module does not import the Celery task module (which imports this one).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from common.jobs import (
    FINISHED,
    JobStatus,
    JobStopped,
    job_enqueue,
    jobs_reap_stale,
)
from projects.checkpoints import check_task_checkpoint
from projects.models import ModelVersion, Project, VisionTask
from projects.services import DESCRIPTION_FIELDS
from rewards.models import RewardModel
from trainer.configs import TuneConfig
from tuning.configs import data_config_from, on_project_images, tune_config_from
from tuning.models import RewardKind, TuningRun, TuningStep
from tuning.project_data import check_project_images

RUN_TASK = "tuning.run_execute"
SAVE_EVERY_MAX = 1_000_000  # steps between checkpoints


def run_checkpoint_name(run_id: int) -> str:
    """Where a run keeps its checkpoint, relative to MEDIA_ROOT (shared by all workers)."""
    return f"tuning/runs/{run_id}/checkpoint.pt"


class RunCancelled(JobStopped):
    """The run was cancelled while the worker trained it: stop at the next logged step."""


class RunTakenOver(JobStopped):
    """The reaper gave the run to another worker (this one was presumed dead): stop quietly."""


def _enqueue(run_id: int) -> None:
    job_enqueue(RUN_TASK, run_id)


def _conflict(message: str) -> ApplicationError:
    return ApplicationError(message, status_code=status.HTTP_409_CONFLICT)


def _check_reward(project: Project, reward: str, reward_model: RewardModel | None) -> None:
    if reward not in RewardKind.values:
        raise ApplicationError(f"Unknown reward {reward!r}; one of {RewardKind.values}.",
                               field="reward")
    if reward == RewardKind.METRIC:
        if reward_model is not None:
            raise ApplicationError("A metric reward takes no reward model.",
                                   field="reward_model")
        return
    if reward_model is None:
        raise ApplicationError("A learned reward needs a reward model.", field="reward_model")
    if reward_model.project_id != project.pk:
        raise ApplicationError("The reward model belongs to another project.",
                               field="reward_model")
    if reward_model.status != JobStatus.SUCCEEDED or not reward_model.file:
        raise ApplicationError(
            f"The reward model {reward_model.name} is {reward_model.status}, not trained.",
            field="reward_model",
        )


def tuning_run_check(
    *,
    project: Project,
    start_version: ModelVersion,
    config: dict,
    data: dict | None,
    reward: str,
    reward_model: RewardModel | None,
    save_every: int,
) -> TuneConfig:
    """Everything `tuning_run_launch` refuses, without launching (the admin's form uses it)."""
    tune = tune_config_from(config)
    data_config_from(data or {})
    if not 1 <= save_every <= SAVE_EVERY_MAX:
        raise ApplicationError(f"save_every must lie in 1..{SAVE_EVERY_MAX}.",
                               field="save_every")
    check_task_checkpoint(project, start_version, "start_version")
    _check_reward(project, reward, reward_model)
    if on_project_images(data):
        if project.task != VisionTask.DETECTION:
            # Their targets (captions, colours, panoptic maps) come from the scenes.
            raise ApplicationError(
                f"data.source: {project.task} models tune on Synthetic Shapes scenes only; "
                "leave the source out.", field="data.source")
        check_project_images(project, reward)
    return tune


@transaction.atomic
def tuning_run_launch(
    *,
    project: Project,
    start_version: ModelVersion,
    config: dict,
    data: dict | None = None,
    reward: str = RewardKind.METRIC,
    reward_model: RewardModel | None = None,
    save_every: int = 50,
    created_by: AbstractBaseUser | None = None,
) -> TuningRun:
    """A queued run, sent to the `gpu` queue once the transaction commits."""
    tune = tuning_run_check(
        project=project, start_version=start_version, config=config, data=data, reward=reward,
        reward_model=reward_model, save_every=save_every,
    )
    run = TuningRun.objects.create(
        project=project, start_version=start_version, reward=reward, reward_model=reward_model,
        config=config, data_config=data or {}, save_every=save_every,
        total_steps=tune.steps, created_by=created_by,
    )
    _enqueue(run.pk)
    # Where no beat runs (`make run`), a launch is another moment to requeue dead workers' runs.
    reap_stale_runs(stale_after=timedelta(seconds=settings.TUNELAB_RUN_STALE_S))
    return run


@transaction.atomic
def tuning_run_cancel(*, run: TuningRun) -> TuningRun:
    """Stop a queued or running run; a running one stops at its next logged step."""
    run = TuningRun.objects.select_for_update().get(pk=run.pk)
    if run.status in FINISHED:
        raise _conflict(f"The run has already finished ({run.status}).")
    run.status = JobStatus.CANCELLED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


@transaction.atomic
def tuning_run_retry(*, run: TuningRun) -> TuningRun:
    """Queue a failed or cancelled run again; it resumes from its last checkpoint."""
    run = TuningRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise _conflict(f"Only a failed or cancelled run can be retried; this one is {run.status}.")
    run.status = JobStatus.QUEUED
    run.error = ""
    run.worker = ""
    run.deaths = 0  # an admin's retry is a fresh start, whatever killed the earlier workers
    run.finished_at = None
    run.save(update_fields=["status", "error", "worker", "deaths", "finished_at"])
    _enqueue(run.pk)
    return run


def _owned(run_id: int, worker: str) -> TuningRun:
    """The run, locked, if this worker still owns it; raises why it must stop otherwise."""
    run = TuningRun.objects.select_for_update().get(pk=run_id)
    if run.status == JobStatus.CANCELLED:
        raise RunCancelled(run_id)
    if run.status != JobStatus.RUNNING or run.worker != worker:
        raise RunTakenOver(run_id)
    return run


@transaction.atomic
def tuning_step_record(*, run_id: int, worker: str, step: int, metrics: dict) -> None:
    """Store one step's metrics (a repeated step after a resume replaces its row) and move the
    progress and heartbeat on."""
    run = _owned(run_id, worker)
    TuningStep.objects.bulk_create(
        [TuningStep(run=run, step=step, metrics=metrics)],
        update_conflicts=True, unique_fields=["run", "step"],
        update_fields=["metrics", "recorded_at"],
    )
    run.step = step + 1
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["step", "heartbeat_at"])


@transaction.atomic
def tuning_run_succeed(
    *, run_id: int, worker: str, checkpoint_name: str, metrics: dict, samples: list[dict],
    description: dict, steps: int,
) -> ModelVersion:
    """The tuned model as a new ModelVersion of the project, child of the starting one, its
    checkpoint described by the worker that wrote it (`DESCRIPTION_FIELDS`)."""
    run = _owned(run_id, worker)
    start = run.start_version
    version = ModelVersion(
        project=run.project, name=f"{start.name} tuned (run {run.pk})",
        description=f"REINFORCE tuning run {run.pk} from {start.name}, {run.reward} reward.",
        parent=start, metrics=metrics,
        **{name: description[name] for name in DESCRIPTION_FIELDS},
    )
    # The run's checkpoint file already lies under MEDIA_ROOT: the version points at it.
    version.checkpoint.name = checkpoint_name
    version.save()
    run.status = JobStatus.SUCCEEDED
    run.result_version = version
    run.samples = samples
    run.step = steps  # fewer than total_steps when the run's time budget ended it
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "result_version", "samples", "step", "finished_at"])
    return version


def reap_stale_runs(*, stale_after: timedelta, now: datetime | None = None) -> list[int]:
    """Requeue running runs whose worker stopped beating (killed, machine lost): each resumes
    from its checkpoint on the next free worker. Returns their ids."""
    return jobs_reap_stale(TuningRun, stale_after=stale_after, enqueue=_enqueue, now=now)
