"""Reads for projects: what a user may see of projects, items and candidates."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet

from projects.models import Candidate, Item, Project


def projects_for_user(user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects the user is a member of, each with `role` (theirs) annotated."""
    return (
        Project.objects.filter(memberships__user_id=user.pk)
        .annotate(role=F("memberships__role"))
        .order_by("id")
    )


def items_of(project: Project) -> QuerySet[Item]:
    return Item.objects.filter(project=project).order_by("id")


def candidates_of(project: Project, *, item_id: int | None = None) -> QuerySet[Candidate]:
    candidates = (
        Candidate.objects.filter(item__project=project)
        .select_related("model_version")
        .order_by("id")
    )
    if item_id is not None:
        candidates = candidates.filter(item_id=item_id)
    return candidates
