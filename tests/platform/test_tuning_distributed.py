"""A tuning run whose config asks for two processes: the worker trains with torchrun (gloo on
CPU), writes the processes' metrics to the run's steps and records the new ModelVersion."""

from pathlib import Path

import pytest
from django.conf import settings

from common.jobs import JobStatus
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from trainer.train.checkpoint import load_checkpoint
from training.tuning_run import execute_run
from tuning.models import TuningStep
from tuning.services import run_checkpoint_name, tuning_run_launch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]


def test_a_run_in_two_processes_trains_to_a_new_model_version(project_admin):
    project = shapes_project(admins=[project_admin])
    run = tuning_run_launch(
        project=project, start_version=version_with_checkpoint(project),
        config=tiny_tune_config(processes=2), data=TINY_DATA, save_every=2,
    )
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.step, run.total_steps) == (4, 4)
    steps = TuningStep.objects.filter(run=run)
    assert [s.step for s in steps] == [0, 1, 2, 3]
    assert all({"reward", "grad_norm", "lr"} <= set(s.metrics) for s in steps)
    own = load_checkpoint(Path(settings.MEDIA_ROOT) / run_checkpoint_name(run.pk))
    assert (own.step, own.run_config["processes"]) == (4, 2)
    assert "map" in run.result_version.metrics
    # Rank 0's held-out selection comes back through torchrun: the start and the last step.
    selection = run.result_version.metrics["selection"]
    assert [step for step, _ in selection["history"]] == [0, 4]
