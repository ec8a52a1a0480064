"""Reward models in the platform: launch refusals (nothing queued), the project's answers as
the trainer's feedback datasets, training in-process on a tiny config, permissions."""

import uuid

import pytest
import torch
from rest_framework import status

from common.jobs import JobStatus
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from projects.models import RatingMode
from rewards.models import RewardModel
from rewards.services import TRAIN_TASK, reward_model_launch
from tests.integration.tuning_support import (
    add_feedback,
    shapes_project,
    version_with_checkpoint,
)
from trainer.reward_model.model import load_reward_model
from training.feedback import project_feedback
from training.reward_model import train_project_reward_model

pytestmark = pytest.mark.django_db

TINY_RM = {"image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
           "eval_every": 3, "threads": 1}
TINY_POLICY_RM = {"readout": "policy", "image_size": 32, "steps": 3, "batch_size": 4,
                  "eval_every": 3, "threads": 1}



@pytest.fixture
def shapes(project_admin, annotator):
    return shapes_project(admins=[project_admin], annotators=[annotator])


def answer_one(project, annotator) -> None:
    task = next_task_for(user=annotator, project=project).task
    answer_submit(user=annotator, task=task, answer={"choice": "A"},
                  idempotency_key=str(uuid.uuid4()))


def launch(client, project, body, capture):
    with capture(execute=True):
        return client.post(f"/api/projects/{project.pk}/reward-models/", body, format="json")


def test_launch_after_answers_queues_training(
    admin_api, shapes, annotator, sent, django_capture_on_commit_callbacks
):
    answers = add_feedback(shapes, annotator)
    response = launch(admin_api, shapes, {"config": TINY_RM}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["snapshot"] == {"ratings": 0, "comparisons": answers}
    assert body["config"]["num_classes"] == 8 and body["config"]["task"] == "detection"
    assert sent == [(TRAIN_TASK, [body["id"]])]


@pytest.mark.parametrize(("config", "field"), [
    ({"lr": -1.0}, "config.lr"),
    ({"heldout_fraction": 1.0}, "config.heldout_fraction"),  # nothing left to train on
    ({"steps": "many"}, "config.steps"),
    ({"num_classes": 3}, "config.num_classes"),  # the project's categories decide
])
def test_bad_config_is_refused_with_its_field(
    admin_api, shapes, annotator, sent, django_capture_on_commit_callbacks, config, field
):
    add_feedback(shapes, annotator, n_items=2)
    response = launch(admin_api, shapes, {"config": config}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"], response.json()
    assert not RewardModel.objects.exists() and sent == []


def test_the_policy_readout_needs_a_detection_checkpoint_of_the_project(
    admin_api, project_admin, shapes, annotator, make_project, sent,
    django_capture_on_commit_callbacks,
):
    add_feedback(shapes, annotator, n_items=2)
    imported = shapes.model_versions.first()  # outputs imported with no model behind them
    elsewhere = version_with_checkpoint(shapes_project(name="other", admins=[project_admin]))
    mle = version_with_checkpoint(shapes)
    cases = [
        ({"config": TINY_POLICY_RM}, "name the model version"),
        ({"config": TINY_POLICY_RM, "policy": imported.pk}, "has no checkpoint"),
        ({"config": TINY_POLICY_RM, "policy": elsewhere.pk}, "in this project"),
        ({"config": TINY_POLICY_RM, "policy": 10**6}, "in this project"),
        ({"config": TINY_RM, "policy": mle.pk}, "Only readout 'policy'"),
    ]
    for body, message in cases:
        response = launch(admin_api, shapes, body, django_capture_on_commit_callbacks)
        assert response.status_code == status.HTTP_400_BAD_REQUEST, body
        assert message in response.json()["errors"]["policy"][0], response.json()
    assert not RewardModel.objects.exists() and sent == []
    response = launch(admin_api, shapes, {"config": TINY_POLICY_RM, "policy": mle.pk},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    assert response.json()["policy"] == mle.pk and len(sent) == 1


def test_a_project_without_answers_is_refused_and_one_of_another_task_trains(
    admin_api, project_admin, annotator, shapes, make_project, sent,
    django_capture_on_commit_callbacks,
):
    response = launch(admin_api, shapes, {}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "no ratings or comparisons" in response.json()["detail"]
    captions = make_project(task="captioning", admins=[project_admin], annotators=[annotator])
    response = launch(admin_api, captions, {}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "no ratings or comparisons" in response.json()["errors"]["project"][0]
    assert not RewardModel.objects.exists() and sent == []
    answer_one(captions, annotator)
    response = launch(admin_api, captions, {}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    # Captions are read by their tokens: the captioning default readout, not detection's boxes.
    assert response.json()["config"]["readout"] == "tokens"
    assert response.json()["config"]["task"] == "captioning" and len(sent) == 1


@pytest.mark.parametrize(("who", "expected"), [
    ("anonymous", status.HTTP_401_UNAUTHORIZED),
    ("annotator", status.HTTP_403_FORBIDDEN),
    ("outsider", status.HTTP_404_NOT_FOUND),
])
def test_only_project_admins_launch_or_see_reward_models(
    who, expected, api_client_for, annotator, outsider, shapes, sent,
    django_capture_on_commit_callbacks,
):
    add_feedback(shapes, annotator, n_items=2)
    client = api_client_for({"anonymous": None, "annotator": annotator,
                             "outsider": outsider}[who])
    assert launch(client, shapes, {}, django_capture_on_commit_callbacks).status_code == expected
    assert client.get(f"/api/projects/{shapes.pk}/reward-models/").status_code == expected
    assert not RewardModel.objects.exists() and sent == []


def test_answers_become_feedback_datasets(shapes, annotator):
    add_feedback(shapes, annotator, n_items=2, n_candidates=3)
    feedback = project_feedback(shapes, image_size=32)
    prefs = feedback.preferences
    assert feedback.ratings is None and feedback.rankings is None
    assert len(prefs) == 6 and prefs.images.shape == (2, 3, 32, 32)
    # Every preference picked the output whose box is nearer x = 4 (see add_feedback).
    a_x, b_x = prefs.a.boxes[:, 0, 1], prefs.b.boxes[:, 0, 1]
    assert torch.all((prefs.label == 1) == (a_x < b_x))
    # COCO [x, y, w, h] pixels of a 32 x 24 image -> [ymin, xmin, ymax, xmax] in [0, 1]: the
    # best output, bbox [4, 4, 12, 10] of category 1 (class 0), wins wherever it is shown.
    winners = torch.where(prefs.label == 1, prefs.a.boxes[:, 0].T, prefs.b.boxes[:, 0].T).T
    expected = torch.tensor([4 / 24, 4 / 32, 14 / 24, 16 / 32])
    assert sum(torch.allclose(box, expected) for box in winners) == 4  # 2 pairs an item
    assert prefs.a.classes[prefs.a.valid].max() <= 2 and prefs.a.valid.sum() == 6
    ranked = shapes_project(name="ranked", rating_mode=RatingMode.RANKING,
                            annotators=[annotator])
    add_feedback(ranked, annotator, n_items=2, n_candidates=3)
    rankings = project_feedback(ranked, image_size=32).rankings
    assert (len(rankings), rankings.k) == (2, 3)
    xs = rankings.ranked.boxes[:, 0, 1].view(2, 3)
    assert torch.all(xs[:, :-1] < xs[:, 1:])  # best first


def test_training_in_process(shapes, annotator, sent):
    add_feedback(shapes, annotator)
    reward_model = reward_model_launch(project=shapes, config=TINY_RM)
    train_project_reward_model(reward_model.pk, worker="w1")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    assert 0.0 <= reward_model.heldout_accuracy <= 1.0
    model, metrics = load_reward_model(reward_model.file.path)
    assert model.config.num_classes == 8
    assert metrics["pair_acc"] == reward_model.heldout_accuracy
    train_project_reward_model(reward_model.pk, worker="w2")  # a redelivery does nothing
    reward_model.refresh_from_db()
    assert (reward_model.attempts, reward_model.worker) == (1, "w1")


def test_training_from_the_policy_in_process(shapes, annotator):
    add_feedback(shapes, annotator)
    mle = version_with_checkpoint(shapes)
    reward_model = reward_model_launch(project=shapes, config=TINY_POLICY_RM, policy=mle)
    train_project_reward_model(reward_model.pk, worker="w1")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    model, _ = load_reward_model(reward_model.file.path)
    assert model.config.readout == "policy"
    # The file carries the policy's network: it scores without the model version.
    mle.checkpoint.delete()
    model, _ = load_reward_model(reward_model.file.path)
    assert model.config.readout == "policy"


def test_a_policy_readout_reads_at_its_policy_s_input_size(
    admin_api, shapes, annotator, sent, django_capture_on_commit_callbacks
):
    """The policy's input size is the version's column: a mismatch is a 400 at launch, not a
    worker's failure, and a config that leaves the size out takes the policy's."""
    add_feedback(shapes, annotator, n_items=2)
    mle = version_with_checkpoint(shapes)
    assert mle.input_size == 32
    wrong = {**TINY_POLICY_RM, "image_size": 64}
    response = launch(admin_api, shapes, {"config": wrong, "policy": mle.pk},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "32" in response.json()["errors"]["config.image_size"][0]
    assert not RewardModel.objects.exists() and sent == []
    unsized = {key: value for key, value in TINY_POLICY_RM.items() if key != "image_size"}
    response = launch(admin_api, shapes, {"config": unsized, "policy": mle.pk},
                      django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    assert RewardModel.objects.get().config["image_size"] == 32
