"""Fixtures for the browser tests: Debian's chromium driven by Playwright against pytest-django's
live_server, and projects built with the platform's own services on Synthetic Shapes scenes.

- `browser` (session, tests/conftest.py): Debian's chromium; the tests skip when it is absent.
- `page`: a fresh browser context and page, 1280 x 800; JavaScript errors fail the test.
- `shapes_project(task=..., rating_mode=..., n_items=..., n_candidates=..., objects=...)` ->
  ShapesProject: the project, its admin and its annotator (password PASSWORD), on real Synthetic
  Shapes images with candidate outputs of varied quality for the vision task (for detection,
  `objects` replaces every output's objects: a crowded image, say).
- `log_in(page, live_server, user)`: logs in through the login form.
"""

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from labeling.services.task_creation import tasks_create
from projects.models import Project, Role
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from trainer.data.shapes import CLASS_NAMES, Scene, generate_scene, scene_seed

PASSWORD = "shapes-are-fun-42"
CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]
_serial = count()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh page; a JavaScript error it throws (uncaught, or a rejected promise nobody
    handled) fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Images go to a temporary MEDIA_ROOT (live_server serves it); passwords hash fast."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def log_in() -> Callable[..., None]:
    def log_in(page, live_server, user) -> None:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return log_in


@dataclass
class ShapesProject:
    project: Project
    admin: object
    annotator: object


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _media_url(name: str, content: bytes) -> str:
    return default_storage.url(default_storage.save(name, ContentFile(content)))


def _detection(scene: Scene, quality: int) -> dict:
    """The scene's boxes, worse as `quality` grows: shifted, and the last object missed."""
    kept = len(scene.boxes) - (1 if quality >= 2 and len(scene.boxes) > 1 else 0)
    objects = []
    for (ymin, xmin, ymax, xmax), cls in zip(scene.boxes[:kept], scene.classes[:kept],
                                             strict=True):
        shift = 3.0 * quality
        objects.append({
            "bbox": [float(xmin) + shift, float(ymin), float(xmax - xmin), float(ymax - ymin)],
            "category_id": int(cls) + 1,
            "score": round(0.95 - 0.2 * quality, 2),
        })
    return {"objects": objects}


def _colorization(scene: Scene, quality: int, name: str) -> dict:
    """The true colours, then channel-swapped and washed-out versions."""
    image = scene.image
    if quality == 1:
        image = image[:, :, ::-1]
    elif quality >= 2:
        image = ((image.astype(np.float32) + 2 * scene.gray[..., None]) / 3).astype(np.uint8)
    content = _png(np.ascontiguousarray(image))
    return {"image_url": _media_url(f"colorized/{name}_{quality}.png", content)}


def _panoptic(scene: Scene, quality: int, name: str) -> dict:
    """Segment ids as a COCO panoptic PNG (id = R + 256 G + 65536 B); worse outputs lose their
    last segment. The best output comes as the import stores it (the ids at `png_url` beside a
    drawn translucent overlay), the others as docs/api.md shows (the ids at `overlay_url`)."""
    ids = scene.panoptic.copy()
    k = len(scene.classes)
    if quality >= 1 and k > 1:
        ids[ids == k] = 0
        k -= 1
    rgb = np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)
    segments = [{"id": i + 1, "category_id": int(scene.classes[i]) + 1} for i in range(k)]
    ids_url = _media_url(f"panoptic/{name}_{quality}.png", _png(rgb))
    if quality >= 1:
        return {"overlay_url": ids_url, "segments": segments}
    drawn = np.zeros((*ids.shape, 4), dtype=np.uint8)
    drawn[ids > 0] = (255, 0, 255, 110)
    overlay_url = _media_url(f"panoptic/{name}_{quality}_overlay.png", _png(drawn))
    return {"png_url": ids_url, "overlay_url": overlay_url, "segments": segments}


def _captioning(scene: Scene, quality: int, other: Scene) -> dict:
    """The scene's own caption, then captions of another scene."""
    if quality == 0:
        return {"caption": scene.captions[0]}
    return {"caption": other.captions[quality % len(other.captions)]}


def _output(task: str, scene: Scene, quality: int, name: str) -> dict:
    if task == "detection":
        return _detection(scene, quality)
    if task == "colorization":
        return _colorization(scene, quality, name)
    if task == "panoptic":
        return _panoptic(scene, quality, name)
    return _captioning(scene, quality, generate_scene(scene.seed + 1000))


@pytest.fixture
def shapes_project(transactional_db) -> Callable[..., ShapesProject]:
    def make(
        *, task: str = "detection", rating_mode: str = "scale", n_items: int = 4,
        n_candidates: int = 1, ranking_k: int = 3, objects: list[dict] | None = None,
    ) -> ShapesProject:
        serial = next(_serial)
        users = get_user_model().objects
        admin = users.create_user(f"admin{serial}", password=PASSWORD)
        annotator = users.create_user(f"annotator{serial}", password=PASSWORD)
        project = project_create(
            name=f"Shapes {task} {rating_mode} {serial}", task=task, rating_mode=rating_mode,
            ranking_k=ranking_k, created_by=admin,
            instructions="Judge how well the output describes the image.\n"
                         "Look at every object: missing or misplaced ones count against it.",
            categories=CATEGORIES if task in ("detection", "panoptic") else [],
        )
        membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
        versions = [model_version_get_or_create(project=project, name=f"model-{q}")
                    for q in range(n_candidates)]
        for index in range(n_items):
            scene = generate_scene(scene_seed("val", index))
            pixels = np.repeat(scene.gray[..., None], 3, axis=2) if task == "colorization" \
                else scene.image
            name = f"p{project.pk}_scene_{index:03d}"
            item = item_create(project=project, file_name=f"{name}.png", image=_png(pixels))
            for quality, version in enumerate(versions):
                output = _output(task, scene, quality, name) if objects is None \
                    else {"objects": objects}
                candidate_create(item=item, model_version=version, output=output)
        tasks_create(project=project)
        return ShapesProject(project=project, admin=admin, annotator=annotator)

    return make
