"""A learned reward tunes a colorization model in-process: a reward model trained on the
project's answers scores the samples, the run logs the gold metric beside it at every step,
and the tuned version records the learned reward and the gold figure of both models."""

import math

import pytest

from common.jobs import JobStatus
from rewards.services import reward_model_launch
from tests.integration.feedback_support import add_scene_items, answer_by_quality, task_project
from tests.integration.task_support import tiny_task_checkpoint_bytes
from tests.integration.tuning_support import TINY_DATA, tiny_tune_config, version_with_checkpoint
from training.reward_model import train_project_reward_model
from training.tuning_run import execute_run
from tuning.models import TuningStep
from tuning.services import tuning_run_launch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

TINY_RM = {"image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
           "eval_every": 3, "threads": 1}


def test_a_learned_reward_tunes_a_colorization_model(project_admin, annotator):
    project = task_project("colorization", admins=[project_admin], annotators=[annotator])
    answer_by_quality(project, annotator, add_scene_items(project, n_items=4))
    reward_model = reward_model_launch(project=project, config=TINY_RM)
    train_project_reward_model(reward_model.pk, worker="w0")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    start = version_with_checkpoint(project, content=tiny_task_checkpoint_bytes("colorization"))
    run = tuning_run_launch(project=project, start_version=start, config=tiny_tune_config(),
                            data=TINY_DATA, reward="learned", reward_model=reward_model)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    steps = TuningStep.objects.filter(run=run).order_by("step")
    assert [s.step for s in steps] == [0, 1, 2, 3]
    for step in steps:  # the learned reward, and the metric it never sees beside it
        assert {"reward", "metric_reward", "gold_colorization_reward"} <= set(step.metrics)
    metrics = run.result_version.metrics
    learned, gold = metrics["learned_reward"], metrics["gold"]
    assert all(math.isfinite(learned[side]) for side in ("before", "after"))
    assert gold["name"] == "colorization_reward" == metrics["heldout"]["name"]
    assert gold["after"] == metrics["heldout"]["value"] and math.isfinite(gold["before"])
    assert len(run.samples) == 4 and "image_url" in run.samples[0]["after"]
