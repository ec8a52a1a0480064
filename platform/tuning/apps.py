"""App config for tuning: REINFORCE tuning runs executed by Celery workers on the `gpu` queue."""

from django.apps import AppConfig


class TuningConfig(AppConfig):
    name = "tuning"
    default_auto_field = "django.db.models.BigAutoField"
