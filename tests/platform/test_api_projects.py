"""Projects, items and candidates over HTTP; the token endpoint; the OpenAPI schema."""

import pytest

from projects.models import Candidate, Item, Role
from projects.services import membership_set


def test_projects_list_only_the_callers_with_their_role(admin_api, annotator_api, outsider_api,
                                                       project, other_project):
    assert [(p["name"], p["role"]) for p in annotator_api.get("/api/projects/").json()] == [
        ("shapes pairwise", "annotator")
    ]
    assert [(p["name"], p["role"]) for p in admin_api.get("/api/projects/").json()] == [
        ("shapes pairwise", "admin")
    ]
    assert [p["name"] for p in outsider_api.get("/api/projects/").json()] == ["elsewhere"]


def test_project_detail_items_and_candidates(annotator_api, admin_api, project):
    detail = annotator_api.get(f"/api/projects/{project.pk}/").json()
    assert detail["rating_mode"] == "pairwise" and detail["overlap"] == 2
    assert detail["categories"][0] == {"id": 1, "name": "circle"}
    items = annotator_api.get(f"/api/projects/{project.pk}/items/").json()
    assert items["count"] == 3
    assert [i["file_name"] for i in items["results"]] == list(
        Item.objects.filter(project=project).values_list("file_name", flat=True)
    )
    item_id = items["results"][0]["id"]
    candidates = admin_api.get(f"/api/projects/{project.pk}/candidates/?item={item_id}")
    body = candidates.json()
    assert body["count"] == 3
    assert {c["model_version_name"] for c in body["results"]} == {"model-0", "model-1",
                                                                 "model-2"}
    assert body["results"][0]["output"] == Candidate.objects.get(
        pk=body["results"][0]["id"]).output
    bad = annotator_api.get(f"/api/projects/{project.pk}/candidates/?item=abc")
    assert bad.status_code == 400 and "item" in bad.json()["errors"]


@pytest.mark.parametrize(("role", "sees"), [(Role.ANNOTATOR, False), (Role.VIEWER, True),
                                           (Role.ADMIN, True)])
def test_only_annotators_are_kept_blind_to_model_versions_and_ground_truth(
        api_client_for, make_user, project, role, sees):
    """An annotator comparing outputs must not learn which model made each, nor the answer
    the ground truth gives: the keys are left out, not nulled."""
    user = make_user()
    membership_set(project=project, user=user, role=role)
    client = api_client_for(user)
    candidates = client.get(f"/api/projects/{project.pk}/candidates/").json()["results"]
    items = client.get(f"/api/projects/{project.pk}/items/").json()["results"]
    assert len(candidates) == 9 and len(items) == 3
    for candidate in candidates:
        assert {"id", "item", "sample_index", "output"} <= set(candidate)
        assert ("model_version" in candidate) is sees
        assert ("model_version_name" in candidate) is sees
    for item in items:
        assert {"id", "file_name", "image_url", "width", "height"} <= set(item)
        assert ("ground_truth" in item) is sees
    if sees:
        assert {c["model_version_name"] for c in candidates} == {"model-0", "model-1",
                                                                "model-2"}
        assert items[0]["ground_truth"] == Item.objects.get(pk=items[0]["id"]).ground_truth


def test_the_annotators_next_task_names_no_model_version(annotator_api, project):
    task = annotator_api.get(f"/api/projects/{project.pk}/next-task/").json()
    names = set(project.model_versions.values_list("name", flat=True))
    text = str(task)
    assert task["candidates"] and not any(name in text for name in names)
    assert "model_version" not in text and "ground_truth" not in text


def test_token_endpoint_gives_a_token_that_authenticates(anon_client, annotator, project):
    response = anon_client.post(
        "/api/auth/token/", {"username": "annotator", "password": "correct-horse-battery"}
    )
    assert response.status_code == 200
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert anon_client.get("/api/projects/").status_code == 200
    wrong = anon_client.post("/api/auth/token/", {"username": "annotator", "password": "no"})
    assert wrong.status_code == 400 and wrong.json()["detail"]


def test_schema_is_served(anon_client):
    response = anon_client.get("/api/schema/")
    assert response.status_code == 200
    paths = response.content.decode()
    for path in ("/api/projects/{project_id}/next-task/", "/api/tasks/{task_id}/answer/",
                 "/api/projects/{project_id}/quality/"):
        assert path in paths
    # The schema documents the fields admins and viewers get.
    for field in ("model_version_name", "ground_truth"):
        assert field in paths
