"""Writes for reward models: launching the training of one from a project's feedback, and the
worker's side (succeed; `common.jobs` claims, beats and fails) with the reaper of dead workers'
trainings.

The launch snapshots how much feedback exists (the worker trains on the rows it then finds,
which may be more), checks the config by building the trainer's RewardModelConfig, and sends
the training task once the transaction commits.
"""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from common.errors import ApplicationError
from common.jobs import (
    JobStatus,
    job_enqueue,
    jobs_reap_stale,
)
from labeling.models import Comparison, Rating
from projects.checkpoints import check_task_checkpoint
from projects.models import ModelVersion, Project
from rewards.classes import class_categories, needs_categories
from rewards.models import RewardModel
from trainer.configs import REWARD_MODEL_TASKS, RewardModelConfig, default_readout, to_dict
from tuning.configs import config_from_json

TRAIN_TASK = "rewards.train"


def feedback_counts(project: Project) -> dict[str, int]:
    return {
        "ratings": Rating.objects.filter(task__project=project).count(),
        "comparisons": Comparison.objects.filter(task__project=project).count(),
    }


def reward_model_check(
    *, project: Project, config: dict | None = None, name: str = "",
    policy: ModelVersion | None = None,
) -> tuple[RewardModelConfig, dict[str, int], str]:
    """Everything `reward_model_launch` refuses, without launching (the admin's form uses it):
    returns the checked config, the feedback counts and the name to use. `policy`: the model
    version readout 'policy' starts from (that readout needs one; the others take none)."""
    if project.task not in REWARD_MODEL_TASKS:
        raise ApplicationError(
            f"Reward models can score {', '.join(REWARD_MODEL_TASKS)} outputs; this project's "
            f"task is {project.task}.", field="project",
        )
    if needs_categories(project) and not class_categories(project):
        raise ApplicationError("The project has no categories for the reward model to draw.",
                               field="project")
    # Each task has its own readouts; the config's default one ('boxes') draws boxes only. A
    # policy readout sees images at its policy's input size unless told otherwise.
    config = {"readout": default_readout(project.task), **(config or {})}
    if policy is not None and policy.input_size and "image_size" not in config:
        config["image_size"] = policy.input_size
    checked = config_from_json(
        RewardModelConfig, config, prefix="config",
        fixed={"task": project.task, "num_classes": max(1, len(class_categories(project)))},
    )
    if checked.readout == "policy" and policy is None:
        raise ApplicationError(
            f"readout 'policy' starts from a {project.task} model of the project: name the "
            "model version.", field="policy",
        )
    if checked.readout != "policy" and policy is not None:
        raise ApplicationError(
            f"Only readout 'policy' starts from a model version; readout "
            f"{checked.readout!r} learns from scratch.", field="policy",
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
    if policy is not None:
        check_task_checkpoint(project, policy, "policy")
        if policy.input_size and checked.image_size != policy.input_size:
            raise ApplicationError(
                f"config.image_size: readout 'policy' reads images at its policy's input size "
                f"({policy.input_size}), got {checked.image_size}", field="config.image_size")
    return checked, counts, name


@transaction.atomic
def reward_model_launch(
    *,
    project: Project,
    config: dict | None = None,
    name: str = "",
    policy: ModelVersion | None = None,
    created_by: AbstractBaseUser | None = None,
) -> RewardModel:
    """A queued reward model of the project, trained on the `gpu` queue after commit."""
    checked, counts, name = reward_model_check(project=project, config=config, name=name,
                                               policy=policy)
    reward_model = RewardModel.objects.create(
        project=project, name=name, snapshot=counts, config=to_dict(checked), policy=policy,
        created_by=created_by,
    )
    _enqueue(reward_model.pk)
    return reward_model


def _enqueue(reward_model_id: int) -> None:
    job_enqueue(TRAIN_TASK, reward_model_id)


@transaction.atomic
def reward_model_succeed(
    *, reward_model_id: int, worker: str, file_name: str, heldout_accuracy: float | None,
    metrics: dict,
) -> None:
    RewardModel.objects.filter(pk=reward_model_id, worker=worker, status=JobStatus.RUNNING
                               ).update(status=JobStatus.SUCCEEDED, file=file_name,
                                        heldout_accuracy=heldout_accuracy, metrics=metrics,
                                        finished_at=timezone.now())


def reap_stale_reward_models(*, stale_after: timedelta, now: datetime | None = None
                             ) -> list[int]:
    """Requeue trainings whose worker stopped beating (they start over on the next worker)."""
    return jobs_reap_stale(RewardModel, stale_after=stale_after, enqueue=_enqueue, now=now)
