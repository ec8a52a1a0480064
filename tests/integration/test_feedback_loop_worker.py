"""The loop on a real Celery worker (Redis, PostgreSQL): simulated annotators answer through
the API, a reward model is trained from their answers, a run tuned against it makes a new
ModelVersion, and its outputs become new candidates and tasks to rate: on a detection project
and on a colorization one (whose annotators judge colours against the items' own images)."""

import pytest
from django.core.management import call_command

from common.jobs import JobStatus
from labeling.models import Comparison, Task
from projects.models import Candidate
from rewards.models import RewardModel
from rewards.services import reward_model_launch
from tests.integration.feedback_support import add_scene_items, task_project
from tests.integration.task_support import tiny_task_checkpoint_bytes
from tests.integration.tuning_support import (
    TINY_DATA,
    add_graded_items,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from tests.integration.workers import wait_for
from tuning.candidates import candidates_generate
from tuning.models import TuningRun
from tuning.services import tuning_run_launch

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def test_rate_learn_tune_and_rate_again(start_worker, project_admin):
    shapes = shapes_project(admins=[project_admin])
    add_graded_items(shapes, n_items=6, ground_truth=True)
    call_command("simulate_annotators", shapes.pk, noise=0.05)
    assert Comparison.objects.filter(task__project=shapes).count() == 18
    worker = start_worker()

    reward_model = reward_model_launch(project=shapes, config={
        "image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
        "eval_every": 3, "threads": 1})
    wait_for(lambda: RewardModel.objects.get(pk=reward_model.pk).status in FINISHED,
             what="the reward model", worker=worker)
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error

    run = tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                            config=tiny_tune_config(), data=TINY_DATA, reward="learned",
                            reward_model=reward_model)
    wait_for(lambda: TuningRun.objects.get(pk=run.pk).status in FINISHED,
             what="the tuning run", worker=worker)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "metric_reward" in run.steps.first().metrics

    tasks_before = Task.objects.filter(project=shapes).count()
    assert candidates_generate(model_version=run.result_version) == 6
    wait_for(lambda: Task.objects.filter(project=shapes).count() > tasks_before,
             what="tasks for the tuned model's candidates", worker=worker)
    assert Candidate.objects.filter(model_version=run.result_version).count() == 6


def test_rate_learn_tune_and_rate_again_on_a_colorization_project(start_worker, project_admin):
    project = task_project("colorization", admins=[project_admin])
    add_scene_items(project, n_items=6)
    call_command("simulate_annotators", project.pk)  # the task's default noise
    assert Comparison.objects.filter(task__project=project).count() == 18
    start = version_with_checkpoint(project, content=tiny_task_checkpoint_bytes("colorization"))
    worker = start_worker()

    reward_model = reward_model_launch(project=project, config={
        "image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
        "eval_every": 3, "threads": 1})
    wait_for(lambda: RewardModel.objects.get(pk=reward_model.pk).status in FINISHED,
             what="the reward model", worker=worker)
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    assert reward_model.config["readout"] == "image"

    run = tuning_run_launch(project=project, start_version=start, config=tiny_tune_config(),
                            data=TINY_DATA, reward="learned", reward_model=reward_model)
    wait_for(lambda: TuningRun.objects.get(pk=run.pk).status in FINISHED,
             what="the tuning run", worker=worker)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "gold_colorization_reward" in run.steps.first().metrics
    assert set(run.result_version.metrics["learned_reward"]) == {"before", "after"}

    tasks_before = Task.objects.filter(project=project).count()
    assert candidates_generate(model_version=run.result_version) == 6
    wait_for(lambda: Task.objects.filter(project=project).count() > tasks_before,
             what="tasks for the tuned model's candidates", worker=worker)
    generated = Candidate.objects.filter(model_version=run.result_version)
    assert generated.count() == 6
    assert all(candidate.output["image_url"].endswith(".png") for candidate in generated)
