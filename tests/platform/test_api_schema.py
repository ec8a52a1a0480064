"""The OpenAPI schema says what the server does: its error responses and the bounds of its
input; and the interactive docs work without internet."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders

from common.integers import BIGINT_MAX

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/ErrorOutput"


@pytest.fixture
def schema(anon_client) -> dict:
    response = anon_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def _error_schema(operation: dict, code: str) -> str:
    return operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]


def test_every_operation_declares_its_errors_with_the_error_body(schema):
    error = schema["components"]["schemas"]["ErrorOutput"]
    assert set(error["required"]) == {"detail", "errors"}
    checked = 0
    for path, method, operation in operations(schema):
        parameters = operation.get("parameters", [])
        expected = {"401"}
        if "{" in path:
            expected |= {"403", "404"}
        if method == "POST" or any(p["in"] == "query" for p in parameters):
            expected.add("400")
        if "requestBody" in operation:
            expected.add("415")
        if path == "/api/auth/token/":
            expected -= {"403"}
        for code in expected:
            assert code in operation["responses"], (method, path, code)
            assert _error_schema(operation, code) == ERROR_REF, (method, path, code)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/tasks/{task_id}/answer/", "post"),
        ("/api/tasks/{task_id}/skip/", "post"),
        ("/api/tuning-runs/{run_id}/cancel/", "post"),
        ("/api/tuning-runs/{run_id}/retry/", "post"),
    ],
)
def test_conflicts_are_declared_where_they_happen(schema, path, method):
    assert _error_schema(schema["paths"][path][method], "409") == ERROR_REF


def test_the_bounds_the_server_enforces_are_in_the_schema(schema):
    components = schema["components"]["schemas"]
    key = components["AnswerInput"]["properties"]["idempotency_key"]
    assert (key["minLength"], key["maxLength"]) == (1, 64)
    tuning = components["TuningRunInput"]["properties"]
    assert tuning["start_version"]["minimum"] == 1
    assert tuning["start_version"]["maximum"] == BIGINT_MAX
    assert tuning["save_every"]["minimum"] == 1
    generate = components["GenerateInput"]["properties"]
    assert generate["samples"]["minimum"] == 1 and generate["samples"]["maximum"] >= 1
    assert generate["temperature"]["minimum"] == 0
    for path, _, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"] == {"type": "integer", "format": "int64",
                                               "minimum": 1, "maximum": BIGINT_MAX}, path
    export = schema["paths"]["/api/projects/{project_id}/export/"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in export}
    assert by_name["page"]["minimum"] == 1 and by_name["page"]["maximum"] < BIGINT_MAX


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_nothing_from_outside_the_server(anon_client, page):
    response = anon_client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html), html
    parser = _References()
    parser.feed(html)
    scripts = [url for url in parser.urls if url.endswith(".js")]
    assert scripts, parser.urls
    for url in parser.urls:
        assert url.startswith("/"), url
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), url
