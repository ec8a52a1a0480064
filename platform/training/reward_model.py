"""What a worker does with a reward model: the project's feedback in, `train_reward_model`,
the model file, its held-out accuracy and the history of its held-out evaluations out (the
body of the Celery task, run by the shared job lifecycle `common.jobs.job_run`; tests call it
in-process). Training is short, so a restarted training starts over rather than resuming.
"""

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

from common.jobs import job_run
from rewards.models import RewardModel
from rewards.services import reward_model_succeed
from trainer.configs import RewardModelConfig, from_dict
from trainer.reward_model.model import save_reward_model
from trainer.reward_model.train import train_reward_model
from trainer.train.checkpoint import Checkpoint
from trainer.train.loops import pick_device
from training.checkpoints import load_version
from training.feedback import project_feedback


def reward_model_file_name(reward_model: RewardModel) -> str:
    return f"projects/{reward_model.project_id}/reward_models/{reward_model.pk}.pt"


def _train(reward_model: RewardModel) -> dict[str, Any]:
    """Train on the project's feedback and save the model file; what success records."""
    config = from_dict(RewardModelConfig, reward_model.config)
    feedback = project_feedback(reward_model.project, config.image_size, config)
    trained = train_reward_model(
        config, preferences=feedback.preferences, rankings=feedback.rankings,
        ratings=feedback.ratings, device=pick_device(),
        policy=starting_policy(reward_model, config),
    )
    metrics = {**trained.heldout, **trained.sizes, "seconds": round(trained.seconds, 2),
               "history": evaluation_history(trained.history)}
    name = reward_model_file_name(reward_model)
    save_reward_model(Path(settings.MEDIA_ROOT) / name, trained.model.cpu(), metrics)
    return {"file_name": name, "heldout_accuracy": trained.heldout.get("pair_acc"),
            "metrics": json_safe(metrics)}


def train_project_reward_model(reward_model_id: int, *, worker: str,
                               heartbeat_s: float | None = None) -> None:
    """Train the reward model from its project's feedback; record the result or the error."""
    job_run(
        RewardModel, pk=reward_model_id, worker=worker, heartbeat_s=heartbeat_s,
        stale_after=timedelta(seconds=settings.TUNELAB_RUN_STALE_S), work=_train,
        succeed=lambda reward_model, done: reward_model_succeed(
            reward_model_id=reward_model.pk, worker=worker, **done),
    )


def starting_policy(reward_model: RewardModel, config: RewardModelConfig) -> Checkpoint | None:
    """The checkpoint readout 'policy' starts from; None for the other readouts."""
    if config.readout != "policy":
        return None
    if reward_model.policy is None or not reward_model.policy.checkpoint:
        raise ValueError("readout 'policy' needs the model version it starts from, which is "
                         "gone or has no checkpoint")
    return load_version(reward_model.policy)


# What the reward-model page draws of each held-out evaluation, besides its step.
HISTORY_METRICS = ("loss", "pair_acc", "gold_acc")


def evaluation_history(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The steps that were evaluated on held-out feedback (steps counted from 1): the training
    loss there, the pairwise accuracy and, for simulated feedback, the gold accuracy."""
    return [{"step": index + 1, **{k: metrics[k] for k in HISTORY_METRICS if k in metrics}}
            for index, metrics in enumerate(history)
            if any(name.startswith("heldout_") for name in metrics)]


def json_safe(value: Any) -> Any:
    """NaN and infinities (no pairs of a kind held out, a diverged loss) are not JSON: null
    instead, in nested dicts and lists too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
