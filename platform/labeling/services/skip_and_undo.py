"""An annotator's way back: skipping a task unanswered, and undoing their last step (an answer
withdrawn, or a skip taken back), one step further back each time."""

from dataclasses import dataclass
from typing import Literal

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
SKIPPED = AssignmentStatus.SKIPPED


@dataclass(frozen=True)
class Undone:
    """The step taken back and the task's assignment, leased to the annotator again."""

    step: Literal["answer", "skip"]
    assignment: Assignment


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


def last_step_undo(*, user: AbstractBaseUser, project: Project) -> Undone:
    """Undo the annotator's last step in the project, an answer or a skip, whichever came last:
    its task is leased to them again. Called again, it undoes the step before.

    A skipped task that has had all its answers from others since cannot come back: the skip is
    forgotten (so the next call goes on to the step before it) and a 409 says so.
    """
    with transaction.atomic():
        skipped = (
            Assignment.objects.filter(annotator=user, task__project=project, status=SKIPPED)
            .order_by("-updated_at", "-id")
            .first()
        )
        answered_at = (
            answer_model(project.rating_mode).objects
            .filter(annotator=user, task__project=project)
            .order_by("-id")
            .values_list("created_at", flat=True)
            .first()
        )
        if skipped is None or (answered_at is not None and answered_at >= skipped.updated_at):
            return Undone(step="answer", assignment=answer_undo(user=user, project=project))
        if _skip_undo(skipped):
            return Undone(step="skip", assignment=Assignment.objects.get(pk=skipped.pk))
    raise conflict(
        f"Task {skipped.task_id}, which you skipped, has had all its answers from others since: "
        "it cannot come back."
    )


def _skip_undo(skipped: Assignment) -> bool:
    """Lease a skipped task to its annotator again if it has room; else forget the skip. True
    when it is leased."""
    # The task's row lock first, as the queue takes it, then the slots are counted.
    task = Task.objects.select_for_update().get(pk=skipped.task_id)
    now = timezone.now()
    others = (
        Assignment.objects.filter(task=task, status=LEASED, lease_expires_at__gt=now)
        .exclude(annotator_id=skipped.annotator_id)
        .count()
    )
    if task.answer_count + others >= task.answers_needed:
        Assignment.objects.filter(pk=skipped.pk, status=SKIPPED).delete()
        return False
    Assignment.objects.filter(pk=skipped.pk, status=SKIPPED).update(
        status=LEASED, lease_expires_at=now + lease_duration(), updated_at=now
    )
    return True
