"""Fixtures for the platform's tests: users with roles, projects built by the real services,
and API clients that authenticate the way real clients do (token or session).

Factories (call them with keyword arguments):
- `make_user(username=None, password=PASSWORD)` -> User
- `make_project(task=..., rating_mode=..., overlap=..., n_items=..., n_candidates=...,
  ranking_k=3, admins=(), annotators=(), viewers=(), name=None)` -> Project with items (small
  PNGs under a temporary MEDIA_ROOT), one ModelVersion per candidate index ("model-0", ...),
  candidates, and the tasks `tasks_create` makes for the rating mode
- `api_client_for(user=None, session=False)` -> rest_framework APIClient: token auth by default,
  a logged-in session with CSRF checks enforced when session=True, anonymous for None
- `valid_answer(task)` -> an answer body that fits the task's rating mode
- `png_bytes(width=32, height=24, color=(200, 30, 30))` -> a small PNG file's bytes

Ready-made: `project_admin`, `annotator`, `outsider` (users), `project` (pairwise, overlap 2,
3 items x 3 candidates, with project_admin as admin and annotator as annotator), `other_project`
(scale, outsider is its annotator), `anon_client`, `admin_api`, `annotator_api`, `outsider_api`.
"""

import io
from collections.abc import Callable
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from labeling.models import Task
from labeling.services.task_creation import key_candidate_ids, tasks_create
from projects.models import Project, RatingMode, Role
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)

PASSWORD = "correct-horse-battery"
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]
_serial = count()


def _png_bytes(width: int = 32, height: int = 24, color: tuple[int, int, int] = (200, 30, 30)
              ) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def output_for(task: str, quality: int) -> dict:
    """A small, valid candidate output of the project's vision task (docs/api.md)."""
    if task == "detection":
        return {"objects": [{"bbox": [2 + quality, 3, 10, 8], "category_id": 1,
                             "score": 0.9 - 0.1 * quality}]}
    if task == "captioning":
        return {"caption": f"a red circle, version {quality}"}
    if task == "colorization":
        return {"image_url": f"/media/colorized/{quality}.png"}
    return {"overlay_url": f"/media/panoptic/{quality}.png",
            "segments": [{"id": 1, "category_id": 1}]}


def _valid_answer(task: Task) -> dict:
    """An answer body that fits the task's rating mode."""
    mode = task.project.rating_mode
    if mode == RatingMode.SCALE:
        return {"score": 4}
    if mode == RatingMode.PAIRWISE:
        return {"choice": "A"}
    return {"ranking": list(reversed(key_candidate_ids(task.key)))}


@pytest.fixture
def png_bytes() -> Callable[..., bytes]:
    return _png_bytes


@pytest.fixture
def valid_answer() -> Callable[[Task], dict]:
    return _valid_answer


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Images go to a temporary MEDIA_ROOT, never into var/; passwords hash fast in tests."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(username: str | None = None, *, password: str = PASSWORD, **fields):
        name = username or f"user{next(_serial)}"
        return get_user_model().objects.create_user(username=name, password=password, **fields)

    return make


@pytest.fixture
def make_project(db) -> Callable[..., Project]:
    def make(
        *,
        task: str = "detection",
        rating_mode: str = RatingMode.PAIRWISE,
        overlap: int = 1,
        n_items: int = 2,
        n_candidates: int = 2,
        ranking_k: int = 3,
        admins=(),
        annotators=(),
        viewers=(),
        name: str | None = None,
    ) -> Project:
        project = project_create(
            name=name or f"project {next(_serial)}", task=task, rating_mode=rating_mode,
            overlap=overlap, ranking_k=ranking_k, instructions="Pick the better output.",
            categories=CATEGORIES if task in ("detection", "panoptic") else [],
        )
        for role, users in ((Role.ADMIN, admins), (Role.ANNOTATOR, annotators),
                            (Role.VIEWER, viewers)):
            for user in users:
                membership_set(project=project, user=user, role=role)
        versions = [
            model_version_get_or_create(project=project, name=f"model-{i}")
            for i in range(n_candidates)
        ]
        for index in range(n_items):
            item = item_create(
                project=project, file_name=f"img_{index:04d}.png",
                image=_png_bytes(color=(10 * index % 255, 80, 160)),
                ground_truth={"objects": [{"bbox": [2, 3, 10, 8], "category_id": 1}]},
            )
            for quality, version in enumerate(versions):
                candidate_create(item=item, model_version=version,
                                 output=output_for(task, quality))
        tasks_create(project=project)
        return project

    return make


@pytest.fixture
def api_client_for(db) -> Callable[..., APIClient]:
    def make(user=None, *, session: bool = False) -> APIClient:
        if session:
            client = APIClient(enforce_csrf_checks=True)
            client.login(username=user.username, password=PASSWORD)
            return client
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def project_admin(make_user):
    return make_user("project-admin")


@pytest.fixture
def annotator(make_user):
    return make_user("annotator")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def project(make_project, project_admin, annotator) -> Project:
    return make_project(
        rating_mode=RatingMode.PAIRWISE, overlap=2, n_items=3, n_candidates=3,
        admins=[project_admin], annotators=[annotator], name="shapes pairwise",
    )


@pytest.fixture
def other_project(make_project, outsider) -> Project:
    return make_project(rating_mode=RatingMode.SCALE, annotators=[outsider], name="elsewhere")


@pytest.fixture
def anon_client(api_client_for) -> APIClient:
    return api_client_for(None)


@pytest.fixture
def admin_api(api_client_for, project_admin) -> APIClient:
    return api_client_for(project_admin)


@pytest.fixture
def annotator_api(api_client_for, annotator) -> APIClient:
    return api_client_for(annotator)


@pytest.fixture
def outsider_api(api_client_for, outsider, other_project) -> APIClient:
    return api_client_for(outsider)


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list]]:
    """Tasks sent to the broker, recorded instead of sent."""
    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: calls.append((name, args)))
    return calls
