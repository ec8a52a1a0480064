"""Errors over HTTP: numbers past the database's range, JSON nested without end and bodies over
the size limit are refused in the API's one JSON error shape (400, or 404 for ids in a path);
no /api/ error is a 500 or an HTML page, and 405s say what is allowed."""

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter, PathConverter

from common.integers import BIGINT_MAX, IdConverter
from projects.models import ModelVersion
from tests.integration.tuning_support import (
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)

pytestmark = pytest.mark.django_db

PAST_BIGINT = str(BIGINT_MAX + 1)  # 19 digits: the first number no bigint column holds
HUGE = "99999999999999999999"
DEEP = "[" * 100_000 + "]" * 100_000


def is_json_error(response) -> bool:
    """The API's error shape: JSON with `detail` and `errors`."""
    if not response["Content-Type"].startswith("application/json"):
        return False
    body = json.loads(response.content)
    return isinstance(body.get("detail"), str) and isinstance(body.get("errors"), dict)


@pytest.fixture
def clients(admin_api, annotator_api):
    for client in (admin_api, annotator_api):
        client.raise_request_exception = False  # a 500 is an answer to assert on, not a crash
    return {"admin": admin_api, "annotator": annotator_api}


def _routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, object]]:
    routes = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _routes(entry, route)
        elif isinstance(entry, URLPattern):
            routes.append((route, entry.pattern))
    return routes


def test_every_id_in_our_urls_is_in_the_database_range():
    routes = [(route, pattern) for route, pattern in _routes(get_resolver())
              if not route.startswith("admin/")]
    with_ids = [(route, pattern) for route, pattern in routes if pattern.converters]
    assert len(with_ids) >= 15
    for route, pattern in with_ids:
        for converter in pattern.converters.values():
            if isinstance(converter, PathConverter):  # a media file's name, not an id
                continue
            assert isinstance(converter, IdConverter), route
            assert not isinstance(converter, IntConverter), route


@pytest.mark.parametrize("number", [PAST_BIGINT, HUGE])
@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("annotator", "post", "/api/tasks/{n}/answer/"),
        ("annotator", "post", "/api/tasks/{n}/skip/"),
        ("annotator", "get", "/api/projects/{n}/next-task/"),
        ("annotator", "post", "/api/projects/{n}/undo/"),
        ("admin", "get", "/api/projects/{n}/"),
        ("admin", "get", "/api/projects/{n}/export/"),
        ("admin", "post", "/api/projects/{n}/import/"),
        ("admin", "get", "/api/tuning-runs/{n}/"),
        ("admin", "get", "/api/tuning-runs/{n}/metrics/"),
        ("admin", "get", "/api/reward-models/{n}/"),
        ("admin", "post", "/api/model-versions/{n}/generate-candidates/"),
        ("admin", "get", "/tuning/runs/{n}/"),
        ("admin", "get", "/rewards/{n}/"),
    ],
)
def test_ids_past_the_database_range_are_404(clients, project, who, method, path, number):
    body = {"answer": {"choice": "A"}, "idempotency_key": "k"}
    response = getattr(clients[who], method)(path.format(n=number), body, format="json")
    assert response.status_code == 404
    if path.startswith("/api/"):
        assert is_json_error(response)


@pytest.mark.parametrize("number", [PAST_BIGINT, HUGE, "9" * 5000])
@pytest.mark.parametrize(
    ("who", "path", "field"),
    [
        ("annotator", "/api/projects/{p}/next-task/?after={n}", "after"),
        ("admin", "/api/projects/{p}/export/?page={n}", "page"),
        ("admin", "/api/projects/{p}/candidates/?item={n}", "item"),
    ],
)
def test_query_numbers_past_the_database_range_are_400_naming_them(clients, project, who, path,
                                                                   field, number):
    response = clients[who].get(path.format(p=project.pk, n=number))
    assert response.status_code == 400
    assert is_json_error(response) and field in response.json()["errors"]


@pytest.mark.parametrize("number", [PAST_BIGINT, HUGE])
def test_answer_after_past_the_database_range_is_400(clients, project, number):
    lease = clients["annotator"].get(f"/api/projects/{project.pk}/next-task/").json()
    response = clients["annotator"].post(
        f"/api/tasks/{lease['id']}/answer/?after={number}",
        {"answer": {"choice": "A"}, "idempotency_key": "k"}, format="json",
    )
    assert response.status_code == 400 and "after" in response.json()["errors"]


@pytest.mark.parametrize("number", [int(PAST_BIGINT), int(HUGE)])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/projects/{p}/tuning-runs/", "start_version"),
        ("/api/projects/{p}/tuning-runs/", "reward_model"),
        ("/api/projects/{p}/reward-models/", "policy"),
    ],
)
def test_body_ids_past_the_database_range_are_400_naming_them(clients, project, path, field,
                                                              number):
    body = {"start_version": 1, field: number}
    response = clients["admin"].post(path.format(p=project.pk), body, format="json")
    assert response.status_code == 400
    assert is_json_error(response) and field in response.json()["errors"]


def test_metrics_after_a_step_past_the_range_is_400(admin_api, project_admin, sent,
                                                     django_capture_on_commit_callbacks):
    shapes = shapes_project(admins=[project_admin])
    start = version_with_checkpoint(shapes)
    with django_capture_on_commit_callbacks(execute=True):
        run = admin_api.post(f"/api/projects/{shapes.pk}/tuning-runs/",
                             {"start_version": start.pk, "config": tiny_tune_config()},
                             format="json").json()
    response = admin_api.get(f"/api/tuning-runs/{run['id']}/metrics/?after={HUGE}")
    assert response.status_code == 400 and "after" in response.json()["errors"]


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("annotator", "/api/tasks/{task}/answer/"),
        ("admin", "/api/projects/{p}/tuning-runs/"),
        ("admin", "/api/projects/{p}/reward-models/"),
        ("admin", "/api/model-versions/{v}/generate-candidates/"),
    ],
)
@pytest.mark.parametrize("document", [DEEP, '{"answer": ' * 5000 + "1" + "}" * 5000,
                                      "[" * 200 + "]" * 200])
def test_json_nested_without_end_is_400(clients, project, who, path, document):
    lease = clients["annotator"].get(f"/api/projects/{project.pk}/next-task/").json()
    version = ModelVersion.objects.filter(project=project).first()
    response = clients[who].post(path.format(p=project.pk, task=lease["id"], v=version.pk),
                                 document, content_type="application/json")
    assert response.status_code == 400
    assert is_json_error(response) and "nested" in response.json()["detail"]


@pytest.mark.parametrize(
    ("who", "path"),
    [("annotator", "/api/tasks/{task}/answer/"), ("admin", "/api/projects/{p}/tuning-runs/")],
)
def test_a_body_over_the_size_limit_is_a_json_400(clients, project, settings, who, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    lease = clients["annotator"].get(f"/api/projects/{project.pk}/next-task/").json()
    body = json.dumps({"answer": {"choice": "A"}, "idempotency_key": "k", "x": "y" * 20_000})
    response = clients[who].post(path.format(p=project.pk, task=lease["id"]), body,
                                 content_type="application/json")
    assert response.status_code == 400
    assert is_json_error(response) and "10,000 bytes" in response.json()["detail"]


def test_unknown_api_paths_are_json_404s(clients, anon_client):
    for client in (*clients.values(), anon_client):
        response = client.get("/api/no-such-thing/")
        assert response.status_code == 404 and is_json_error(response)
    # Outside the API a missing page stays a page.
    page = anon_client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("who", "method", "path", "allowed"),
    [
        ("annotator", "delete", "/api/tasks/1/answer/", "POST"),
        ("annotator", "put", "/api/projects/{p}/next-task/", "GET"),
        ("admin", "delete", "/api/projects/", "GET"),
        ("admin", "patch", "/api/projects/{p}/tuning-runs/", "POST"),
    ],
)
def test_405s_are_json_and_say_what_is_allowed(clients, project, who, method, path, allowed):
    response = getattr(clients[who], method)(path.format(p=project.pk))
    assert response.status_code == 405 and is_json_error(response)
    assert allowed in [m.strip() for m in response["Allow"].split(",")]


def test_server_errors_under_the_api_are_json(clients, project, monkeypatch):
    from projects import api

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "projects_for_user", broken)
    response = clients["admin"].get("/api/projects/")
    assert response.status_code == 500 and is_json_error(response)
    assert "boom" not in response.content.decode()


def test_csrf_failures_under_the_api_are_json(rf, settings):
    from django.utils.module_loading import import_string

    failure = import_string(settings.CSRF_FAILURE_VIEW)
    api = failure(rf.post("/api/tasks/1/answer/"), reason="CSRF cookie not set.")
    assert api.status_code == 403 and is_json_error(api)
    assert "CSRF" in json.loads(api.content)["detail"]
    page = failure(rf.post("/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


def test_session_callers_without_csrf_get_a_json_403(api_client_for, annotator, project):
    client = api_client_for(annotator, session=True)
    lease = client.get(f"/api/projects/{project.pk}/next-task/").json()
    response = client.post(f"/api/tasks/{lease['id']}/answer/",
                           {"answer": {"choice": "A"}, "idempotency_key": "k"}, format="json")
    assert response.status_code == 403 and is_json_error(response)
    assert "CSRF" in response.json()["detail"]
