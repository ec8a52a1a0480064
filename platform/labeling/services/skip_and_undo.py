"""An annotator's way back: skipping a task unanswered, and withdrawing their last answer."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.models import Assignment, AssignmentStatus, Task, answer_model
from labeling.services.answers import conflict
from labeling.services.leases import lease_duration
from projects.models import Project

LEASED = AssignmentStatus.LEASED


@transaction.atomic
def task_skip(*, user: AbstractBaseUser, task: Task) -> None:
    """Give the task back unanswered; it is not served to this annotator again."""
    now = timezone.now()
    released = Assignment.objects.filter(task=task, annotator=user, status=LEASED).update(
        status=AssignmentStatus.SKIPPED, lease_expires_at=None, updated_at=now
    )
    if released:
        return
    state = (
        Assignment.objects.filter(task=task, annotator=user)
        .values_list("status", flat=True)
        .first()
    )
    if state == AssignmentStatus.ANSWERED:
        raise conflict("You answered this task; undo the answer instead.")
    if state is None:
        # Skipping a task never handed out (e.g. a preloaded one dropped) still keeps it away.
        Assignment.objects.create(
            task=task, annotator=user, status=AssignmentStatus.SKIPPED, lease_expires_at=None
        )


@transaction.atomic
def answer_undo(*, user: AbstractBaseUser, project: Project) -> Assignment:
    """Withdraw the annotator's last answer in the project; its task is leased to them again."""
    last = (
        answer_model(project.rating_mode).objects.select_for_update()
        .filter(annotator=user, task__project=project)
        .order_by("-id")
        .first()
    )
    if last is None:
        raise ApplicationError(
            "You have no answer to undo in this project.", status_code=status.HTTP_404_NOT_FOUND
        )
    task_id = last.task_id
    last.delete()
    # The answer's slot becomes the lease's: the task's count of taken slots is unchanged.
    Task.objects.filter(pk=task_id).update(answer_count=F("answer_count") - 1)
    now = timezone.now()
    Assignment.objects.filter(task_id=task_id, annotator=user).update(
        status=LEASED, lease_expires_at=now + lease_duration(), updated_at=now
    )
    return Assignment.objects.get(task_id=task_id, annotator=user)
