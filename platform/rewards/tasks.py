"""Celery task of reward-model training (routed to the `gpu` queue)."""

from celery import shared_task
from django.conf import settings

from common.jobs import worker_name
from rewards.services import TRAIN_TASK
from training.reward_model import train_project_reward_model


@shared_task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True)
def reward_model_train(reward_model_id: int) -> None:
    train_project_reward_model(reward_model_id, worker=worker_name(),
                               heartbeat_s=settings.TUNELAB_RUN_HEARTBEAT_S)
