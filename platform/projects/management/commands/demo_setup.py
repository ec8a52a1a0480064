"""`python manage.py demo_setup`: a demo to rate on every task, on Synthetic Shapes images.
Idempotent: a second run creates nothing new.

Creates (or completes) one project per row of `PROJECTS`, covering the four tasks and the three
rating modes: detection A vs B (40 images) and 1-5 (10 images), captioning ranked three at a
time, colorization A vs B and panoptic segmentation 1-5 (16 images each), all with overlap 2.
Each has three simulated models, ground truth made wrong at three quality levels
(`training.demo_outputs`), whose image outputs are PNGs under
`projects/<id>/outputs/<random>/`, a folder that names neither the model nor its quality.
Users `admin` (superuser, admin of every demo project) and `annotator` (annotator of every one)
get the password in DEMO_PASSWORD, or a fresh random one; the passwords are set and printed on
every run.

Each project's starting model is trained by the worker in the background (`--train-seconds`, 0
for none): queued here while the project's demo model is missing (`projects.demo_training`), its
samples become the project's next candidates. Until then the simulated outputs are there to rate.

With a trainer checkpoint (`--checkpoint PATH`, env DEMO_CHECKPOINT, or else the newest
`runs/**/*.pt` of the repository), the detection A vs B project also gets that model's outputs
as another ModelVersion: a greedy decode (sample 0) and one sampled at temperature 1 (sample 1).
A checkpoint that cannot be read or does not detect Synthetic Shapes' classes is reported and
left out; the simulated outputs are always there.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from labeling.services.task_creation import tasks_create
from projects.demo_training import demo_training_request
from projects.models import Candidate, Item, Project, RatingMode, Role, VisionTask
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from training.demo import (
    CLASS_NAMES,
    LEVELS,
    Store,
    candidate_output,
    checkpoint_outputs,
    ground_truth,
    item_png,
    val_scene,
)

IMAGE_SIZE = 192
CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]
INSTRUCTIONS = {
    VisionTask.DETECTION: (
        "Each screen shows a model's detections (boxes with class labels) on a synthetic "
        "image. Judge how well they match the shapes you see: every shape found, tight boxes, "
        "right classes, nothing invented."),
    VisionTask.CAPTIONING: (
        "Each screen shows captions of a synthetic image. Rank them by how truly they describe "
        "it: the right colours, the right shapes and the right number of objects."),
    VisionTask.COLORIZATION: (
        "Each screen shows colorizations of a greyscale image of coloured shapes. Prefer the "
        "one whose colours look natural and clean: saturated, no colour drifting over shapes "
        "or background."),
    VisionTask.PANOPTIC: (
        "Each screen shows a model's segments (one colour per class, outlined) over a synthetic "
        "image. Judge how well they cover each shape: whole shapes, one segment per shape, "
        "right classes."),
}
# Steps are capped far above what the time budget allows: time ends the demo's trainings.
TRAIN_STEPS = 100_000


@dataclass(frozen=True)
class DemoProject:
    name: str
    task: str
    rating_mode: str
    n_items: int
    first_scene: int
    train_seconds: float  # the starting model's budget (--train-seconds replaces it)
    ranking_k: int = 3


# In this order the worker trains their models: the first loop's project first.
PROJECTS = (
    DemoProject("Shapes detection: A vs B", VisionTask.DETECTION, RatingMode.PAIRWISE,
                n_items=40, first_scene=0, train_seconds=120),
    DemoProject("Shapes captioning: rank 3", VisionTask.CAPTIONING, RatingMode.RANKING,
                n_items=16, first_scene=50, train_seconds=60, ranking_k=3),
    DemoProject("Shapes colorization: A vs B", VisionTask.COLORIZATION, RatingMode.PAIRWISE,
                n_items=16, first_scene=70, train_seconds=60),
    DemoProject("Shapes panoptic: 1-5", VisionTask.PANOPTIC, RatingMode.SCALE,
                n_items=16, first_scene=90, train_seconds=90),
    DemoProject("Shapes detection: 1-5", VisionTask.DETECTION, RatingMode.SCALE,
                n_items=10, first_scene=40, train_seconds=120),
)


def find_checkpoint(option: str | None) -> Path | None:
    chosen = option or os.environ.get("DEMO_CHECKPOINT")
    if chosen:
        return Path(chosen)
    found = sorted((Path(settings.BASE_DIR) / "runs").glob("**/*.pt"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def media_store(folder: str, stem: str) -> Store:
    """Files of one output under MEDIA_ROOT/`folder`, named after the item (`stem` + suffix)."""
    def store(suffix: str, data: bytes) -> str:
        return default_storage.url(default_storage.save(f"{folder}/{stem}{suffix}",
                                                        ContentFile(data)))
    return store


class Command(BaseCommand):
    help = "Create the demo projects, images, model outputs and users (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--checkpoint", help="a trainer checkpoint whose outputs to add")
        parser.add_argument("--train-seconds", type=float, default=None,
                            help="budget of each project's starting model, trained by the "
                                 "worker (default: per task, 60-120 s; 0: train none)")

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD") or ""
        users = {
            "admin": self._user("admin", password or secrets.token_urlsafe(9), superuser=True),
            "annotator": self._user("annotator", password or secrets.token_urlsafe(9)),
        }
        checkpoint = find_checkpoint(options.get("checkpoint"))
        seconds = options.get("train_seconds")
        for spec in PROJECTS:
            use = checkpoint if spec.name == PROJECTS[0].name else None
            project = self._project(spec, users, use)
            self._train(project, spec.train_seconds if seconds is None else seconds)
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
    def _project(self, spec: DemoProject, users: dict, checkpoint: Path | None) -> Project:
        admin, annotator = users["admin"][0], users["annotator"][0]
        project = Project.objects.filter(name=spec.name).first() or project_create(
            name=spec.name, task=spec.task, rating_mode=spec.rating_mode, overlap=2,
            ranking_k=spec.ranking_k, instructions=INSTRUCTIONS[spec.task],
            categories=[] if spec.task == VisionTask.CAPTIONING else CATEGORIES,
            created_by=admin,
        )
        membership_set(project=project, user=admin, role=Role.ADMIN)
        membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
        levels = LEVELS[spec.task]
        versions = [model_version_get_or_create(project=project, name=level.name,
                                                description=level.describe())
                    for level in levels]
        have_items = {i.file_name: i for i in Item.objects.filter(project=project)}
        have = set(Candidate.objects.filter(item__project=project)
                   .values_list("item_id", "model_version_id"))
        scenes = []
        for index in range(spec.first_scene, spec.first_scene + spec.n_items):
            seed, scene = val_scene(index, IMAGE_SIZE)
            file_name = f"shapes_val_{index:05d}.png"
            stem = Path(file_name).stem
            item = have_items.get(file_name) or item_create(
                project=project, file_name=file_name, image=item_png(spec.task, scene),
                ground_truth=ground_truth(
                    spec.task, scene, media_store(f"projects/{project.pk}/ground_truth", stem)),
            )
            scenes.append((item, scene))
            for level, version in enumerate(versions):
                if (item.pk, version.pk) in have:
                    continue
                # A folder of its own, whose random name tells annotators nothing of the model.
                store = media_store(f"projects/{project.pk}/outputs/{secrets.token_hex(8)}", stem)
                candidate_create(item=item, model_version=version, output=candidate_output(
                    spec.task, scene, level, seed=seed * 10 + level, store=store))
        if checkpoint is not None:
            self._checkpoint_candidates(project, checkpoint, scenes, have)
        created = tasks_create(project=project)
        self.stdout.write(
            f"{project.name}: {project.items.count()} images, "
            f"{Candidate.objects.filter(item__project=project).count()} candidates, "
            f"{project.tasks.count()} tasks ({created} new), rating mode {project.rating_mode}."
        )
        return project

    def _train(self, project: Project, seconds: float) -> None:
        if seconds <= 0:
            return
        training, sent = demo_training_request(project=project, max_seconds=seconds,
                                               max_steps=TRAIN_STEPS)
        if sent:
            self.stdout.write(f"{project.name}: the worker trains its starting model "
                              f"({training.max_seconds:g} s), then adds its samples.")

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
