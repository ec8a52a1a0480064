"""Reads for projects: what a user may see of projects, items and candidates."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Model, QuerySet

from common.errors import ApplicationError
from projects.models import Candidate, Item, ModelVersion, Project


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


def checkpointed_versions_of(project: Project) -> QuerySet[ModelVersion]:
    """The project's model versions that have a checkpoint (trained ones, not imported)."""
    return ModelVersion.objects.filter(project=project).exclude(checkpoint="").order_by("id")


def in_project(model: type[Model], pk: int | None, project_id: int, field: str):
    """A row of the project by id; other projects' ids are as unknown as missing ones."""
    if pk is None:
        return None
    row = model.objects.filter(pk=pk, project_id=project_id).first()
    if row is None:
        raise ApplicationError(f"No {field.replace('_', ' ')} {pk} in this project.", field=field)
    return row
