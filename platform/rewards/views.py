"""The reward-model pages (project admins only): a project's reward models with the launch
form, and one reward model's figures. They only render: the JavaScript launches through the
REST API and polls a training's status until it ends."""

from collections.abc import Callable
from typing import TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from common.errors import ApplicationError
from common.permissions import ADMINS, project_for
from projects.selectors import checkpointed_versions_of
from rewards.selectors import (
    config_settings,
    config_values,
    heldout_by_kind,
    heldout_confidence,
    reward_model_for,
    reward_models_of,
    runs_using,
)

T = TypeVar("T")


def _admins_only(read: Callable[[], T]) -> T:
    try:
        return read()
    except ApplicationError as exc:  # a member who is not an admin of the project
        raise PermissionDenied(exc.message) from exc


# The launch form's JavaScript sends the csrftoken cookie back as X-CSRFToken.
@ensure_csrf_cookie
@login_required
def project_reward_models_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _admins_only(lambda: project_for(request.user, project_id, roles=ADMINS))
    return render(request, "rewards/project_reward_models.html", {
        "project": project, "reward_models": reward_models_of(project),
        "policies": checkpointed_versions_of(project),
        "settings": config_settings(), "page_data": {"project": project.pk},
    })


@login_required
def reward_model_page(request: HttpRequest, reward_model_id: int) -> HttpResponse:
    reward_model = _admins_only(lambda: reward_model_for(request.user, reward_model_id))
    return render(request, "rewards/reward_model.html", {
        "reward_model": reward_model, "by_kind": heldout_by_kind(reward_model),
        "confidence": heldout_confidence(reward_model),
        "config": config_values(reward_model), "runs": runs_using(reward_model),
        "page_data": {"id": reward_model.pk,
                      "history": reward_model.metrics.get("history", [])},
    })
