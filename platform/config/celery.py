"""The Celery app. Workers start with `celery -A config worker` from the platform/ source root."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tunelab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
