"""The next round: a ModelVersion's outputs on its project's items become candidates and tasks
(in-process on the tiny model), requests the generation cannot honour are refused with the
field and nothing queued, and only project admins may ask."""

import pytest
from rest_framework import status

from labeling.models import Task
from projects.models import Candidate
from tests.integration.tuning_support import add_feedback, shapes_project, version_with_checkpoint
from training.candidates import generate_candidates
from tuning.candidates import GENERATE_TASK

pytestmark = pytest.mark.django_db



@pytest.fixture
def shapes(project_admin, annotator):
    project = shapes_project(admins=[project_admin], annotators=[annotator])
    add_feedback(project, annotator, n_items=3, n_candidates=2)
    return project


def generate(client, version, body, capture):
    with capture(execute=True):
        return client.post(f"/api/model-versions/{version.pk}/generate-candidates/", body,
                           format="json")


def test_outputs_become_candidates_and_tasks(shapes, admin_api, sent,
                                             django_capture_on_commit_callbacks):
    version = version_with_checkpoint(shapes)
    response = generate(admin_api, version, {"samples": 2, "temperature": 1.0},
                        django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_202_ACCEPTED, response.json()
    assert response.json()["items"] == 3
    assert sent == [(GENERATE_TASK, [version.pk, 2, 1.0])]
    tasks_before = Task.objects.filter(project=shapes).count()
    assert generate_candidates(version.pk, samples=2, temperature=1.0) == 6
    made = Candidate.objects.filter(model_version=version)
    assert sorted(made.values_list("sample_index", flat=True)) == [0, 0, 0, 1, 1, 1]
    for candidate in made:
        for obj in candidate.output["objects"]:
            assert obj["category_id"] in {c["id"] for c in shapes.categories}
            assert len(obj["bbox"]) == 4
    # Pairwise: each item's new outputs are paired with its old ones and with each other.
    assert Task.objects.filter(project=shapes).count() > tasks_before
    assert generate_candidates(version.pk, samples=2, temperature=1.0) == 0  # redelivered


@pytest.mark.parametrize(("body", "field"), [
    ({"samples": 0}, "samples"),
    ({"samples": 3, "temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
])
def test_impossible_requests_are_refused(shapes, admin_api, sent,
                                         django_capture_on_commit_callbacks, body, field):
    version = version_with_checkpoint(shapes)
    response = generate(admin_api, version, body, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"] and sent == []


def test_a_version_without_a_model_is_refused(shapes, admin_api, sent,
                                              django_capture_on_commit_callbacks):
    imported = shapes.model_versions.get(name="graded-0")
    response = generate(admin_api, imported, {}, django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "has no checkpoint" in response.json()["errors"]["model_version"][0]
    assert sent == []


@pytest.mark.parametrize(("who", "expected"), [
    ("anonymous", status.HTTP_401_UNAUTHORIZED),
    ("annotator", status.HTTP_403_FORBIDDEN),
    ("outsider", status.HTTP_404_NOT_FOUND),
])
def test_only_project_admins_generate(who, expected, shapes, api_client_for, annotator,
                                      outsider, sent, django_capture_on_commit_callbacks):
    version = version_with_checkpoint(shapes)
    client = api_client_for({"anonymous": None, "annotator": annotator,
                             "outsider": outsider}[who])
    assert generate(client, version, {}, django_capture_on_commit_callbacks).status_code == (
        expected)
    assert sent == []
