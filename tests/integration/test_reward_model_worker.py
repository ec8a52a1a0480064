"""A real Celery worker on Redis and PostgreSQL trains a reward model launched through the API
from a project's answers, and the held-out accuracy and the file come back."""

import pytest
from django.contrib.auth import get_user_model

from rewards.models import JobStatus, RewardModel
from tests.integration.tuning_support import add_feedback, shapes_project
from tests.integration.workers import wait_for
from trainer.reward_model.model import load_reward_model

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_trains_a_launched_reward_model(start_worker, project_admin, admin_api):
    annotator = get_user_model().objects.create_user(username="annotator", password="x" * 12)
    shapes = shapes_project(admins=[project_admin], annotators=[annotator])
    add_feedback(shapes, annotator)
    worker = start_worker()
    response = admin_api.post(
        f"/api/projects/{shapes.pk}/reward-models/",
        {"config": {"image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
                    "eval_every": 3, "threads": 1}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    wait_for(lambda: RewardModel.objects.get(pk=pk).status in (JobStatus.SUCCEEDED,
                                                               JobStatus.FAILED),
             what="the reward model to finish", worker=worker)
    detail = admin_api.get(f"/api/reward-models/{pk}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    assert 0.0 <= detail["heldout_accuracy"] <= 1.0
    model, _ = load_reward_model(RewardModel.objects.get(pk=pk).file.path)
    assert model.config.num_classes == len(shapes.categories)
