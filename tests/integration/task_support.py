"""Shared by the tests of the loop on captioning, colorization and panoptic projects: a tiny
pretrained checkpoint of each task and a project of that task whose categories name the
model's classes.

Each checkpoint comes from the trainer's real `pretrain` (two steps of a 32 px model with a
one-layer or one-block body), made once per test session per task.
"""

import functools
import tempfile
from pathlib import Path

from projects.models import Project
from tests.integration.tuning_support import TINY_DATA, TINY_MODEL
from trainer.configs import (
    CaptioningTaskConfig,
    ColorizationTaskConfig,
    DataConfig,
    PanopticTaskConfig,
    PretrainConfig,
)
from trainer.data.coco_panoptic import SHAPES_PANOPTIC_CATEGORIES
from trainer.models.colorizer import ColorizerConfig
from trainer.train.loops import pretrain

SHAPES_TASKS = ("captioning", "colorization", "panoptic")
TINY_COLORIZER = ColorizerConfig(image_size=32, width=8, blocks=1)
TINY_CONFIGS = {
    "captioning": (TINY_MODEL, CaptioningTaskConfig(max_words=24, idf_images=8)),
    "colorization": (TINY_COLORIZER, ColorizationTaskConfig()),
    "panoptic": (TINY_COLORIZER, PanopticTaskConfig()),
}
# A panoptic project imported from Synthetic Shapes' COCO panoptic files has these categories.
SHAPES_PANOPTIC = [{"id": c["id"], "name": c["name"]} for c in SHAPES_PANOPTIC_CATEGORIES]


@functools.cache
def tiny_task_checkpoint_bytes(task: str) -> bytes:
    """A checkpoint of `task` after two MLE steps on Synthetic Shapes."""
    model, task_config = TINY_CONFIGS[task]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{task}.pt"
        pretrain(
            model, task_config, DataConfig(**TINY_DATA),
            PretrainConfig(steps=2, batch_size=4, warmup=1, log_every=1, threads=1),
            checkpoint_path=path, task_name=task, progress=False,
        )
        return path.read_bytes()


def with_shapes_categories(project: Project) -> Project:
    """A panoptic project whose categories are the Synthetic Shapes panoptic ones (the model's
    classes and the background); other projects as they are."""
    if project.task == "panoptic":
        project.categories = SHAPES_PANOPTIC
        project.save(update_fields=["categories"])
    return project
