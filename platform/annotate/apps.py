"""App config for annotate: the server-rendered pages of the annotator UI (login, project
picker, annotate page). The pages only load; the page's JavaScript talks to the REST API."""

from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
