"""Choices in the Django admin that name their project: a project's rows often share names
across projects (every project has its "mle"), so a select of model versions, reward models or
items shows "name (project)"."""

from django.contrib import admin
from django.db.models import ForeignKey, Model
from django.forms import ModelChoiceField
from django.http import HttpRequest

from projects.models import Project


def _in_a_project(model: type[Model]) -> bool:
    return any(isinstance(field, ForeignKey) and field.related_model is Project
               and field.name == "project" for field in model._meta.get_fields())


def with_project(row: Model) -> str:
    return f"{row} ({row.project.name})"


class ProjectLabelledChoices(admin.ModelAdmin):
    """A ModelAdmin whose foreign-key choices of project rows read "name (project)"."""

    def formfield_for_foreignkey(self, db_field: ForeignKey, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if isinstance(field, ModelChoiceField) and _in_a_project(db_field.related_model):
            field.queryset = field.queryset.select_related("project")
            field.label_from_instance = with_project
        return field
