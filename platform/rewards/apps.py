"""App config for rewards: learned reward models trained from a project's ratings."""

from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    default_auto_field = "django.db.models.BigAutoField"
