"""App config for common: the pieces every other app shares (errors, permissions)."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"

    def ready(self) -> None:
        from common.plain_api import connect_signals

        connect_signals()
