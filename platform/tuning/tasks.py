"""Celery tasks of tuning runs and of generating candidates (routed to the `gpu` queue), and the
reaper of tuning runs, reward-model trainings and demo trainings.

A task takes ids and hands them to `training/`, the worker-side door into the trainer. The
reaper runs when a worker starts (`worker_ready`), on the beat schedule (CELERY_BEAT_SCHEDULE)
where beat runs, and on each worker's own timer (every half TUNELAB_RUN_STALE_S), so a run whose
worker died is requeued even where no beat runs (`make run`) and no new run is launched.
"""

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from common.jobs import reap_every, worker_name
from projects.demo_training import reap_stale_demo_trainings
from rewards.services import reap_stale_reward_models
from training.candidates import generate_candidates
from training.tuning_run import execute_run
from tuning.candidates import GENERATE_TASK
from tuning.services import RUN_TASK, reap_stale_runs

logger = logging.getLogger(__name__)


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True)
def tuning_run_execute(run_id: int) -> None:
    execute_run(run_id, worker=worker_name(), heartbeat_s=settings.TUNELAB_RUN_HEARTBEAT_S)


@shared_task(name=GENERATE_TASK, acks_late=True, reject_on_worker_lost=True)
def generate_candidates_task(model_version_id: int, samples: int, temperature: float) -> None:
    created = generate_candidates(model_version_id, samples=samples, temperature=temperature)
    logger.info("model version %s: %d new candidates", model_version_id, created)


def reap_stale_jobs() -> None:
    """Requeue tuning runs, reward-model trainings and demo trainings whose worker stopped
    beating."""
    stale_after = timedelta(seconds=settings.TUNELAB_RUN_STALE_S)
    runs = reap_stale_runs(stale_after=stale_after)
    reward_models = reap_stale_reward_models(stale_after=stale_after)
    demos = reap_stale_demo_trainings(stale_after=stale_after)
    if runs or reward_models or demos:
        logger.warning("requeued (stale heartbeat) tuning runs %s, reward models %s, demo "
                       "trainings %s", runs, reward_models, demos)


@shared_task(name="tuning.reap_stale_runs")
def reap_stale_runs_task() -> None:
    reap_stale_jobs()


@worker_ready.connect
def _reap_at_worker_start(**_: object) -> None:
    reap_stale_jobs()
    reap_every(settings.TUNELAB_RUN_STALE_S / 2, reap_stale_jobs)
