"""App config for projects: what gets rated (projects, items, model versions, candidates)."""

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    default_auto_field = "django.db.models.BigAutoField"
