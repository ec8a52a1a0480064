"""Reads for labeling: a task as the annotator sees it, their progress, tasks by id for a user."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.models import Assignment, AssignmentStatus, Task, TaskCandidate
from projects.models import Item, Membership, Project

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
class TaskScreen:
    """What one screen of the annotator UI needs (docs/api.md, next-task)."""

    id: int
    lease_expires_at: datetime | None
    rating_mode: str
    item: Item
    candidates: list[ShownCandidate]
    progress: Progress


def task_for(user: AbstractBaseUser, task_id: int, *, roles: tuple[str, ...]) -> Task:
    """The task with its project if the user has one of `roles` there; 404 for non-members."""
    role = Membership.objects.filter(project=OuterRef("project_id"), user_id=user.pk)
    task = (
        Task.objects.select_related("project")
        .annotate(role=Subquery(role.values("role")[:1]))
        .filter(pk=task_id)
        .first()
    )
    if task is None or task.role is None:
        raise Http404("No such task.")
    if task.role not in roles:
        raise ApplicationError(
            f"This needs the role {' or '.join(roles)} in the project; you are {task.role}.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return task


def progress_for(*, user: AbstractBaseUser, project: Project) -> Progress:
    """Answers given today (UTC) and in all, out of the project's tasks."""
    start_of_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = Assignment.objects.filter(
        annotator=user, task__project=project, status=AssignmentStatus.ANSWERED
    ).aggregate(
        done=Count("id"), done_today=Count("id", filter=Q(updated_at__gte=start_of_day))
    )
    total = Task.objects.filter(project=project).count()
    return Progress(done_today=counts["done_today"], done=counts["done"], total=total)


def task_screen(*, assignment: Assignment, user: AbstractBaseUser, project: Project) -> TaskScreen:
    """The leased task with its item and candidates in screen order (A, B, ...)."""
    task = Task.objects.select_related("item").get(pk=assignment.task_id)
    slots = (
        TaskCandidate.objects.filter(task=task)
        .select_related("candidate")
        .order_by("position")
    )
    return TaskScreen(
        id=task.pk,
        lease_expires_at=assignment.lease_expires_at,
        rating_mode=project.rating_mode,
        item=task.item,
        candidates=[
            ShownCandidate(id=s.candidate_id, label=SLOT_LABELS[s.position],
                           output=s.candidate.output)
            for s in slots
        ],
        progress=progress_for(user=user, project=project),
    )
