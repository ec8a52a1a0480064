"""The demo's starting models (`DemoModelTraining`): asking for one, what its worker records,
and what the admin's home page shows of them. Web side: rows only (the training itself is
`training.demo_training`, run by the Celery task `DEMO_TRAIN_TASK`).

A project gets one row. `demo_training_request` queues it when the project's demo model is
missing and sends the task again for a row that has not finished, since a worker stopped with
`make run` may have lost the message; the job lifecycle lets only one worker claim it.
"""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.jobs import FINISHED, JobStatus, job_enqueue, jobs_reap_stale
from common.permissions import ADMINS
from projects.models import DemoModelTraining, ModelVersion, Project
from projects.services import DESCRIPTION_FIELDS

DEMO_TRAIN_TASK = "projects.train_demo_model"
DEMO_MODEL_NAME = "demo MLE model"


def demo_checkpoint_name(project_id: int) -> str:
    """Where a project's demo model is saved, relative to MEDIA_ROOT (admins only)."""
    return f"projects/{project_id}/checkpoints/demo_mle.pt"


@transaction.atomic
def demo_training_request(*, project: Project, max_seconds: float, max_steps: int
                          ) -> tuple[DemoModelTraining, bool]:
    """Queue the training of the project's demo model unless the model is there; returns the
    row and whether the task was sent. A failed training, or one whose model was deleted,
    starts again (keeping a saved model: only its candidates are then made again)."""
    training = (DemoModelTraining.objects.select_for_update().filter(project=project).first()
                or DemoModelTraining.objects.create(project=project, max_seconds=max_seconds,
                                                    max_steps=max_steps))
    if training.status == JobStatus.SUCCEEDED and training.model_version_id is not None:
        return training, False
    if training.status in FINISHED:
        again = {"status": JobStatus.QUEUED, "worker": "", "deaths": 0, "error": "",
                 "started_at": None, "finished_at": None, "heartbeat_at": None}
        if training.model_version_id is None:  # it trains again, within today's budget
            again |= {"seconds_used": 0.0, "steps_done": 0, "max_seconds": max_seconds,
                      "max_steps": max_steps}
        for name, value in again.items():
            setattr(training, name, value)
        training.save()
    job_enqueue(DEMO_TRAIN_TASK, training.pk)
    return training, True


def demo_training_progress(*, training_id: int, worker: str, seconds: float, steps: int
                           ) -> bool:
    """Record the training time and steps so far; False when this worker no longer owns it."""
    return bool(DemoModelTraining.objects.filter(
        pk=training_id, worker=worker, status=JobStatus.RUNNING,
    ).update(seconds_used=seconds, steps_done=steps))


@transaction.atomic
def demo_model_record(*, training_id: int, worker: str, checkpoint_name: str,
                      description: dict, metrics: dict, seconds: float, steps: int
                      ) -> ModelVersion | None:
    """The trained model as the project's model version `DEMO_MODEL_NAME`, its checkpoint
    described by the worker that wrote it; None when this worker no longer owns the training."""
    training = (DemoModelTraining.objects.select_for_update()
                .filter(pk=training_id, worker=worker, status=JobStatus.RUNNING).first())
    if training is None:
        return None
    version, _ = ModelVersion.objects.update_or_create(
        project_id=training.project_id, name=DEMO_MODEL_NAME,
        defaults={
            "description": f"MLE-trained on Synthetic Shapes by the demo's worker: {steps} "
                           f"steps in {seconds:.0f} s.",
            "metrics": metrics, "checkpoint_error": "",
            **{name: description[name] for name in DESCRIPTION_FIELDS},
        },
    )
    # The worker saved the checkpoint under MEDIA_ROOT already: the version points at it.
    version.checkpoint.name = checkpoint_name
    version.save(update_fields=["checkpoint"])
    training.model_version = version
    training.seconds_used, training.steps_done = seconds, steps
    training.save(update_fields=["model_version", "seconds_used", "steps_done"])
    return version


def demo_training_succeed(*, training_id: int, worker: str, candidates_created: int) -> None:
    DemoModelTraining.objects.filter(
        pk=training_id, worker=worker, status=JobStatus.RUNNING,
    ).update(status=JobStatus.SUCCEEDED, candidates_created=candidates_created,
             finished_at=timezone.now())


def demo_trainings_for(user: AbstractBaseUser) -> QuerySet[DemoModelTraining]:
    """The demo trainings of the projects the user administers."""
    return (DemoModelTraining.objects
            .filter(project__memberships__user_id=user.pk,
                    project__memberships__role__in=ADMINS)
            .select_related("project", "model_version").order_by("project_id"))


def reap_stale_demo_trainings(*, stale_after: timedelta) -> list[int]:
    """Requeue demo trainings whose worker stopped beating (they start over on the next one)."""
    return jobs_reap_stale(DemoModelTraining, stale_after=stale_after,
                           enqueue=lambda pk: job_enqueue(DEMO_TRAIN_TASK, pk))
