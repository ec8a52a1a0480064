"""The job lifecycle shared by tuning runs and reward-model trainings: a redelivered message
takes over from a worker process known to be dead at once, a job whose worker died twice is
failed with the reason (not left running, not tried for ever), an admin's retry starts afresh,
and a worker reaps dead workers' jobs on its own timer where no beat runs."""

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from common.jobs import JobStatus, job_claim, reap_every, worker_name
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.tuning_run import execute_run
from tuning.models import TuningRun
from tuning.services import reap_stale_runs, tuning_run_launch, tuning_run_retry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]
STALE = timedelta(minutes=2)


@pytest.fixture
def run(project_admin) -> TuningRun:
    project = shapes_project(admins=[project_admin])
    return tuning_run_launch(project=project, start_version=version_with_checkpoint(project),
                             config=tiny_tune_config(), data=TINY_DATA)


def dead_worker_here() -> str:
    """The name a worker process of this host had, that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{child.stdout.strip()}"


def died_running(run: TuningRun, worker: str) -> None:
    """The run as a worker left it when it was killed: running, its heartbeat fresh."""
    TuningRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, worker=worker,
                                                heartbeat_at=timezone.now())


def test_a_redelivered_run_is_taken_over_from_a_dead_worker_process_at_once(run):
    died_running(run, dead_worker_here())
    claimed = job_claim(TuningRun, pk=run.pk, worker="w2", stale_after=STALE)
    assert claimed is not None and (claimed.worker, claimed.deaths) == ("w2", 1)


def test_a_live_worker_process_of_this_host_keeps_its_run(run):
    died_running(run, worker_name())  # this very process: alive
    assert job_claim(TuningRun, pk=run.pk, worker="w2", stale_after=STALE) is None


def test_a_run_that_killed_its_worker_twice_is_failed_with_the_reason(run):
    died_running(run, dead_worker_here())  # first death: taken over
    assert job_claim(TuningRun, pk=run.pk, worker=dead_worker_here(), stale_after=STALE)
    died_running(run, dead_worker_here())  # second death
    assert job_claim(TuningRun, pk=run.pk, worker="w3", stale_after=STALE) is None
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.finished_at is not None
    assert "died 2 times" in run.error


def test_a_reaped_death_counts_and_a_retry_starts_afresh(run, sent):
    for _ in range(2):
        TuningRun.objects.filter(pk=run.pk).update(
            status=JobStatus.RUNNING, worker="gone", heartbeat_at=timezone.now() - STALE * 2)
        assert reap_stale_runs(stale_after=STALE) == [run.pk]
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "died 2 times" in run.error
    tuning_run_retry(run=run)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error


def test_a_worker_reaps_on_its_own_timer():
    reaped = threading.Event()
    stop = reap_every(0.01, reaped.set)
    try:
        assert reaped.wait(timeout=30)
    finally:
        stop.set()


def test_known_dead_is_about_this_host_only():
    from common.jobs import _known_dead

    assert _known_dead(dead_worker_here())
    assert not _known_dead(f"{socket.gethostname()}:{os.getpid()}")
    assert not _known_dead("another-host:1")


def test_a_dead_worker_s_demo_training_is_requeued(make_project, sent,
                                                    django_capture_on_commit_callbacks):
    from projects.demo_training import demo_training_request, reap_stale_demo_trainings
    from projects.models import DemoModelTraining

    training, _ = demo_training_request(project=make_project(), max_seconds=60, max_steps=10)
    DemoModelTraining.objects.filter(pk=training.pk).update(
        status=JobStatus.RUNNING, worker="gone", heartbeat_at=timezone.now() - STALE * 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert reap_stale_demo_trainings(stale_after=STALE) == [training.pk]
    training.refresh_from_db()
    assert (training.status, training.deaths) == (JobStatus.QUEUED, 1)
    assert ("projects.train_demo_model", [training.pk]) in sent
