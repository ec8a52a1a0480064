"""Celery tasks of projects (worker side: they open files with torch): reading an uploaded
checkpoint, and training a demo project's starting model (`default` queue)."""

from celery import shared_task
from django.conf import settings

from common.jobs import worker_name
from projects.demo_training import DEMO_TRAIN_TASK
from projects.services import DESCRIBE_TASK
from training.checkpoints import describe_version_id
from training.demo_training import train_demo_model


@shared_task(name=DESCRIBE_TASK, acks_late=True, reject_on_worker_lost=True)
def describe_checkpoint(model_version_id: int) -> None:
    describe_version_id(model_version_id)


@shared_task(name=DEMO_TRAIN_TASK, acks_late=True, reject_on_worker_lost=True)
def demo_model_train(training_id: int) -> None:
    train_demo_model(training_id, worker=worker_name(),
                     heartbeat_s=settings.TUNELAB_RUN_HEARTBEAT_S)
