"""Celery task of reading an uploaded checkpoint (worker side: it opens the file with torch)."""

from celery import shared_task

from projects.services import DESCRIBE_TASK
from training.checkpoints import describe_version_id


@shared_task(name=DESCRIBE_TASK, acks_late=True, reject_on_worker_lost=True)
def describe_checkpoint(model_version_id: int) -> None:
    describe_version_id(model_version_id)
