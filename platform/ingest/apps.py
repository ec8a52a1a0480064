"""The ingest app: imports images, ground truth and model outputs into a project."""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Import"
