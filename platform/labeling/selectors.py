"""Reads for labeling: a task as the annotator sees it, their progress, tasks by id for a user."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.models import Assignment, Task, TaskCandidate
from labeling.queue_sql import progress_counts
from projects.models import Project

SLOT_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Progress:
    done_today: int
    done: int
    total: int


@dataclass(frozen=True)
class ShownCandidate:
    id: int
    label: str
    output: dict


@dataclass(frozen=True)
class ScreenItem:
    id: int
    image_url: str
    width: int
    height: int


@dataclass(frozen=True)
class TaskScreen:
    """What one screen of the annotator UI needs (docs/api.md, next-task)."""

    id: int
    lease_expires_at: datetime | None
    rating_mode: str
    item: ScreenItem
    candidates: list[ShownCandidate]
    progress: Progress


def task_for(user: AbstractBaseUser, task_id: int, *, roles: tuple[str, ...]) -> Task:
    """The task with its project if the user has one of `roles` there; 404 for non-members."""
    task = (
        Task.objects.select_related("project")
        .filter(pk=task_id, project__memberships__user_id=user.pk)
        .annotate(role=F("project__memberships__role"))
        .first()
    )
    if task is None:
        raise Http404("No such task.")
    if task.role not in roles:
        raise ApplicationError(
            f"This needs the role {' or '.join(roles)} in the project; you are {task.role}.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return task


def progress_for(*, user: AbstractBaseUser, project: Project) -> Progress:
    """Answers given today (UTC) and in all, out of the project's tasks (one query)."""
    start_of_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today, done, total = progress_counts(project_id=project.pk, user_id=user.pk,
                                         since=start_of_day)
    return Progress(done_today=today, done=done, total=total)


def task_screen(*, assignment: Assignment, user: AbstractBaseUser, project: Project) -> TaskScreen:
    """The leased task with its item and candidates in screen order (A, B, ...)."""
    slots = list(
        TaskCandidate.objects.filter(task_id=assignment.task_id)
        .order_by("position")
        .values_list("position", "candidate_id", "candidate__output", "task__item_id",
                     "task__item__image", "task__item__width", "task__item__height")
    )
    _, _, _, item_id, image, width, height = slots[0]
    return TaskScreen(
        id=assignment.task_id,
        lease_expires_at=assignment.lease_expires_at,
        rating_mode=project.rating_mode,
        item=ScreenItem(id=item_id, image_url=default_storage.url(image), width=width,
                        height=height),
        candidates=[
            ShownCandidate(id=candidate_id, label=SLOT_LABELS[position], output=output)
            for position, candidate_id, output, *_ in slots
        ],
        progress=progress_for(user=user, project=project),
    )
