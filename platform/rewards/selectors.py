"""Reads for reward models: what a project admin may see of them, and their figures as the
reward-model pages show them."""

import json
import math
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from common.permissions import ADMINS, project_for
from projects.models import Project
from rewards.models import RewardModel
from trainer.configs import RewardModelConfig, help_for, to_dict

# The feedback kinds of `train_reward_model`, as its metrics name them, and their labels.
FEEDBACK_KINDS = {"pairs": "preferences", "rankings": "rankings", "ratings": "ratings"}
# Set by `reward_model_check` from the project, not by the admin.
PLATFORM_SET = ("task", "num_classes")
# Fewer held-out pairs than this leave the accuracy too uncertain to compare reward models by.
FEW_HELDOUT_PAIRS = 100
WILSON_Z = 1.959964  # the normal quantile of a two-sided 95% interval


def reward_models_of(project: Project) -> QuerySet[RewardModel]:
    return RewardModel.objects.filter(project=project).order_by("id")


def reward_model_for(user: AbstractBaseUser, reward_model_id: int) -> RewardModel:
    """The reward model if the user is an admin of its project (404 / 403 as for projects)."""
    reward_model = RewardModel.objects.filter(pk=reward_model_id).first()
    if reward_model is None:
        raise Http404("No such reward model.")
    project_for(user, reward_model.project_id, roles=ADMINS)
    return reward_model


def heldout_by_kind(reward_model: RewardModel) -> list[dict[str, Any]]:
    """One row per kind of feedback it trained on: train and held-out rows, the pairs held out
    and the pairwise accuracy on them (against the hidden gold order too, where simulated)."""
    metrics = reward_model.metrics
    return [
        {"kind": label, "train": metrics[f"train_{kind}"],
         "heldout": metrics.get(f"heldout_{kind}"), "pairs": metrics.get(f"heldout_{kind}_pairs"),
         "pair_acc": metrics.get(f"heldout_{kind}_pair_acc"),
         "gold_acc": metrics.get(f"heldout_{kind}_gold_acc")}
        for kind, label in FEEDBACK_KINDS.items() if f"train_{kind}" in metrics
    ]


def wilson_interval(accuracy: float, pairs: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a share `accuracy` of `pairs` (95% by default): unlike the
    normal one, it stays inside [0, 1] and is honest for few pairs or accuracies near 1."""
    centre = accuracy + z * z / (2 * pairs)
    spread = z * math.sqrt(accuracy * (1 - accuracy) / pairs + z * z / (4 * pairs * pairs))
    scale = 1 + z * z / pairs
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def heldout_confidence(reward_model: RewardModel) -> dict[str, Any] | None:
    """The held-out pairs behind the pairwise accuracy, its 95% Wilson interval and whether
    they are too few (`few`, below FEW_HELDOUT_PAIRS); None before an accuracy exists."""
    accuracy = reward_model.heldout_accuracy
    pairs = sum(reward_model.metrics.get(f"heldout_{kind}_pairs") or 0 for kind in FEEDBACK_KINDS)
    if accuracy is None or not pairs:
        return None
    low, high = wilson_interval(accuracy, pairs)
    return {"pairs": pairs, "low": round(low, 3), "high": round(high, 3),
            "few": pairs < FEW_HELDOUT_PAIRS, "threshold": FEW_HELDOUT_PAIRS}


def runs_using(reward_model: RewardModel) -> QuerySet:
    """The tuning runs that are tuned against this reward model, oldest first."""
    return reward_model.tuning_runs.select_related("start_version", "result_version").order_by(
        "id")


def config_values(reward_model: RewardModel) -> list[dict[str, str]]:
    """The reward model's config as the settings table writes defaults: name, value as JSON
    (`true`, `0.001`, `"pairs"`)."""
    return [{"name": name, "value": json.dumps(value)}
            for name, value in reward_model.config.items()]


def config_settings() -> list[dict[str, Any]]:
    """The RewardModelConfig fields an admin may set at launch: name, default (as JSON), help."""
    helps = help_for(RewardModelConfig)
    return [{"name": name, "default": json.dumps(default), "help": helps[name]}
            for name, default in to_dict(RewardModelConfig()).items() if name not in PLATFORM_SET]
