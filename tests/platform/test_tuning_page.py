"""The run page: project admins see it (with the data its script needs, a link to the reward
model a learned-reward run is tuned against, where its samples come from), annotators get 403,
other users 404, anonymous users the login page."""

import json
import re

import pytest
from django.test import Client

from config.celery import app as celery_app
from tests.integration.tuning_support import (
    shapes_project,
    tiny_tune_config,
    trained_reward_model,
    version_with_checkpoint,
)
from tuning.models import RewardKind
from tuning.services import tuning_run_launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project_admin, annotator, monkeypatch):
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: None)
    shapes = shapes_project(admins=[project_admin], annotators=[annotator])
    return tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                             config=tiny_tune_config())


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_admin_sees_the_run_page(run, project_admin):
    response = client_for(project_admin).get(f"/tuning/runs/{run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Tuning run {run.pk}: mle" in html
    assert "tuning/run.js" in html and 'id="cancel-run"' in html
    assert "tuning/run.css" in html and "common/curves.css" in html
    assert "Sample outputs on held-out images appear" in html
    # A metric run names no reward model (the nav bar links the project's reward-model list).
    assert not re.search(r'href="/rewards/\d+/"', html)
    assert f'href="/projects/{run.project_id}/runs/"' in html  # the project's nav bar
    data = json.loads(html.split('id="run-data" type="application/json">')[1].split("</script>")[0])
    assert data["id"] == run.pk and len(data["categories"]) == 8
    assert "csrftoken" in response.cookies  # the script's cancel and retry need it


def test_a_learned_reward_run_on_the_projects_images(project_admin, annotator, monkeypatch):
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: None)
    shapes = shapes_project(admins=[project_admin])
    reward_model = trained_reward_model(shapes, annotator)
    run = tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                            config=tiny_tune_config(), data={"source": "project"},
                            reward=RewardKind.LEARNED, reward_model=reward_model)
    html = client_for(project_admin).get(f"/tuning/runs/{run.pk}/").content.decode()
    assert f'(<a href="/rewards/{reward_model.pk}/">{reward_model.name}</a>)' in html
    assert "Sample outputs on the project's images appear" in html
    assert "held-out images" not in html


def test_others_may_not_see_it(run, annotator, outsider):
    url = f"/tuning/runs/{run.pk}/"
    assert client_for(annotator).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    anonymous = client_for(None).get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
