"""Tuning runs through the API: launch, validation (nothing queued on refusal), cancel, retry,
live metrics, and who may do what (project admins only)."""

from pathlib import Path

import pytest
import torch
from django.core.files.base import ContentFile
from rest_framework import status

from rewards.models import RewardModel
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_checkpoint_bytes,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.checkpoints import describe_version_id
from tuning.models import TuningRun, TuningStep
from tuning.services import RUN_TASK

pytestmark = pytest.mark.django_db



@pytest.fixture
def shapes(project_admin, annotator):
    return shapes_project(admins=[project_admin], annotators=[annotator])


@pytest.fixture
def mle(shapes):
    return version_with_checkpoint(shapes)


def launch(client, project, body: dict, capture):
    with capture(execute=True):
        return client.post(f"/api/projects/{project.pk}/tuning-runs/", body, format="json")


def test_launch_queues_the_run_after_commit(
    admin_api, shapes, mle, sent, django_capture_on_commit_callbacks
):
    response = launch(admin_api, shapes, {"start_version": mle.pk, "config": tiny_tune_config(),
                                          "data": TINY_DATA}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["total_steps"] == 4
    assert body["start_version"]["name"] == "mle"
    assert sent == [(RUN_TASK, [body["id"]])]


@pytest.mark.parametrize(("config", "data", "field"), [
    ({"lr": -0.1}, {}, "config.lr"),
    ({"steps": 0}, {}, "config.steps"),
    ({"samples": 1}, {}, "config.samples"),  # the leave-one-out baseline needs two
    ({"baseline": "best"}, {}, "config.baseline"),
    ({"credit": "per_token"}, {}, "config.credit"),
    ({"batch_size": "16"}, {}, "config.batch_size"),
    ({"processes": 0}, {}, "config.processes"),
    ({"batch_size": 3, "processes": 2}, {}, "config.batch_size"),  # shared equally
    ({"temperature": True}, {}, "config.temperature"),
    ({"learning_rate": 0.1}, {}, "config.learning_rate"),
    ({}, {"eval_split": "train"}, "data.eval_split"),
    ({}, {"min_objects": 5, "max_objects": 2}, "data.min_objects"),
    ({}, {"data_dir": "../../etc"}, "data.data_dir"),
    # Beyond the database's and the machine's range: refused, not a 500 or a dead worker.
    ({"steps": 10**12}, {}, "config.steps"),
    ({"threads": 10**9}, {}, "config.threads"),
    ({"seed": 2**63}, {}, "config.seed"),
    # Another project's exported images are not this run's to read: data is named by source.
    ({}, {"data_dir": "tuning/runs/6/images"}, "data.data_dir"),
])
def test_impossible_config_is_refused_with_its_field_and_nothing_queued(
    admin_api, shapes, mle, sent, django_capture_on_commit_callbacks, config, data, field
):
    response = launch(admin_api, shapes, {"start_version": mle.pk, "config": config,
                                          "data": data}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"], response.json()
    assert field in response.json()["detail"]
    assert not TuningRun.objects.exists()
    assert sent == []


def test_checkpoint_of_another_task_is_refused(
    admin_api, shapes, sent, django_capture_on_commit_callbacks, tmp_path
):
    path = tmp_path / "rm.pt"
    torch.save({"format": "tunelab-reward-model/1", "state": {}}, path)
    foreign = version_with_checkpoint(shapes, "reward model file", path.read_bytes())
    no_file = shapes.model_versions.create(name="imported outputs")
    for version in (foreign, no_file):
        response = launch(admin_api, shapes, {"start_version": version.pk},
                          django_capture_on_commit_callbacks)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "start_version" in response.json()["errors"]
        assert version.name in response.json()["detail"]
    assert not TuningRun.objects.exists() and sent == []


def test_project_of_another_task_and_foreign_versions_are_refused(
    admin_api, project_admin, shapes, mle, make_project, sent, django_capture_on_commit_callbacks
):
    captions = make_project(task="captioning", admins=[project_admin])
    caption_model = version_with_checkpoint(captions)
    for project, version in ((captions, caption_model), (captions, mle)):
        response = launch(admin_api, project, {"start_version": version.pk},
                          django_capture_on_commit_callbacks)
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "start_version" in response.json()["errors"]
    assert not TuningRun.objects.exists() and sent == []


def test_learned_reward_needs_a_trained_reward_model_of_the_project(
    admin_api, shapes, mle, sent, django_capture_on_commit_callbacks
):
    response = launch(admin_api, shapes, {"start_version": mle.pk, "reward": "learned"},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "reward_model" in response.json()["errors"]
    response = launch(admin_api, shapes, {"start_version": mle.pk, "reward_model": 12345},
                      django_capture_on_commit_callbacks)
    assert "reward_model" in response.json()["errors"]
    untrained = RewardModel.objects.create(project=shapes, name="untrained")
    response = launch(admin_api, shapes, {"start_version": mle.pk, "reward": "learned",
                                          "reward_model": untrained.pk},
                      django_capture_on_commit_callbacks)
    assert "not trained" in response.json()["errors"]["reward_model"][0]
    assert not TuningRun.objects.exists() and sent == []


def _run(admin_api, shapes, mle, capture) -> dict:
    return launch(admin_api, shapes, {"start_version": mle.pk, "config": tiny_tune_config()},
                  capture).json()


def test_cancel_then_retry(admin_api, shapes, mle, sent, django_capture_on_commit_callbacks):
    run = _run(admin_api, shapes, mle, django_capture_on_commit_callbacks)
    url = f"/api/tuning-runs/{run['id']}/"
    cancelled = admin_api.post(url + "cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert admin_api.post(url + "cancel/").status_code == status.HTTP_409_CONFLICT
    with django_capture_on_commit_callbacks(execute=True):
        retried = admin_api.post(url + "retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert sent == [(RUN_TASK, [run["id"]])] * 2
    assert admin_api.post(url + "retry/").status_code == status.HTTP_409_CONFLICT


def test_metrics_after_a_step(admin_api, shapes, mle, sent, django_capture_on_commit_callbacks):
    run = _run(admin_api, shapes, mle, django_capture_on_commit_callbacks)
    for step in range(3):
        TuningStep.objects.create(run_id=run["id"], step=step, metrics={"reward": step / 10})
    url = f"/api/tuning-runs/{run['id']}/metrics/"
    assert [s["step"] for s in admin_api.get(url).json()["steps"]] == [0, 1, 2]
    later = admin_api.get(url + "?after=1").json()
    assert later["steps"] == [{"step": 2, "metrics": {"reward": 0.2}}]
    assert later["status"] == "queued" and later["total_steps"] == 4
    assert admin_api.get(url + "?after=x").status_code == status.HTTP_400_BAD_REQUEST


@pytest.mark.parametrize(("who", "expected"), [
    ("anonymous", status.HTTP_401_UNAUTHORIZED),
    ("annotator", status.HTTP_403_FORBIDDEN),
    ("outsider", status.HTTP_404_NOT_FOUND),
])
def test_only_project_admins_launch_cancel_or_see_runs(
    who, expected, api_client_for, annotator, outsider, admin_api, shapes, mle, sent,
    django_capture_on_commit_callbacks,
):
    run = _run(admin_api, shapes, mle, django_capture_on_commit_callbacks)
    sent.clear()
    client = api_client_for({"anonymous": None, "annotator": annotator,
                             "outsider": outsider}[who])
    base = f"/api/tuning-runs/{run['id']}/"
    requests = [
        ("get", f"/api/projects/{shapes.pk}/tuning-runs/"),
        ("post", f"/api/projects/{shapes.pk}/tuning-runs/"),
        ("get", base), ("get", base + "metrics/"), ("post", base + "cancel/"),
        ("post", base + "retry/"),
    ]
    for method, url in requests:
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(client, method)(url, {"start_version": mle.pk}, format="json")
        assert response.status_code == expected, (method, url, response.content)
    assert TuningRun.objects.get().status == "queued"
    assert TuningRun.objects.count() == 1 and sent == []
    assert admin_api.get(base).status_code == 200
    assert admin_api.get("/api/tuning-runs/999999/").status_code == status.HTTP_404_NOT_FOUND


@pytest.mark.parametrize("save_every", [0, 2**40])
def test_save_every_out_of_range_is_refused(
    admin_api, shapes, mle, sent, django_capture_on_commit_callbacks, save_every
):
    response = launch(admin_api, shapes, {"start_version": mle.pk, "save_every": save_every},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "save_every" in response.json()["errors"]
    assert not TuningRun.objects.exists() and sent == []


def test_a_launch_reads_no_checkpoint_file(
    admin_api, shapes, mle, sent, django_capture_on_commit_callbacks
):
    """The checks read the version's columns: the file may even be gone from this machine."""
    Path(mle.checkpoint.path).unlink()
    response = launch(admin_api, shapes, {"start_version": mle.pk, "config": tiny_tune_config()},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()


def test_a_checkpoint_no_worker_has_read_yet_is_refused_until_one_has(
    admin_api, shapes, sent, django_capture_on_commit_callbacks
):
    uploaded = shapes.model_versions.create(name="uploaded")
    uploaded.checkpoint.save("up.pt", ContentFile(tiny_checkpoint_bytes()))
    response = launch(admin_api, shapes, {"start_version": uploaded.pk},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "not been read by a worker yet" in response.json()["errors"]["start_version"][0]
    describe_version_id(uploaded.pk)
    response = launch(admin_api, shapes, {"start_version": uploaded.pk},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
