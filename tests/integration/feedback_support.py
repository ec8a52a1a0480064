"""Shared by the tests of feedback on captioning, colorization and panoptic projects: items made
from Synthetic Shapes scenes with their ground truth (reference captions; the id PNG and
segments of the scene's panoptic map; colorization's truth is the item's own image), candidates
of graded quality spoilt from that truth, and an annotator who answers the queue by quality.

Quality 0 is the best candidate, each step a worse one, by the task's gold score:
- captioning: a reference caption; then it with its colours swapped for others; then a caption
  that names no shape or colour;
- colorization: the true colours, then less and less of them (towards the greyscale);
- panoptic: the true map; then it moved a pixel right; then all background.
"""

import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from ingest.panoptic import overlay_png
from labeling.services.task_creation import tasks_create
from projects.models import Project, RatingMode, Role
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from tests.integration import tuning_support
from tests.integration.task_support import SHAPES_PANOPTIC
from trainer.data.coco_panoptic import (
    SHAPES_PANOPTIC_CATEGORIES,
    id_to_rgb,
    panoptic_to_segments,
    scene_panoptic,
)
from trainer.data.shapes import (
    COLOR_NAMES,
    ShapesConfig,
    generate_scene,
    scene_seed,
)

SCENES = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2)
BARE_CAPTION = "there is a single shape"


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _stored(name: str, data: bytes) -> str:
    return default_storage.url(default_storage.save(name, ContentFile(data)))


def task_project(task: str, *, admins=(), annotators=(), name: str | None = None,
                 rating_mode: str = RatingMode.PAIRWISE) -> Project:
    """A project of `task` (panoptic: Synthetic Shapes' panoptic categories)."""
    project = project_create(name=name or f"shapes {task}", task=task, rating_mode=rating_mode,
                             categories=SHAPES_PANOPTIC if task == "panoptic" else [])
    for role, users in ((Role.ADMIN, admins), (Role.ANNOTATOR, annotators)):
        for user in users:
            membership_set(project=project, user=user, role=role)
    return project


def _swap_colours(caption: str) -> str:
    return " ".join(COLOR_NAMES[(COLOR_NAMES.index(w) + 3) % len(COLOR_NAMES)]
                    if w in COLOR_NAMES else w for w in caption.split())


def _caption(scene, quality: int, stem: str) -> dict:
    caption = scene.captions[0]
    return {"caption": [caption, _swap_colours(caption), BARE_CAPTION][quality]}


def _colorized(scene, quality: int, stem: str) -> dict:
    share = 1.0 - quality / 2  # of the true colours; the rest the greyscale
    gray = scene.gray[..., None].astype(np.float64)
    pixels = np.clip(gray + share * (scene.image - gray), 0, 255).round().astype(np.uint8)
    return {"image_url": _stored(f"{stem}.png", _png(pixels))}


def _panoptic(panoptic: np.ndarray, stem: str) -> dict:
    """A panoptic map in SHAPES_PANOPTIC_CATEGORIES' positions as the import stores one."""
    ids, segments = panoptic_to_segments(panoptic, list(SHAPES_PANOPTIC_CATEGORIES))
    return {"png_url": _stored(f"{stem}.png", _png(id_to_rgb(ids))),
            "overlay_url": _stored(f"{stem}_overlay.png", overlay_png(ids)),
            "segments": [{"id": s["id"], "category_id": s["category_id"]} for s in segments]}


def _spoilt_panoptic(scene, quality: int, stem: str) -> dict:
    panoptic = scene_panoptic(scene).copy()  # positions: 0 background, k + 1 class k
    if quality == 1:
        panoptic = np.roll(panoptic, 1, axis=1)
    elif quality == 2:
        panoptic[...] = 0
    return _panoptic(panoptic, stem)


_SPOILERS = {"captioning": _caption, "colorization": _colorized, "panoptic": _spoilt_panoptic}


def add_scene_items(project: Project, *, n_items: int = 6, n_candidates: int = 3,
                    split: str = "train") -> dict[int, int]:
    """Items of Synthetic Shapes scenes with their ground truth and candidates of graded
    quality (see the module docstring), and their tasks. Returns candidate id -> quality."""
    task = project.task
    versions = [model_version_get_or_create(project=project, name=f"graded-{q}")
                for q in range(n_candidates)]
    quality = {}
    for index in range(n_items):
        scene = generate_scene(scene_seed(split, index), SCENES)
        folder = f"projects/{project.pk}"
        truth = None
        if task == "captioning":
            truth = {"captions": list(scene.captions)}
        elif task == "panoptic":
            truth = _panoptic(scene_panoptic(scene), f"{folder}/ground_truth/scene_{index}")
        item = item_create(project=project, file_name=f"scene_{index}.png",
                           image=_png(scene.image), ground_truth=truth)
        for q, version in enumerate(versions):
            stem = f"{folder}/outputs/graded/scene_{index}_{q}"
            output = _SPOILERS[task](scene, q, stem)
            quality[candidate_create(item=item, model_version=version, output=output).pk] = q
    tasks_create(project=project)
    return quality


def answer_by_quality(project: Project, annotator, quality: dict[int, int]) -> int:
    """`annotator` answers every task of the queue preferring the better candidate (three
    quality levels over the whole 1-5 scale)."""
    return tuning_support.answer_by_quality(project, annotator, quality, score_step=2)
