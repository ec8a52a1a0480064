"""Writes for reward models: launching the training of one from a project's feedback.

The launch snapshots how much feedback exists (the worker trains on the rows it then finds,
which may be more), checks the config by building the trainer's RewardModelConfig, and sends
the training task once the transaction commits.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from common.errors import ApplicationError
from config.celery import app as celery_app
from labeling.models import Comparison, Rating
from projects.models import Project
from rewards.models import RewardModel
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
    reward_model_id = reward_model.pk
    transaction.on_commit(lambda: celery_app.send_task(TRAIN_TASK, args=[reward_model_id]))
    return reward_model
