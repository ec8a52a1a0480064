"""App config for console: a project's pages for each step of the loop after annotating."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
