"""Reads for the annotator UI's pages: the project picker's projects with the user's progress."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from common.permissions import ANNOTATORS
from labeling.selectors import Progress, annotator_progress
from projects.models import Project
from projects.selectors import projects_for_user


@dataclass(frozen=True)
class PickedProject:
    """A project on the picker: `project.role` is the user's; `progress` theirs where they
    annotate, else None."""

    project: Project
    progress: Progress | None


def picker_projects(user: AbstractBaseUser) -> list[PickedProject]:
    return [
        PickedProject(
            project=project,
            progress=annotator_progress(user_id=user.pk, project_id=project.pk)
            if project.role in ANNOTATORS else None,
        )
        for project in projects_for_user(user)
    ]
