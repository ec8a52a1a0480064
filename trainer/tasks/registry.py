"""The tasks a run can train, by name: each name's config classes and how to build its task
and model. Checkpoints store the name ("detection" for those written before it existed), so
`Checkpoint.build` and the loops need no per-task branches.

Captioning, colorization and panoptic segmentation train on Synthetic Shapes only (their targets
come from the scenes' captions, colours and panoptic maps); detection also trains on a user's
COCO folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from trainer.configs import DetectionTaskConfig, ModelConfig
from trainer.data.shapes import Scene, ShapesConfig
from trainer.models.colorizer import Colorizer, ColorizerConfig
from trainer.models.panoptic_net import PanopticNet
from trainer.models.pix2seq import Pix2SeqModel
from trainer.tasks.captioning import CaptioningTask, CaptioningTaskConfig, evaluate_captions
from trainer.tasks.colorization import (
    ColorizationTask,
    ColorizationTaskConfig,
    evaluate_colorization,
)
from trainer.tasks.detection import DetectionTask
from trainer.tasks.panoptic import PanopticTask, PanopticTaskConfig, evaluate_panoptic


@dataclass(frozen=True)
class TaskEntry:
    """One task: its configs, `make_task(config, class_names, shapes)`,
    `make_model(model_config, spec)` and, for the tasks that learn from Synthetic Shapes
    scenes only, `evaluate_scenes(model, task, scenes) -> metrics` (detection has its own
    COCO evaluation in `trainer.train.evaluate`). `fixed` names the task settings that shape
    the model (its vocabulary or output grid): a checkpoint's cannot change when tuning."""

    task_config: type
    model_config: type
    make_task: Callable[[Any, Sequence[str], ShapesConfig], Any]
    make_model: Callable[[Any, Any], nn.Module]
    evaluate_scenes: Callable[[Any, Any, Sequence[Scene]], dict[str, float]] | None = None
    fixed: tuple[str, ...] = ()

    @property
    def shapes_only(self) -> bool:
        """Trains on Synthetic Shapes scenes only (its targets come from the scenes)."""
        return self.evaluate_scenes is not None


TASKS: dict[str, TaskEntry] = {
    "detection": TaskEntry(
        DetectionTaskConfig, ModelConfig,
        lambda config, names, shapes: DetectionTask(config, len(names)),
        Pix2SeqModel, fixed=("coord_bins", "conf_bins", "max_boxes"),
    ),
    "captioning": TaskEntry(
        # CIDEr-D's idf is computed from the training scenes, so it depends on `shapes`.
        CaptioningTaskConfig, ModelConfig,
        lambda config, names, shapes: CaptioningTask(config, shapes),
        Pix2SeqModel, evaluate_captions, fixed=("max_words", "max_count"),
    ),
    "colorization": TaskEntry(
        ColorizationTaskConfig, ColorizerConfig,
        lambda config, names, shapes: ColorizationTask(config),
        Colorizer, evaluate_colorization, fixed=("patch", "ab_bins", "ab_max"),
    ),
    "panoptic": TaskEntry(
        # The model is the colorizer's network over RGB (trainer.models.panoptic_net).
        PanopticTaskConfig, ColorizerConfig,
        lambda config, names, shapes: PanopticTask(config, len(names)),
        PanopticNet, evaluate_panoptic, fixed=("patch", "slot_grid"),
    ),
}


def task_entry(name: str) -> TaskEntry:
    """The entry of task `name`; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None
