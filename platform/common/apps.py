"""App config for common: the pieces every other app shares (errors, permissions, ids)."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"

    def ready(self) -> None:
        from common.integers import register_id_converter
        from common.plain_api import connect_signals

        connect_signals()
        register_id_converter()
