"""Who may read and answer: anonymous (401), a member of another project (404, nothing leaks),
a viewer (reads, cannot answer), an annotator (reads and answers, no quality page), an admin;
and who may fetch the project's media files (the anonymous are sent to the login page)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.middleware.csrf import get_token
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from labeling.models import Comparison
from labeling.services.leases import next_task_for
from projects.models import Role
from projects.services import membership_set
from training.project_images import project_images_folder
from tuning.models import TuningRun
from tuning.services import run_checkpoint_name

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


# Expected status per media file, in the order of ROLES: 302 sends the anonymous to log in.
MEDIA = {
    "item image": [302, 404, 200, 200, 200],
    "imported output": [302, 404, 200, 200, 200],
    "ground truth file": [302, 404, 200, 404, 200],
    "model checkpoint": [302, 404, 404, 404, 200],
    "run instances.json": [302, 404, 404, 404, 200],
    "run image export": [302, 404, 404, 404, 200],
    "run checkpoint": [302, 404, 404, 404, 200],
    "run sample image": [302, 404, 404, 404, 200],
}


@pytest.fixture
def media_files(project, png_bytes) -> dict[str, tuple[str, bytes]]:
    """One file of each kind the platform writes for the project, at the names its code
    gives them: {kind: (URL, bytes)}."""
    item = project.items.order_by("id").first()
    version = project.model_versions.order_by("id").first()
    version.checkpoint.save("mle.pt", ContentFile(b"weights of the mle"))
    run = TuningRun.objects.create(project=project, start_version=version)
    images = project_images_folder(run)
    checkpoint = Path(settings.MEDIA_ROOT) / run_checkpoint_name(run.pk)
    checkpoint.write_bytes(b"weights of the tuned model")

    def stored(name: str, data: bytes) -> str:
        return default_storage.save(name, ContentFile(data))

    names = {
        "item image": item.image.name,
        "imported output": stored(f"projects/{project.pk}/outputs/{version.pk}/a.png",
                                  png_bytes(8, 8)),
        "ground truth file": stored(f"projects/{project.pk}/ground_truth/a.png",
                                    png_bytes(9, 9)),
        "model checkpoint": version.checkpoint.name,
        "run instances.json": (images / "instances.json").relative_to(settings.MEDIA_ROOT),
        "run image export": next(images.glob("*.png")).relative_to(settings.MEDIA_ROOT),
        "run checkpoint": run_checkpoint_name(run.pk),
        "run sample image": stored(f"tuning/runs/{run.pk}/samples/0.png", png_bytes(7, 7)),
    }
    return {kind: (default_storage.url(str(name)),
                   (Path(settings.MEDIA_ROOT) / name).read_bytes())
            for kind, name in names.items()}


def test_media_files_reach_only_those_who_may_see_them(clients, media_files):
    assert set(media_files) == set(MEDIA)
    leaks = []
    for kind, (url, data) in media_files.items():
        for role, expected in zip(ROLES, MEDIA[kind], strict=True):
            response = clients[role][1].get(url)
            body = (b"".join(response.streaming_content) if response.streaming
                    else response.content)
            if response.status_code != expected or (data in body) != (expected == 200):
                leaks.append((kind, role, response.status_code))
            if expected == 302:
                assert response["Location"].startswith(f"/login/?next={url}")
    assert leaks == []


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
