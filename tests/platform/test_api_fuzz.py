"""The API fuzzed from its own schema (schemathesis): every operation, as a project admin and as
an annotator, with valid and invalid input; no response is a 5xx and every status code is one
the schema declares for that operation.

Deterministic: a fixed seed, Hypothesis derandomised and without its example database, and a
bounded number of examples per operation, so the same code always sends the same requests (a
failure fails again on the rerun). Half the generated ids in paths are swapped for ids of real
rows (the project, its tasks, versions, a tuning run, a reward model), so requests reach the
views' input checks and not only their 404s. The requests go through Django's WSGI handler in
this process, inside the test's transaction. About a minute on the project's machines.
"""

import json
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import status_code_conformance

from labeling.models import Task
from projects.models import ModelVersion
from rewards.models import RewardModel
from tuning.models import TuningRun, TuningStep

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12
CONFIG = {
    "seed": 20_260_101,
    "generation": {"deterministic": True, "database": "none",
                   "max-examples": EXAMPLES_PER_OPERATION},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    # Each schema request builds the whole schema, and the coverage phase would ask for it in
    # each of its ~100 languages: a few fuzzed requests say enough about it.
    "operations": [{"include-path": "/api/schema/", "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": 4}}],
}
CHECKS = [not_a_server_error, status_code_conformance]
# Ids of real rows by path parameter name, filled by `rows` for the running test.
REAL_IDS: dict[str, list[int]] = {}


def _schema() -> dict:
    """The schema /api/schema/ serves, as JSON."""
    generator = SchemaGenerator()
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(public=True)))


schema = schemathesis.openapi.from_dict(_schema(), config=SchemathesisConfig.from_dict(CONFIG))
schema.app = WSGIHandler()


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's WSGI handler closes the database connection after each request; Django's test
    client keeps it (the test's transaction), and so does this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def rows(project) -> Iterator[None]:
    """A tuning run with logged steps and a reward model beside the project's own rows."""
    version = ModelVersion.objects.filter(project=project).order_by("pk").first()
    run = TuningRun.objects.create(project=project, start_version=version, total_steps=4,
                                   config={"steps": 4})
    TuningStep.objects.bulk_create(TuningStep(run=run, step=step, metrics={"reward": 0.1})
                                   for step in range(3))
    reward_model = RewardModel.objects.create(project=project, name="fuzzed")
    REAL_IDS.update({
        "project_id": [project.pk],
        "task_id": list(Task.objects.filter(project=project).values_list("pk", flat=True)),
        "version_id": list(ModelVersion.objects.filter(project=project)
                           .values_list("pk", flat=True)),
        "run_id": [run.pk],
        "reward_model_id": [reward_model.pk],
    })
    yield
    REAL_IDS.clear()


def _with_real_ids(case) -> None:
    """Even generated ids become real rows' ids (chosen by the generated value)."""
    for name, value in (case.path_parameters or {}).items():
        real = REAL_IDS.get(name)
        if real and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = real[value // 2 % len(real)]


def _check(case, user) -> None:
    _with_real_ids(case)
    token = Token.objects.get_or_create(user=user)[0].key
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=CHECKS)


# The fixtures' rows are shared by an operation's examples, as the database is by requests.
SETTINGS = settings(deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])


@schema.parametrize()
@SETTINGS
def test_as_the_project_admin(case, rows, project_admin):
    _check(case, project_admin)


@schema.parametrize()
@SETTINGS
def test_as_an_annotator(case, rows, annotator):
    _check(case, annotator)
