"""The exports app: ratings and comparisons of a project as JSON, JSONL or CSV."""

from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"
