"""`manage.py reap_stale_runs`: requeue tuning runs whose worker stopped beating."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from tuning.services import reap_stale_runs


class Command(BaseCommand):
    help = "Requeue running tuning runs whose heartbeat is older than TUNELAB_RUN_STALE_S."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--stale-after", type=float, default=None,
                            help="seconds without a heartbeat (default TUNELAB_RUN_STALE_S)")

    def handle(self, *args, stale_after: float | None, **options) -> None:
        seconds = settings.TUNELAB_RUN_STALE_S if stale_after is None else stale_after
        reaped = reap_stale_runs(stale_after=timedelta(seconds=seconds))
        self.stdout.write(f"requeued {len(reaped)} run(s): {reaped}" if reaped
                          else "no stale runs")
