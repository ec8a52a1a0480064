"""Shared by the tuning and reward-model tests: a tiny pretrained detection checkpoint, a tiny
run config, and a detection project on Synthetic Shapes' classes with an admin-owned
ModelVersion that has the checkpoint.

The checkpoint comes from the trainer's real `pretrain` (two steps of a 32 px, one-layer
model), made once per test session; runs on it take about a second.
"""

import functools
import tempfile
from pathlib import Path

from django.core.files.base import ContentFile

from projects.models import ModelVersion, Project, RatingMode, Role
from projects.services import membership_set, model_version_get_or_create, project_create
from trainer.data.shapes import CLASS_NAMES
from trainer.train.config import DataConfig, DetectionTaskConfig, ModelConfig, PretrainConfig
from trainer.train.loops import pretrain

TINY_MODEL = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1,
                         mlp_ratio=2)
TINY_TASK = DetectionTaskConfig(max_boxes=4)
# What a run's API body carries: tiny data and a few REINFORCE steps, every step logged.
TINY_DATA = {"max_objects": 3, "eval_images": 4}
SHAPES_CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)]


def tiny_tune_config(**changes: object) -> dict:
    return {"steps": 4, "batch_size": 2, "samples": 2, "warmup": 1, "log_every": 1,
            "threads": 1, **changes}


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


def shapes_project(*, admins=(), annotators=(), name: str = "shapes detection") -> Project:
    """A detection project whose categories are Synthetic Shapes' classes."""
    project = project_create(name=name, task="detection", rating_mode=RatingMode.PAIRWISE,
                             categories=SHAPES_CATEGORIES)
    for role, users in ((Role.ADMIN, admins), (Role.ANNOTATOR, annotators)):
        for user in users:
            membership_set(project=project, user=user, role=role)
    return project


def version_with_checkpoint(project: Project, name: str = "mle",
                            content: bytes | None = None) -> ModelVersion:
    version = model_version_get_or_create(project=project, name=name)
    version.checkpoint.save(f"{name}.pt", ContentFile(content or tiny_checkpoint_bytes()))
    return version
