"""The reward-model pages: a project's list with its launch form and one reward model's figures.
Project admins see them (linked from the project picker), annotators get 403, other users 404,
anonymous users the login page; the launch form's request (session, CSRF cookie from the page,
JSON) gets 201 or a 400 whose errors name the form's fields. A trained model keeps the history
of its held-out evaluations, which its page draws."""

import json
import math
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework import status

from common.jobs import JobStatus, job_claim, job_fail
from rewards.models import RewardModel
from rewards.selectors import wilson_interval
from rewards.services import reward_model_launch
from tests.integration.tuning_support import (
    add_feedback,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.reward_model import json_safe, train_project_reward_model
from tuning.models import RewardKind
from tuning.services import tuning_run_launch

pytestmark = pytest.mark.django_db

TINY_RM = {"image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
           "eval_every": 2, "threads": 1}


@pytest.fixture
def shapes(project_admin, annotator, sent):
    project = shapes_project(admins=[project_admin], annotators=[annotator])
    add_feedback(project, annotator, n_items=4)
    return project


@pytest.fixture
def trained(shapes) -> RewardModel:
    reward_model = reward_model_launch(project=shapes, name="prefs v1", config=TINY_RM)
    train_project_reward_model(reward_model.pk, worker="w1")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    return reward_model


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_data(html: str, script_id: str) -> dict:
    return json.loads(html.split(f'id="{script_id}" type="application/json">')[1]
                      .split("</script>")[0])


def test_admin_sees_the_figures_and_the_runs_tuned_against_it(trained, shapes, project_admin):
    run = tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                            config=tiny_tune_config(), reward=RewardKind.LEARNED,
                            reward_model=trained)
    response = client_for(project_admin).get(f"/rewards/{trained.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>prefs v1</h1>" in html and "shapes detection" in html
    assert 'data-status="succeeded"' in html and "rewards/reward_model.js" in html
    assert page_data(html, "reward-model-data") == {"id": trained.pk,
                                                    "history": trained.metrics["history"]}
    snapshot = trained.snapshot
    assert f"{snapshot['ratings']} ratings, {snapshot['comparisons']} comparisons" in html
    assert f'id="rm-accuracy">{trained.heldout_accuracy:.3f}<' in html
    # The held-out rows by kind: real feedback only (no gold order), preferences only.
    metrics = trained.metrics
    row = html.split('id="rm-by-kind"')[1].split("</table>")[0]
    assert (f"<td>preferences</td><td>{metrics['train_pairs']}</td>"
            f"<td>{metrics['heldout_pairs']}</td><td>{metrics['heldout_pairs_pairs']}</td>") in row
    assert "rankings" not in row and "Gold accuracy (simulated" not in html
    # The config as JSON, as the launch form's settings table writes defaults.
    assert "<dt>steps</dt><dd>3</dd>" in html and "<dt>num_classes</dt><dd>8</dd>" in html
    assert "<dt>augment</dt><dd>true</dd>" in html and "True" not in html
    assert f'<a href="/tuning/runs/{run.pk}/">Tuning run {run.pk}</a>' in html


def test_the_held_out_evaluations_are_stored_and_drawn_on_the_page(trained, project_admin):
    """Evaluated every 2 steps of 3, and after the last: steps 2 and 3, JSON-safe, the last one
    the held-out accuracy recorded on the row."""
    history = trained.metrics["history"]
    assert [point["step"] for point in history] == [2, 3]
    assert all(math.isfinite(point["loss"]) for point in history)
    assert history[-1]["pair_acc"] == trained.heldout_accuracy
    assert all("gold_acc" not in point for point in history)  # real feedback: no gold order
    json.dumps(trained.metrics, allow_nan=False)

    html = client_for(project_admin).get(f"/rewards/{trained.pk}/").content.decode()
    assert page_data(html, "reward-model-data")["history"] == history
    assert 'id="rm-curves"' in html and "common/curves.css" in html
    assert "tuning/run.css" not in html  # its layout classes come from tunelab.css


def test_numbers_json_cannot_hold_are_stored_as_null_at_any_depth():
    stored = json_safe({"pair_acc": math.nan, "history": [{"step": 1, "loss": math.inf}],
                        "sizes": (1, -math.inf), "name": "rm", "steps": 3})
    assert stored == {"pair_acc": None, "history": [{"step": 1, "loss": None}],
                      "sizes": [1, None], "name": "rm", "steps": 3}


def test_a_queued_then_failed_training_shows_its_status_and_error(shapes, project_admin):
    reward_model = reward_model_launch(project=shapes, config=TINY_RM)
    url = f"/rewards/{reward_model.pk}/"
    html = client_for(project_admin).get(url).content.decode()
    assert 'data-status="queued"' in html and 'id="rm-accuracy">-<' in html
    assert page_data(html, "reward-model-data")["history"] == []
    assert "appear here when the training has succeeded" in html
    assert "No tuning run has used this reward model yet." in html
    assert '<pre id="rm-error" class="run-error" hidden>' in html

    job_claim(RewardModel, pk=reward_model.pk, worker="w1", stale_after=timedelta(minutes=5))
    job_fail(RewardModel, pk=reward_model.pk, worker="w1",
             error="ValueError: pairs: all feedback is on one image")
    html = client_for(project_admin).get(url).content.decode()
    assert 'data-status="failed"' in html
    assert ('<pre id="rm-error" class="run-error">ValueError: pairs: all feedback is on one '
            "image</pre>") in html


def test_the_project_list_links_its_reward_models_and_lists_the_settings(
    trained, shapes, project_admin
):
    queued = reward_model_launch(project=shapes, config=TINY_RM)
    response = client_for(project_admin).get(f"/rewards/projects/{shapes.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    table = html.split('id="reward-models"')[1].split("</table>")[0]
    assert f'<a href="/rewards/{trained.pk}/">prefs v1</a>' in table
    assert f'<a href="/rewards/{queued.pk}/">{queued.name}</a>' in table
    assert table.index("prefs v1") < table.index(queued.name)
    assert f"{trained.heldout_accuracy:.3f}" in table and "<td>queued</td>" in table
    assert page_data(html, "reward-models-data") == {"project": shapes.pk}
    assert 'id="launch-form"' in html and "rewards/launch.js" in html
    # The settings an admin may set, with their defaults; the project's are not among them.
    assert "<td><code>steps</code></td><td><code>600</code></td>" in html
    assert "<td><code>augment</code></td><td><code>true</code></td>" in html
    assert "<code>num_classes</code>" not in html and "<code>task</code>" not in html
    assert "csrftoken" in response.cookies  # the launch form's POST needs it


def test_the_project_picker_links_admins_to_their_reward_models(shapes, project_admin,
                                                                annotator):
    link = f'<a class="btn" href="/rewards/projects/{shapes.pk}/">Reward models</a>'
    assert link in client_for(project_admin).get("/").content.decode()
    html = client_for(annotator).get("/").content.decode()
    assert "shapes detection" in html and "Reward models" not in html


def test_a_project_without_reward_models_says_so(make_project, project_admin):
    empty = make_project(admins=[project_admin])
    html = client_for(project_admin).get(f"/rewards/projects/{empty.pk}/").content.decode()
    assert "No reward model yet" in html and 'id="reward-models"' not in html


def test_the_launch_forms_request_gets_field_errors_then_launches(
    api_client_for, shapes, project_admin, sent, django_capture_on_commit_callbacks
):
    """What launch.js sends: the session's cookie, the page's CSRF token, a JSON body. Its 400s
    name `name`, `config.<setting>` or `config` (the form's boxes) and a 201 gives the id."""
    client = api_client_for(project_admin, session=True)  # CSRF checks enforced
    page = client.get(f"/rewards/projects/{shapes.pk}/")
    assert 'data-field="name"' in page.content.decode()
    headers = {"HTTP_X_CSRFTOKEN": page.cookies["csrftoken"].value}
    url = f"/api/projects/{shapes.pk}/reward-models/"

    def post(body: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, body, format="json", **headers)

    for body, field in [({"name": "rm", "config": {"lr": "fast"}}, "config.lr"),
                        ({"name": "rm", "config": {"width": 12}}, "config.width"),
                        ({"name": "rm", "config": [1]}, "config"),
                        ({"name": "x" * 201, "config": {}}, "name")]:
        response = post(body)
        assert response.status_code == status.HTTP_400_BAD_REQUEST, body
        assert list(response.json()["errors"]) == [field], response.json()
    assert not RewardModel.objects.exists() and sent == []

    mle = version_with_checkpoint(shapes)
    page = client.get(f"/rewards/projects/{shapes.pk}/").content.decode()
    # The start choices: versions with a checkpoint, not the imported outputs' versions.
    choices = page.split('id="launch-policy"')[1].split("</select>")[0]
    assert f'<option value="{mle.pk}">mle</option>' in choices and "graded-0" not in choices
    response = post({"name": "rm", "config": TINY_RM, "policy": mle.pk})
    assert list(response.json()["errors"]) == ["policy"], response.json()

    response = post({"name": "rm", "config": TINY_RM, "policy": None})
    assert response.status_code == status.HTTP_201_CREATED
    assert RewardModel.objects.get().pk == response.json()["id"] and len(sent) == 1
    response = post({"name": "rm", "config": TINY_RM})
    assert response.json()["errors"] == {"name": ["A reward model named 'rm' exists."]}


def test_others_may_not_see_them(shapes, annotator, outsider):
    reward_model = reward_model_launch(project=shapes, config=TINY_RM)
    for url in (f"/rewards/{reward_model.pk}/", f"/rewards/projects/{shapes.pk}/"):
        assert client_for(annotator).get(url).status_code == 403
        assert client_for(outsider).get(url).status_code == 404
        anonymous = client_for(None).get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert client_for(annotator).get("/rewards/999999/").status_code == 404


def test_the_accuracy_has_its_interval_and_a_warning_below_a_hundred_held_out_pairs(
    trained, shapes, project_admin
):
    pairs = trained.metrics["heldout_pairs_pairs"]
    assert 0 < pairs < 100  # a tiny project
    low, high = wilson_interval(trained.heldout_accuracy, pairs)
    html = client_for(project_admin).get(f"/rewards/{trained.pk}/").content.decode()
    assert (f'id="rm-interval" class="muted">(95% interval {low:.3f} to {high:.3f}, on {pairs} '
            "held-out pairs)") in html
    assert f"Only {pairs} held-out pairs (fewer than 100)" in html
    # Enough pairs: the interval, no warning.
    many = RewardModel.objects.create(
        project=shapes, name="many pairs", status=JobStatus.SUCCEEDED, heldout_accuracy=0.8,
        metrics={"train_pairs": 400, "heldout_pairs": 50, "heldout_pairs_pairs": 100},
        config=trained.config)
    html = client_for(project_admin).get(f"/rewards/{many.pk}/").content.decode()
    assert "(95% interval 0.711 to 0.867, on 100 held-out pairs)" in html
    assert 'id="rm-few-pairs"' not in html


def test_the_wilson_interval_stays_inside_zero_and_one():
    assert wilson_interval(1.0, 10)[1] == pytest.approx(1.0) and wilson_interval(1.0, 10)[0] > 0.6
    assert wilson_interval(0.0, 10)[0] == 0.0
    low, high = wilson_interval(0.5, 10_000)
    assert 0.49 < low < 0.5 < high < 0.51
