"""Who may read and answer: anonymous (401), a member of another project (404, nothing leaks),
a viewer (reads, cannot answer), an annotator (reads and answers, no quality page), an admin."""

import pytest
from django.middleware.csrf import get_token
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from labeling.models import Comparison
from labeling.services.leases import next_task_for
from projects.models import Role
from projects.services import membership_set

ROLES = ["anonymous", "outsider", "viewer", "annotator", "admin"]
# Expected status per endpoint, in the order of ROLES.
READS = {
    "detail": [401, 404, 200, 200, 200],
    "items": [401, 404, 200, 200, 200],
    "candidates": [401, 404, 200, 200, 200],
    "quality": [401, 404, 403, 403, 200],
}


@pytest.fixture
def clients(api_client_for, make_user, project, project_admin, annotator, outsider,
            other_project):
    viewer = make_user("viewer")
    membership_set(project=project, user=viewer, role=Role.VIEWER)
    users = {"anonymous": None, "outsider": outsider, "viewer": viewer,
             "annotator": annotator, "admin": project_admin}
    return {role: (users[role], api_client_for(users[role])) for role in ROLES}


@pytest.mark.parametrize("endpoint", sorted(READS))
def test_reads(clients, project, endpoint):
    suffix = "" if endpoint == "detail" else f"{endpoint}/"
    for role, expected in zip(ROLES, READS[endpoint], strict=True):
        response = clients[role][1].get(f"/api/projects/{project.pk}/{suffix}")
        assert response.status_code == expected, role
        if expected == 401:
            assert response.json()["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Token")


def test_project_list(clients, project):
    assert clients["anonymous"][1].get("/api/projects/").status_code == 401
    for role in ROLES[1:]:
        names = [p["name"] for p in clients[role][1].get("/api/projects/").json()]
        assert ("shapes pairwise" in names) == (role != "outsider"), role


def test_next_task_and_answer(clients, project):
    expected_next = [401, 404, 403, 200, 200]
    for role, expected in zip(ROLES, expected_next, strict=True):
        response = clients[role][1].get(f"/api/projects/{project.pk}/next-task/")
        assert response.status_code == expected, role
    # Annotator and admin were both handed the first task (overlap 2); both may answer it.
    task = next_task_for(user=clients["annotator"][0], project=project).task
    assert next_task_for(user=clients["admin"][0], project=project).task_id == task.pk
    expected_answer = [401, 404, 403, 201, 201]
    for role, expected in zip(ROLES, expected_answer, strict=True):
        response = clients[role][1].post(
            f"/api/tasks/{task.pk}/answer/",
            {"answer": {"choice": "A"}, "idempotency_key": f"key-{role}"}, format="json",
        )
        assert response.status_code == expected, role
    assert sorted(Comparison.objects.values_list("annotator__username", flat=True)) == [
        "annotator", "project-admin"
    ]
    for role, expected in zip(ROLES, [401, 404, 403, 409, 409], strict=True):
        response = clients[role][1].post(f"/api/tasks/{task.pk}/skip/")
        assert response.status_code == expected, role
    for role, expected in zip(ROLES, [401, 404, 403, 200, 200], strict=True):
        response = clients[role][1].post(f"/api/projects/{project.pk}/undo/")
        assert response.status_code == expected, role


def test_session_posts_need_the_csrf_token(api_client_for, annotator, project):
    client = api_client_for(annotator, session=True)
    task = client.get(f"/api/projects/{project.pk}/next-task/").json()
    body = {"answer": {"choice": "B"}, "idempotency_key": "csrf"}
    refused = client.post(f"/api/tasks/{task['id']}/answer/", body, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Comparison.objects.exists()
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    accepted = client.post(f"/api/tasks/{task['id']}/answer/", body, format="json",
                           HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_django_admin_lists_everything_for_staff_only(client, make_user, project, annotator,
                                                     valid_answer):
    from labeling.services.answers import answer_submit

    lease = next_task_for(user=annotator, project=project)
    answer_submit(user=annotator, task=lease.task, answer=valid_answer(lease.task),
                  idempotency_key="admin-page")
    pages = ["projects/project", "projects/membership", "projects/item",
             "projects/modelversion", "projects/candidate", "labeling/task",
             "labeling/assignment", "labeling/rating", "labeling/comparison"]
    assert client.get("/admin/projects/project/").status_code == 302
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    for page in pages:
        assert client.get(f"/admin/{page}/").status_code == 200, page
    assert client.get(f"/admin/projects/project/{project.pk}/change/").status_code == 200
    assert client.get(f"/admin/labeling/task/{lease.task_id}/change/").status_code == 200


def test_plain_endpoints_authenticate_like_the_rest(api_client_for, annotator, project):
    url = f"/api/projects/{project.pk}/next-task/"
    client = api_client_for(None)
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Token")
    assert client.post("/api/tasks/1/answer/", {}, format="json").status_code == 401
    assert client.get("/api/tasks/1/answer/").status_code == 401
    for header in ("Token", "Token a b", "Token not-a-token"):
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(url)
        assert response.status_code == 401, header
        assert response.json()["detail"]


def test_a_revoked_token_or_deactivated_user_is_refused_at_once(api_client_for, make_user,
                                                               project):
    user = make_user()
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    client = api_client_for(user)
    url = f"/api/projects/{project.pk}/next-task/"
    assert client.get(url).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(url).status_code == 401
    user.is_active = True
    user.save()
    assert client.get(url).status_code == 200
    Token.objects.filter(user=user).delete()
    assert client.get(url).status_code == 401
