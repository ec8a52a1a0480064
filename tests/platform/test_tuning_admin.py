"""Launching from the Django admin goes through the same checks as the API: a bad config or a
project without answers is refused on the form with the reason, nothing queued; a good one is
queued. Cancel and retry are admin actions."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rewards.models import RewardModel
from tests.integration.tuning_support import (
    shapes_project,
    tiny_checkpoint_bytes,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.checkpoints import describe_version_id
from tuning.models import TuningRun

pytestmark = pytest.mark.django_db



@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user("staff", is_staff=True, is_superuser=True))
    return client


def launch_form(project, version, config: dict) -> dict:
    return {"project": project.pk, "start_version": version.pk, "reward": "metric",
            "config": json.dumps(config), "data_config": "{}", "save_every": 5,
            "steps-TOTAL_FORMS": 0, "steps-INITIAL_FORMS": 0}


def test_admin_launch_refuses_a_bad_config_then_launches(
    staff, sent, django_capture_on_commit_callbacks
):
    shapes = shapes_project()
    version = version_with_checkpoint(shapes)
    url = "/admin/tuning/tuningrun/add/"
    assert staff.get(url).status_code == 200
    refused = staff.post(url, launch_form(shapes, version, {"lr": 5.0}))
    assert refused.status_code == 200 and "config.lr" in refused.content.decode()
    assert not TuningRun.objects.exists() and sent == []
    with django_capture_on_commit_callbacks(execute=True):
        launched = staff.post(url, launch_form(shapes, version, tiny_tune_config()))
    assert launched.status_code == 302
    run = TuningRun.objects.get()
    assert (run.status, run.total_steps, run.save_every) == ("queued", 4, 5)
    assert sent == [("tuning.run_execute", [run.pk])]

    changelist = "/admin/tuning/tuningrun/"
    staff.post(changelist, {"action": "cancel_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(changelist, {"action": "retry_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "queued" and len(sent) == 2


def test_admin_refuses_a_reward_model_without_answers(staff, sent):
    shapes = shapes_project()
    response = staff.post("/admin/rewards/rewardmodel/add/",
                          {"project": shapes.pk, "name": "rm", "config": "{}"})
    assert response.status_code == 200
    assert "no ratings or comparisons" in response.content.decode()
    assert not RewardModel.objects.exists() and sent == []


def test_a_checkpoint_uploaded_in_the_admin_is_read_by_a_worker_not_by_the_request(
    staff, sent, django_capture_on_commit_callbacks
):
    shapes = shapes_project()
    version = shapes.model_versions.create(name="uploaded")
    upload = SimpleUploadedFile("mle.pt", tiny_checkpoint_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/projects/modelversion/{version.pk}/change/", {
            "project": shapes.pk, "name": "uploaded", "description": "", "parent": "",
            "checkpoint": upload, "metrics": "{}"})
    assert response.status_code == 302, response.content.decode()[:2000]
    version.refresh_from_db()
    assert version.checkpoint_state == "pending" and version.task == ""
    assert sent == [("projects.describe_checkpoint", [version.pk])]
    describe_version_id(version.pk)  # what the worker's task runs
    version.refresh_from_db()
    assert (version.checkpoint_state, version.task) == ("ready", "detection")
    assert len(version.class_names) == 8 and version.parameters > 0
