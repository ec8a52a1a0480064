"""A real Celery worker on Redis and PostgreSQL runs tuning runs: launched through the API, the
run ends as a new ModelVersion; killed with -9 mid-run, it resumes on a new worker from its
checkpoint and finishes, with every step stored once."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from common.jobs import JobStatus
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from tests.integration.workers import STALE_S, wait_for
from trainer.train.checkpoint import load_checkpoint
from tuning.models import TuningRun, TuningStep
from tuning.services import run_checkpoint_name

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _run(pk: int) -> TuningRun:
    return TuningRun.objects.get(pk=pk)


def test_a_worker_runs_a_launched_run_to_a_model_version(
    start_worker, project_admin, admin_api
):
    shapes = shapes_project(admins=[project_admin])
    mle = version_with_checkpoint(shapes)
    worker = start_worker()
    response = admin_api.post(
        f"/api/projects/{shapes.pk}/tuning-runs/",
        {"start_version": mle.pk, "config": tiny_tune_config(), "data": TINY_DATA},
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    wait_for(lambda: _run(pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED),
             what="the run to finish", worker=worker)
    run = _run(pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.worker.endswith(f":{worker.process.pid}")
    assert load_checkpoint(run.result_version.checkpoint.path).step == 4
    assert list(TuningStep.objects.filter(run=run).values_list("step", flat=True)) == [
        0, 1, 2, 3]
    detail = admin_api.get(f"/api/tuning-runs/{pk}/").json()
    assert detail["result_version"]["name"] == f"mle tuned (run {pk})"


def test_a_killed_worker_s_run_resumes_on_a_new_worker(start_worker, project_admin):
    from tuning.services import tuning_run_launch

    shapes = shapes_project(admins=[project_admin])
    run = tuning_run_launch(
        project=shapes, start_version=version_with_checkpoint(shapes), data=TINY_DATA,
        config=tiny_tune_config(steps=60, batch_size=4, samples=4), save_every=5,
    )
    checkpoint = Path(settings.MEDIA_ROOT) / run_checkpoint_name(run.pk)
    first = start_worker()
    wait_for(lambda: _run(run.pk).step >= 12 and checkpoint.is_file(),
             what="a checkpoint mid-run", worker=first)
    first.kill()
    killed_at = timezone.now()
    dead = _run(run.pk)
    assert dead.status == JobStatus.RUNNING and dead.step < 60
    resume_step = load_checkpoint(checkpoint).step

    # The reaper of the next worker to start requeues a run silent for STALE_S.
    wait_for(lambda: _run(run.pk).heartbeat_at < timezone.now() - timedelta(seconds=STALE_S),
             what="the heartbeat to go stale")
    second = start_worker()
    wait_for(lambda: _run(run.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED),
             what="the resumed run to finish", worker=second)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and run.worker.endswith(f":{second.process.pid}")
    steps = dict(TuningStep.objects.filter(run=run).values_list("step", "recorded_at"))
    assert sorted(steps) == list(range(60))
    # Resumed at the checkpoint: earlier steps were not trained (nor recorded) again.
    assert all(steps[s] < killed_at for s in range(resume_step))
    assert all(steps[s] > killed_at for s in range(resume_step, 60))
