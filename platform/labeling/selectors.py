"""Reads for labeling: a task as the annotator sees it (with their progress), tasks by id for a
user."""

import json
import time
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.models import Assignment, Task
from labeling.queue_sql import (
    done_counts,
    project_mode_and_role,
    screen_rows,
    task_count,
    task_with_role,
)
from projects.models import Project

# A project's task count, per process, for the progress line: counting every task on every
# request cost more than the rest of a next-task. tasks_create forgets it; others' processes see
# new tasks within TASK_TOTAL_SECONDS.
TASK_TOTAL_SECONDS = 30.0
_task_totals: dict[int, tuple[int, float]] = {}

SLOT_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Lease:
    """A task handed to an annotator, until `expires_at`."""

    task_id: int
    expires_at: datetime


@dataclass(frozen=True)
class AnswerTarget:
    """What storing an answer needs to know of its task."""

    task_id: int
    project_id: int
    key: str
    rating_mode: str


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


def _refuse_role(role: str, roles: tuple[str, ...]) -> ApplicationError:
    return ApplicationError(
        f"This needs the role {' or '.join(roles)} in the project; you are {role}.",
        status_code=status.HTTP_403_FORBIDDEN,
    )


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
        raise _refuse_role(task.role, roles)
    return task


def answer_target(*, user_id: int, task_id: int, roles: tuple[str, ...]) -> AnswerTarget:
    """`task_for` in one plain query, for answering: 404 for non-members, 403 for other roles."""
    row = task_with_role(task_id=task_id, user_id=user_id)
    if row is None or row[3] is None:
        raise Http404("No such task.")
    project_id, key, rating_mode, role = row
    if role not in roles:
        raise _refuse_role(role, roles)
    return AnswerTarget(task_id=task_id, project_id=project_id, key=key, rating_mode=rating_mode)


def project_mode(*, user_id: int, project_id: int, roles: tuple[str, ...]) -> str:
    """The project's rating mode if the user has one of `roles` in it (as
    common.permissions.project_for: 404 for non-members, 403 otherwise), in one plain query."""
    row = project_mode_and_role(project_id=project_id, user_id=user_id)
    if row is None:
        raise Http404("No such project.")
    rating_mode, role = row
    if role not in roles:
        raise _refuse_role(role, roles)
    return rating_mode


def forget_task_total(project_id: int) -> None:
    _task_totals.pop(project_id, None)


def _task_total(project_id: int) -> int:
    now = time.monotonic()
    cached = _task_totals.get(project_id)
    if cached is not None and cached[1] > now:
        return cached[0]
    total = task_count(project_id=project_id)
    _task_totals[project_id] = (total, now + TASK_TOTAL_SECONDS)
    return total


def start_of_day() -> datetime:
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def annotator_progress(*, user_id: int, project_id: int) -> Progress:
    """The annotator's progress in the project, as their task screens carry it."""
    today, done = done_counts(user_id=user_id, project_id=project_id, since=start_of_day())
    return Progress(done_today=today, done=done, total=_task_total(project_id))


def lease_screen(*, lease: Lease, user_id: int, project_id: int, rating_mode: str) -> TaskScreen:
    """The leased task with its item and candidates in screen order (A, B, ...), and the
    annotator's progress, in one query."""
    slots = screen_rows(task_id=lease.task_id, user_id=user_id, project_id=project_id,
                        since=start_of_day())
    return screen_of_rows(lease=lease, rows=slots, project_id=project_id,
                          rating_mode=rating_mode)


def screen_of_rows(*, lease: Lease, rows: list[tuple], project_id: int,
                   rating_mode: str) -> TaskScreen:
    """A TaskScreen from queue_sql.screen_rows' rows (at least one)."""
    _, _, _, item_id, image, width, height, today, done = rows[0]
    return TaskScreen(
        id=lease.task_id,
        lease_expires_at=lease.expires_at,
        rating_mode=rating_mode,
        item=ScreenItem(id=item_id, image_url=default_storage.url(image), width=width,
                        height=height),
        candidates=[
            ShownCandidate(id=candidate_id, label=SLOT_LABELS[position],
                           output=json.loads(output) if isinstance(output, str) else output)
            for position, candidate_id, output, *_ in rows
        ],
        progress=Progress(done_today=today, done=done, total=_task_total(project_id)),
    )


def task_screen(*, assignment: Assignment, user: AbstractBaseUser, project: Project) -> TaskScreen:
    """`lease_screen` for an Assignment row."""
    lease = Lease(task_id=assignment.task_id, expires_at=assignment.lease_expires_at)
    return lease_screen(lease=lease, user_id=user.pk, project_id=project.pk,
                        rating_mode=project.rating_mode)
