"""Shared by the tuning and reward-model tests: a tiny pretrained detection checkpoint, a tiny
run config, a detection project on Synthetic Shapes' classes with a ModelVersion that has the
checkpoint, and items with candidates answered by an annotator through the real services (and a
tiny reward model trained on those answers).

The checkpoint comes from the trainer's real `pretrain` (two steps of a 32 px, one-layer
model), made once per test session; runs on it take about a second.
"""

import contextlib
import functools
import io
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.core.files.base import ContentFile
from PIL import Image

from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from labeling.services.task_creation import tasks_create
from projects.models import ModelVersion, Project, RatingMode, Role
from projects.services import (
    candidate_create,
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from rewards.models import RewardModel
from rewards.services import reward_model_launch
from trainer.configs import DataConfig, DetectionTaskConfig, ModelConfig, PretrainConfig
from trainer.data.shapes import CLASS_NAMES
from trainer.train.loops import pretrain
from training.checkpoints import describe_version
from training.reward_model import train_project_reward_model

TINY_MODEL = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1,
                         mlp_ratio=2)
TINY_TASK = DetectionTaskConfig(max_boxes=4)
# What a run's API body carries: tiny data and a few REINFORCE steps, every step logged.
TINY_DATA = {"max_objects": 3, "eval_images": 4}
SHAPES_CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]
# The one object of every graded item (`add_graded_items`), COCO [x, y, w, h] pixels.
TRUE_BOX = {"bbox": [4, 4, 12, 10], "category_id": 1}
# A reward model of two steps on 32 px images.
TINY_REWARD_MODEL = {"image_size": 32, "width": 8, "stages": 2, "steps": 2, "batch_size": 4,
                     "eval_every": 2, "threads": 1}


def tiny_tune_config(**changes: object) -> dict:
    # Held-out selection on 4 images (at the start and after the last step) keeps runs fast.
    return {"steps": 4, "batch_size": 2, "samples": 2, "warmup": 1, "log_every": 1,
            "threads": 1, "select_images": 4, **changes}


@functools.cache
def tiny_checkpoint_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mle.pt"
        pretrain(
            TINY_MODEL, TINY_TASK, DataConfig(**TINY_DATA),
            PretrainConfig(steps=2, batch_size=4, warmup=1, log_every=1, threads=1),
            checkpoint_path=path, progress=False,
        )
        return path.read_bytes()


def shapes_project(*, admins=(), annotators=(), name: str = "shapes detection",
                   rating_mode: str = RatingMode.PAIRWISE) -> Project:
    """A detection project whose categories are Synthetic Shapes' classes."""
    project = project_create(name=name, task="detection", rating_mode=rating_mode,
                             categories=SHAPES_CATEGORIES)
    for role, users in ((Role.ADMIN, admins), (Role.ANNOTATOR, annotators)):
        for user in users:
            membership_set(project=project, user=user, role=role)
    return project


def version_with_checkpoint(project: Project, name: str = "mle",
                            content: bytes | None = None) -> ModelVersion:
    """A version with the checkpoint uploaded and read by a worker (in-process here)."""
    version = model_version_get_or_create(project=project, name=name)
    version.checkpoint.save(f"{name}.pt", ContentFile(content or tiny_checkpoint_bytes()))
    describe_version(version)
    return version


def _png(width: int, height: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 90, 200 - shade)).save(buffer, format="PNG")
    return buffer.getvalue()


def candidate_output(quality: int) -> dict:
    """A detection output: quality 0 is TRUE_BOX; each step shifts the box a pixel right, which
    lowers the detection reward (1.0, 0.7, 0.5, 0.2 for qualities 0-3)."""
    return {"objects": [{"bbox": [4 + quality, 4, 12, 10], "category_id": 1, "score": 0.9}]}


def add_graded_items(project: Project, *, n_items: int = 6, n_candidates: int = 3,
                     ground_truth: bool = False) -> dict[int, int]:
    """Items (32 x 24 PNGs, optionally with the ground truth TRUE_BOX) with candidates of
    graded quality, and their tasks. Returns candidate id -> quality (0 = best)."""
    versions = [model_version_get_or_create(project=project, name=f"graded-{q}")
                for q in range(n_candidates)]
    quality = {}
    for index in range(n_items):
        item = item_create(project=project, file_name=f"scene_{index}.png",
                           image=_png(32, 24, 20 * index),
                           ground_truth={"objects": [TRUE_BOX]} if ground_truth else None)
        for q, version in enumerate(versions):
            quality[candidate_create(item=item, model_version=version,
                                     output=candidate_output(q)).pk] = q
    tasks_create(project=project)
    return quality


def add_feedback(project: Project, annotator, *, n_items: int = 6, n_candidates: int = 3) -> int:
    """Graded items (`add_graded_items`), every task answered by `annotator` through the queue,
    preferring the better output. Returns the answers given."""
    quality = add_graded_items(project, n_items=n_items, n_candidates=n_candidates)
    return answer_by_quality(project, annotator, quality)


def answer_by_quality(project: Project, annotator, quality: dict[int, int], *,
                      score_step: int = 1) -> int:
    """`annotator` answers every task of the queue preferring the better candidate (quality 0
    is best; a 1-5 rating is 5 less `score_step` per quality level). Returns the answers."""
    answers = 0
    while (assignment := next_task_for(user=annotator, project=project)) is not None:
        shown = [slot.candidate_id for slot in assignment.task.slots.order_by("position")]
        if project.rating_mode == RatingMode.SCALE:
            answer = {"score": 5 - score_step * quality[shown[0]]}
        elif project.rating_mode == RatingMode.PAIRWISE:
            answer = {"choice": "A" if quality[shown[0]] < quality[shown[1]] else "B"}
        else:
            answer = {"ranking": sorted(shown, key=quality.get)}
        answer_submit(user=annotator, task=assignment.task, answer=answer,
                      idempotency_key=str(uuid.uuid4()))
        answers += 1
    return answers


def trained_reward_model(project: Project, annotator) -> RewardModel:
    """`annotator` (made an annotator of the project) answers graded items (`add_feedback`),
    and a tiny reward model is trained on the answers in-process."""
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    add_feedback(project, annotator)
    reward_model = reward_model_launch(project=project, config=TINY_REWARD_MODEL)
    train_project_reward_model(reward_model.pk, worker="w0")
    reward_model.refresh_from_db()
    return reward_model


@contextlib.contextmanager
def run_page(browser, live_server, run_id: int, *, username: str, password: str
             ) -> Iterator[object]:
    """A logged-in browser page on the run's page; fails the test if the page threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(f"{live_server.url}/login/")
    opened.fill("#id_username", username)
    opened.fill("#id_password", password)
    opened.click("button[type=submit]")
    opened.wait_for_url(f"{live_server.url}/")
    opened.goto(f"{live_server.url}/tuning/runs/{run_id}/")
    yield opened
    context.close()
    assert not errors, f"the page threw: {errors}"
