"""The tuning task's body run in-process on a tiny real model: a run trains to a new
ModelVersion, is idempotent, resumes from its checkpoint after its worker died without
counting a step twice, stops when cancelled, and records its error when it fails; its result
records the held-out selection, which its page and API show."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.test import Client

from common.jobs import JobStatus, beating
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    trained_reward_model,
    version_with_checkpoint,
)
from trainer.train.checkpoint import load_checkpoint
from training import tuning_run as execute
from training.checkpoints import load_version
from training.tuning_run import execute_run
from tuning.models import TuningRun, TuningStep
from tuning.services import (
    reap_stale_runs,
    run_checkpoint_name,
    tuning_run_cancel,
    tuning_run_launch,
    tuning_run_retry,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]


class WorkerKilled(BaseException):
    """Stands for kill -9: nothing in the worker gets to handle it."""



@pytest.fixture
def shapes(project_admin):
    return shapes_project(admins=[project_admin])


def launch(project, **config) -> TuningRun:
    return tuning_run_launch(
        project=project, start_version=version_with_checkpoint(project),
        config=tiny_tune_config(**config), data=TINY_DATA, save_every=2,
    )


def test_a_run_trains_to_a_new_model_version(shapes):
    run = launch(shapes)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.step, run.total_steps, run.attempts) == (4, 4, 1)
    version = run.result_version
    assert version.parent == run.start_version
    assert set(version.metrics["eval"]) == {"class", "confidence", "every_class"}
    assert len(run.samples) == 4
    for sample in run.samples:
        assert {"before", "after"} <= set(sample) and "objects" in sample["after"]
        assert (Path(settings.MEDIA_ROOT) / sample["image_url"].split("/media/")[1]).is_file()
    tuned = load_checkpoint(version.checkpoint.path)
    assert (tuned.stage, tuned.step) == ("tune", 4)
    steps = TuningStep.objects.filter(run=run)
    assert [s.step for s in steps] == [0, 1, 2, 3]
    assert all({"reward", "grad_norm", "lr"} <= set(s.metrics) for s in steps)
    # A redelivered message for a finished run does nothing.
    execute_run(run.pk, worker="w2")
    run.refresh_from_db()
    assert (run.attempts, run.worker, shapes.model_versions.count()) == (1, "w1", 2)


def test_a_run_resumes_from_its_checkpoint_without_counting_a_step_twice(
    shapes, monkeypatch, sent, django_capture_on_commit_callbacks
):
    run = launch(shapes, steps=6)
    record = execute.tuning_step_record

    def dies_at_step_4(**kwargs):
        if kwargs["step"] == 4:
            raise WorkerKilled
        record(**kwargs)

    monkeypatch.setattr(execute, "tuning_step_record", dies_at_step_4)
    with pytest.raises(WorkerKilled):
        execute_run(run.pk, worker="dead")
    monkeypatch.setattr(execute, "tuning_step_record", record)
    run.refresh_from_db()
    assert (run.status, run.worker, run.step) == (JobStatus.RUNNING, "dead", 4)
    # Checkpoints every 2 steps: the one on disk holds step 4's start (steps 0-3 done).
    assert load_checkpoint(Path(settings.MEDIA_ROOT) / run_checkpoint_name(run.pk)).step == 4
    before = {s.step: s.recorded_at for s in TuningStep.objects.filter(run=run)}

    with django_capture_on_commit_callbacks(execute=True):
        assert reap_stale_runs(stale_after=timedelta(0)) == [run.pk]
    assert sent == [("tuning.run_execute", [run.pk])]
    execute_run(run.pk, worker="alive")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.attempts, run.worker) == (2, "alive")
    after = {s.step: s.recorded_at for s in TuningStep.objects.filter(run=run)}
    assert sorted(after) == [0, 1, 2, 3, 4, 5]
    # Resumed, not restarted: the steps before the checkpoint were not trained again.
    assert all(after[step] == before[step] for step in range(4))


def test_a_live_worker_keeps_its_run(shapes):
    run = launch(shapes)
    TuningRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, worker="busy",
                                                heartbeat_at=run.created_at)
    assert reap_stale_runs(stale_after=timedelta(hours=1)) == []
    execute_run(run.pk, worker="duplicate delivery")
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == (JobStatus.RUNNING, "busy", 0)


def test_a_launch_requeues_a_dead_worker_s_run(shapes, sent, django_capture_on_commit_callbacks):
    dead = launch(shapes)
    TuningRun.objects.filter(pk=dead.pk).update(
        status=JobStatus.RUNNING, worker="gone", heartbeat_at=dead.created_at - timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        other = launch(shapes)
    dead.refresh_from_db()
    assert (dead.status, dead.worker) == (JobStatus.QUEUED, "")
    assert sorted(args[0] for _, args in sent) == sorted([dead.pk, other.pk])


def test_a_cancelled_run_stops_and_can_be_retried(shapes, monkeypatch):
    run = launch(shapes, steps=6)
    record = execute.tuning_step_record

    def cancel_after_step_1(**kwargs):
        record(**kwargs)
        if kwargs["step"] == 1:
            tuning_run_cancel(run=run)

    monkeypatch.setattr(execute, "tuning_step_record", cancel_after_step_1)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert run.step == 2 and run.result_version is None
    monkeypatch.setattr(execute, "tuning_step_record", record)
    tuning_run_retry(run=run)
    execute_run(run.pk, worker="w2")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (JobStatus.SUCCEEDED, 2)
    assert [s.step for s in TuningStep.objects.filter(run=run)] == [0, 1, 2, 3, 4, 5]


def test_a_run_against_a_learned_reward_logs_the_metric_beside_it(shapes, annotator):
    reward_model = trained_reward_model(shapes, annotator)
    run = tuning_run_launch(
        project=shapes, start_version=version_with_checkpoint(shapes),
        config=tiny_tune_config(kl_coef=0.1), data=TINY_DATA, reward="learned",
        reward_model=reward_model,
    )
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    # The reward model's score drives the update; the metric the model cannot see is logged.
    metrics = TuningStep.objects.filter(run=run).first().metrics
    assert {"reward", "metric_reward"} <= set(metrics)
    assert load_checkpoint(run.result_version.checkpoint.path).step == 4


def test_a_failed_run_records_its_error(shapes):
    run = launch(shapes)
    Path(run.start_version.checkpoint.path).unlink()
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "checkpoint not found" in run.error
    assert run.finished_at is not None and run.result_version is None


def test_the_heartbeat_beats_while_the_job_runs_and_stops_with_it():
    beats: list[int] = []
    three = threading.Event()

    def beat() -> bool:
        beats.append(1)
        if len(beats) == 3:
            three.set()
        return True

    with beating(beat, 0.01, name="test-heartbeat"):
        assert three.wait(timeout=30)
    after = len(beats)
    time.sleep(0.05)
    assert len(beats) == after  # the thread ended with the block


def test_the_heartbeat_stops_when_the_job_is_no_longer_this_worker_s():
    calls: list[int] = []
    stopped = threading.Event()

    def beat() -> bool:
        calls.append(1)
        stopped.set()
        return False  # the run was given to another worker

    with beating(beat, 0.01, name="test-heartbeat"):
        assert stopped.wait(timeout=30)
        time.sleep(0.05)
    assert calls == [1]


def test_a_run_records_its_held_out_selection_and_says_when_it_kept_the_start(
    shapes, admin_api, project_admin
):
    """The tiny model finds nothing on the 4 held-out scenes at any step (mAP 0 throughout),
    so no step beats the start: the tuned version is the starting model, and says so."""
    run = launch(shapes, select_every=2)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    version = run.result_version
    selection = version.metrics["selection"]
    assert (selection["metric"], selection["source"], selection["images"]) == \
        ("map", "ground_truth", 4)
    scores = dict(selection["history"])
    assert sorted(scores) == [0, 2, 4]
    assert (selection["start_metric"], selection["best_step"], selection["improved"]) == \
        (scores[0], 0, False)
    assert selection["best_metric"] >= selection["start_metric"]
    tuned, start = load_checkpoint(version.checkpoint.path), load_version(run.start_version)
    assert all(torch.equal(tuned.state[k], start.state[k]) for k in start.state)
    # The held-out score of a step is on its row; the one after the last step is in the result.
    rows = {s.step: s.metrics for s in TuningStep.objects.filter(run=run)}
    assert sorted(rows) == [0, 1, 2, 3]
    assert [rows[step].get("heldout_map") for step in range(4)] == [scores[0], None, scores[2],
                                                                    None]
    sentence = ("The tuned version is the starting model: no step beat it on the held-out "
                "images (mAP 0 at the start; 4 held-out images, against their ground truth).")
    detail = admin_api.get(f"/api/tuning-runs/{run.pk}/").json()["selection"]
    assert (detail["enabled"], detail["best_step"], detail["summary"]) == (True, 0, sentence)
    page = Client()
    page.force_login(project_admin)
    assert sentence in page.get(f"/tuning/runs/{run.pk}/").content.decode()


def test_a_run_without_selection_says_its_version_is_the_last_step(shapes, admin_api):
    run = launch(shapes, select_every=0)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.result_version.metrics["selection"] is None
    detail = admin_api.get(f"/api/tuning-runs/{run.pk}/").json()["selection"]
    assert detail == {"enabled": False, "summary": "Held-out selection was off (select_every=0): "
                                                   "the tuned version is the run's last step."}


def test_a_run_its_time_budget_ends_early_records_the_steps_it_took(shapes):
    run = launch(shapes, max_seconds=1e-9)  # spent before the first step
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert (run.step, run.total_steps) == (0, 4)
