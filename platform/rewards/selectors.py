"""Reads for reward models: what a project admin may see of them."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from common.permissions import ADMINS, project_for
from projects.models import Project
from rewards.models import RewardModel


def reward_models_of(project: Project) -> QuerySet[RewardModel]:
    return RewardModel.objects.filter(project=project).order_by("id")


def reward_model_for(user: AbstractBaseUser, reward_model_id: int) -> RewardModel:
    """The reward model if the user is an admin of its project (404 / 403 as for projects)."""
    reward_model = RewardModel.objects.filter(pk=reward_model_id).first()
    if reward_model is None:
        raise Http404("No such reward model.")
    project_for(user, reward_model.project_id, roles=ADMINS)
    return reward_model
