"""`python manage.py demo_setup`: a demo to rate, on Synthetic Shapes images. Idempotent.

Creates (or completes) two detection projects whose candidates are ground truth perturbed at
three quality levels, one ModelVersion per level (boxes jittered, objects missed, classes
swapped, spurious boxes added): "Shapes detection: A vs B" (pairwise, overlap 2, 40 images) and
"Shapes detection: 1-5" (scale, overlap 2, 10 images). Users `admin` (superuser, admin of both)
and `annotator` (annotator of both) get the password in DEMO_PASSWORD, or a fresh random one;
the passwords are set and printed on every run.

With a trainer checkpoint (`--checkpoint PATH`, env DEMO_CHECKPOINT, or else the newest
`runs/**/*.pt` of the repository), the pairwise project also gets that model's outputs as
another ModelVersion: a greedy decode (sample 0) and one sampled at temperature 1 (sample 1).
A checkpoint that cannot be read or does not detect Synthetic Shapes' classes is reported and
left out; the perturbed outputs are always there.
"""

import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image

from labeling.services.task_creation import tasks_create
from projects.models import Candidate, Item, Project, RatingMode, Role, VisionTask
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from training.demo import CLASS_NAMES, api_objects, checkpoint_outputs, val_scene

IMAGE_SIZE = 192
CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]
INSTRUCTIONS = (
    "Each screen shows a model's detections (boxes with class labels) on a synthetic image. "
    "Judge how well they match the shapes you see: every shape found, tight boxes, right "
    "classes, nothing invented."
)


@dataclass(frozen=True)
class Quality:
    """How a simulated model gets ground truth wrong."""

    name: str
    jitter: float  # box edge noise, as a fraction of the box's size
    miss: float  # chance to drop an object
    wrong_class: float  # chance to report another class
    spurious: float  # mean number of invented boxes per image


QUALITIES = (
    Quality("shapes-detector-good", jitter=0.04, miss=0.0, wrong_class=0.03, spurious=0.1),
    Quality("shapes-detector-fair", jitter=0.12, miss=0.15, wrong_class=0.12, spurious=0.5),
    Quality("shapes-detector-poor", jitter=0.25, miss=0.35, wrong_class=0.3, spurious=1.2),
)


@dataclass(frozen=True)
class DemoProject:
    name: str
    rating_mode: str
    n_items: int
    first_scene: int


PROJECTS = (
    DemoProject("Shapes detection: A vs B", RatingMode.PAIRWISE, n_items=40, first_scene=0),
    DemoProject("Shapes detection: 1-5", RatingMode.SCALE, n_items=10, first_scene=40),
)


def perturbed_output(boxes: np.ndarray, classes: np.ndarray, quality: Quality, *, seed: int,
                     size: int) -> dict:
    """Ground truth (yxyx px, class indices) made wrong the way `quality` says, in the API's
    detection form: COCO [x, y, w, h] pixels and category ids."""
    rng = np.random.default_rng(seed)
    objects = []
    for (y0, x0, y1, x1), cls in zip(boxes.tolist(), classes.tolist(), strict=True):
        if rng.random() < quality.miss:
            continue
        h, w = y1 - y0, x1 - x0
        y0, y1 = np.array([y0, y1]) + rng.normal(0, quality.jitter * h, 2)
        x0, x1 = np.array([x0, x1]) + rng.normal(0, quality.jitter * w, 2)
        if rng.random() < quality.wrong_class:
            cls = int(rng.choice([c for c in range(len(CLASS_NAMES)) if c != cls]))
        objects.append((x0, y0, x1, y1, cls, rng.uniform(0.6, 0.99)))
    for _ in range(rng.poisson(quality.spurious)):
        side = rng.uniform(0.1, 0.35) * size
        x0, y0 = rng.uniform(0, size - side, 2)
        objects.append((x0, y0, x0 + side, y0 + side, int(rng.integers(len(CLASS_NAMES))),
                        rng.uniform(0.2, 0.7)))
    return api_objects(objects, size, size)


def ground_truth(boxes: np.ndarray, classes: np.ndarray) -> dict:
    """The scene's objects in the API's detection form, without scores."""
    return {"objects": [
        {"bbox": [round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1)],
         "category_id": int(cls) + 1}
        for (y0, x0, y1, x1), cls in zip(boxes.tolist(), classes.tolist(), strict=True)
    ]}


def find_checkpoint(option: str | None) -> Path | None:
    chosen = option or os.environ.get("DEMO_CHECKPOINT")
    if chosen:
        return Path(chosen)
    found = sorted((Path(settings.BASE_DIR) / "runs").glob("**/*.pt"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Create the demo projects, images, model outputs and users (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--checkpoint", help="a trainer checkpoint whose outputs to add")

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD") or ""
        users = {
            "admin": self._user("admin", password or secrets.token_urlsafe(9), superuser=True),
            "annotator": self._user("annotator", password or secrets.token_urlsafe(9)),
        }
        checkpoint = find_checkpoint(options.get("checkpoint"))
        for spec in PROJECTS:
            use = checkpoint if spec.rating_mode == RatingMode.PAIRWISE else None
            self._project(spec, users, use)
        self.stdout.write("")
        self.stdout.write("Demo users (passwords reset on every run):")
        for name, (_, secret) in users.items():
            self.stdout.write(f"  {name:10s} password: {secret}")

    def _user(self, username: str, password: str, *, superuser: bool = False):
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = superuser
        user.set_password(password)
        user.save()
        return user, password

    @transaction.atomic
    def _project(self, spec: DemoProject, users: dict, checkpoint: Path | None) -> None:
        admin, annotator = users["admin"][0], users["annotator"][0]
        project = Project.objects.filter(name=spec.name).first() or project_create(
            name=spec.name, task=VisionTask.DETECTION, rating_mode=spec.rating_mode,
            overlap=2, instructions=INSTRUCTIONS, categories=CATEGORIES, created_by=admin,
        )
        membership_set(project=project, user=admin, role=Role.ADMIN)
        membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
        versions = [
            model_version_get_or_create(
                project=project, name=q.name,
                description=f"Ground truth perturbed: jitter {q.jitter}, miss {q.miss}, "
                            f"wrong class {q.wrong_class}, spurious {q.spurious}/image.",
            )
            for q in QUALITIES
        ]
        have_items = {i.file_name: i for i in Item.objects.filter(project=project)}
        have = set(Candidate.objects.filter(item__project=project)
                   .values_list("item_id", "model_version_id"))
        scenes = []
        for index in range(spec.first_scene, spec.first_scene + spec.n_items):
            seed, scene = val_scene(index, IMAGE_SIZE)
            file_name = f"shapes_val_{index:05d}.png"
            item = have_items.get(file_name) or item_create(
                project=project, file_name=file_name, image=png(scene.image),
                ground_truth=ground_truth(scene.boxes, scene.classes),
            )
            scenes.append((item, scene))
            for level, (quality, version) in enumerate(zip(QUALITIES, versions, strict=True)):
                if (item.pk, version.pk) in have:
                    continue
                candidate_create(
                    item=item, model_version=version,
                    output=perturbed_output(scene.boxes, scene.classes, quality,
                                            seed=seed * 10 + level, size=IMAGE_SIZE),
                )
        if checkpoint is not None:
            self._checkpoint_candidates(project, checkpoint, scenes, have)
        created = tasks_create(project=project)
        self.stdout.write(
            f"{project.name}: {project.items.count()} images, "
            f"{Candidate.objects.filter(item__project=project).count()} candidates, "
            f"{project.tasks.count()} tasks ({created} new), rating mode {project.rating_mode}."
        )

    def _checkpoint_candidates(self, project: Project, path: Path, scenes: list,
                               have: set) -> None:
        try:
            name, outputs = checkpoint_outputs(path, [scene for _, scene in scenes])
        except Exception as error:  # a foreign or broken file must not stop the demo
            self.stdout.write(f"Checkpoint {path} left out: {error}")
            return
        version = model_version_get_or_create(
            project=project, name=name, description=f"Outputs of the trainer checkpoint {path}."
        )
        for (item, _), per_scene in zip(scenes, outputs, strict=True):
            if (item.pk, version.pk) in have:
                continue
            for sample_index, output in enumerate(per_scene):
                candidate_create(item=item, model_version=version, output=output,
                                 sample_index=sample_index)
        self.stdout.write(f"{project.name}: outputs of {name} added.")
