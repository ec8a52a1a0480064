"""Writes for reward models: launching the training of one from a project's feedback, and the
worker's side (claim, heartbeat, succeed, fail) with the reaper of dead workers' trainings.

The launch snapshots how much feedback exists (the worker trains on the rows it then finds,
which may be more), checks the config by building the trainer's RewardModelConfig, and sends
the training task once the transaction commits.
"""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.errors import ApplicationError
from config.celery import app as celery_app
from labeling.models import Comparison, Rating
from projects.models import Project
from rewards.models import FINISHED, JobStatus, RewardModel
from trainer.reward_model.config import RewardModelConfig
from trainer.reward_model.encoders import OUTPUT_ENCODERS
from trainer.train.config import to_dict
from tuning.configs import config_from_json

TRAIN_TASK = "rewards.train"


def feedback_counts(project: Project) -> dict[str, int]:
    return {
        "ratings": Rating.objects.filter(task__project=project).count(),
        "comparisons": Comparison.objects.filter(task__project=project).count(),
    }


def reward_model_check(
    *, project: Project, config: dict | None = None, name: str = ""
) -> tuple[RewardModelConfig, dict[str, int], str]:
    """Everything `reward_model_launch` refuses, without launching (the admin's form uses it):
    returns the checked config, the feedback counts and the name to use."""
    if project.task not in OUTPUT_ENCODERS:
        raise ApplicationError(
            f"Reward models can score {', '.join(OUTPUT_ENCODERS)} outputs; this project's "
            f"task is {project.task}.", field="project",
        )
    if not project.categories:
        raise ApplicationError("The project has no categories for the reward model to draw.",
                               field="project")
    checked = config_from_json(
        RewardModelConfig, config or {}, prefix="config",
        fixed={"task": project.task, "num_classes": len(project.categories)},
    )
    counts = feedback_counts(project)
    if not any(counts.values()):
        raise ApplicationError(
            "The project has no ratings or comparisons yet: a reward model learns from them.",
            field="project",
        )
    name = name or f"reward model {RewardModel.objects.filter(project=project).count() + 1}"
    if RewardModel.objects.filter(project=project, name=name).exists():
        raise ApplicationError(f"A reward model named {name!r} exists.", field="name")
    return checked, counts, name


@transaction.atomic
def reward_model_launch(
    *,
    project: Project,
    config: dict | None = None,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> RewardModel:
    """A queued reward model of the project, trained on the `gpu` queue after commit."""
    checked, counts, name = reward_model_check(project=project, config=config, name=name)
    reward_model = RewardModel.objects.create(
        project=project, name=name, snapshot=counts, config=to_dict(checked),
        created_by=created_by,
    )
    _enqueue(reward_model.pk)
    return reward_model


def _enqueue(reward_model_id: int) -> None:
    transaction.on_commit(lambda: celery_app.send_task(TRAIN_TASK, args=[reward_model_id]))


def _fresh(heartbeat_at: datetime | None, now: datetime, stale_after: timedelta) -> bool:
    return heartbeat_at is not None and heartbeat_at > now - stale_after


@transaction.atomic
def reward_model_claim(
    *, reward_model_id: int, worker: str, stale_after: timedelta
) -> RewardModel | None:
    """Mark the reward model as this worker's to train, or None when there is nothing to do
    (gone, finished, or another live worker trains it). A restarted training starts over."""
    reward_model = RewardModel.objects.select_for_update().filter(pk=reward_model_id).first()
    now = timezone.now()
    if reward_model is None or reward_model.status in FINISHED:
        return None
    if (reward_model.status == JobStatus.RUNNING and reward_model.worker != worker
            and _fresh(reward_model.heartbeat_at, now, stale_after)):
        return None
    reward_model.status = JobStatus.RUNNING
    reward_model.worker = worker
    reward_model.attempts += 1
    reward_model.heartbeat_at = now
    reward_model.save(update_fields=["status", "worker", "attempts", "heartbeat_at"])
    return reward_model


def reward_model_heartbeat(*, reward_model_id: int, worker: str) -> bool:
    return bool(RewardModel.objects.filter(
        pk=reward_model_id, worker=worker, status=JobStatus.RUNNING
    ).update(heartbeat_at=timezone.now()))


@transaction.atomic
def reward_model_succeed(
    *, reward_model_id: int, worker: str, file_name: str, heldout_accuracy: float | None,
    metrics: dict,
) -> None:
    RewardModel.objects.filter(pk=reward_model_id, worker=worker, status=JobStatus.RUNNING
                               ).update(status=JobStatus.SUCCEEDED, file=file_name,
                                        heldout_accuracy=heldout_accuracy, metrics=metrics,
                                        finished_at=timezone.now())


@transaction.atomic
def reward_model_fail(*, reward_model_id: int, worker: str, error: str) -> None:
    RewardModel.objects.filter(pk=reward_model_id, worker=worker, status=JobStatus.RUNNING
                               ).update(status=JobStatus.FAILED, error=error,
                                        finished_at=timezone.now())


@transaction.atomic
def reap_stale_reward_models(*, stale_after: timedelta, now: datetime | None = None
                             ) -> list[int]:
    """Requeue trainings whose worker stopped beating (they start over on the next worker)."""
    now = now or timezone.now()
    stale = RewardModel.objects.select_for_update(skip_locked=True).filter(
        Q(heartbeat_at__lt=now - stale_after) | Q(heartbeat_at__isnull=True),
        status=JobStatus.RUNNING,
    )
    reaped = []
    for reward_model in stale:
        reward_model.status = JobStatus.QUEUED
        reward_model.worker = ""
        reward_model.save(update_fields=["status", "worker"])
        _enqueue(reward_model.pk)
        reaped.append(reward_model.pk)
    return reaped
