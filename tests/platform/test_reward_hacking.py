"""The reward-hacking check on hand-made step series: a learned reward that rises while the
gold metric falls beyond the steps' scatter is hacking; noise, a gold metric that rises too,
or too few steps are not; a learned run's API and page say so plainly."""

import pytest
from django.test import Client

from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    trained_reward_model,
    version_with_checkpoint,
)
from tuning.hacking import MIN_POINTS, reward_hacking, run_reward_hacking, trend
from tuning.models import TuningStep
from tuning.services import tuning_run_launch

RISING = [0.1 * i for i in range(12)]
FALLING = [1.0 - 0.05 * i for i in range(12)]
# Up and down by 0.5 round a level: no trend a third can tell from the scatter.
NOISY = [0.5 + (0.5 if i % 2 else -0.5) + 0.01 * i for i in range(12)]


@pytest.mark.parametrize(("learned", "gold", "expected"), [
    (RISING, FALLING, True),
    (RISING, RISING, False),  # both rise: the reward model is followed
    (FALLING, FALLING, False),
    (RISING, NOISY, False),  # the gold metric's scatter hides any fall
    (NOISY, FALLING, False),
    (RISING[:MIN_POINTS - 1], FALLING[:MIN_POINTS - 1], None),  # too short to tell
])
def test_hacking_is_a_rising_learned_reward_with_a_falling_gold_metric(learned, gold, expected):
    assert reward_hacking(learned, gold) is expected


def test_missing_values_are_left_out_of_a_trend():
    series = [None, 1.0, float("nan"), 1.0, 2.0, 2.0, 3.0, 3.0]
    found = trend(series)
    assert (found.first, found.last) == (1.0, 3.0) and found.rising


@pytest.fixture
def learned_run(project_admin, annotator, sent):
    shapes = shapes_project(admins=[project_admin])
    reward_model = trained_reward_model(shapes, annotator)
    return tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                             config=tiny_tune_config(steps=12), data=TINY_DATA,
                             reward="learned", reward_model=reward_model)


def log(run, learned, gold) -> None:
    TuningStep.objects.bulk_create([
        TuningStep(run=run, step=step, metrics={"reward": r, "gold_detection_reward": g})
        for step, (r, g) in enumerate(zip(learned, gold, strict=True))])


@pytest.mark.django_db
def test_a_learned_run_says_plainly_when_it_hacks_its_reward(learned_run, admin_api,
                                                             project_admin):
    assert run_reward_hacking(learned_run) is None  # no gold metric logged yet
    log(learned_run, RISING, FALLING)
    verdict = run_reward_hacking(learned_run)
    assert verdict["hacking"] is True and verdict["gold"] == "gold_detection_reward"
    assert verdict["summary"].startswith("Reward hacking")
    body = admin_api.get(f"/api/tuning-runs/{learned_run.pk}/").json()
    assert body["reward_hacking"] == verdict
    client = Client()
    client.force_login(project_admin)
    page = client.get(f"/tuning/runs/{learned_run.pk}/")
    assert b"Reward hacking: the learned reward went from" in page.content


@pytest.mark.django_db
def test_a_run_that_follows_the_metric_is_not_hacking(learned_run):
    log(learned_run, RISING, RISING)
    verdict = run_reward_hacking(learned_run)
    assert verdict["hacking"] is False and verdict["summary"].startswith("No sign")
