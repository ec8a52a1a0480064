"""`manage.py reap_stale_runs`: requeue tuning runs and reward-model trainings whose worker
stopped beating."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from rewards.services import reap_stale_reward_models
from tuning.services import reap_stale_runs


class Command(BaseCommand):
    help = ("Requeue running tuning runs and reward-model trainings whose heartbeat is older "
            "than TUNELAB_RUN_STALE_S.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--stale-after", type=float, default=None,
                            help="seconds without a heartbeat (default TUNELAB_RUN_STALE_S)")

    def handle(self, *args, stale_after: float | None, **options) -> None:
        seconds = settings.TUNELAB_RUN_STALE_S if stale_after is None else stale_after
        stale_after = timedelta(seconds=seconds)
        runs = reap_stale_runs(stale_after=stale_after)
        reward_models = reap_stale_reward_models(stale_after=stale_after)
        self.stdout.write(f"requeued tuning runs {runs}, reward models {reward_models}")
