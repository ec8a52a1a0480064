"""The four tasks as a reward model meets them, one `TaskJudging` each (`JUDGING[name]`):

- `outputs(codec, tokens, batch, n)`: a policy's n samples per image of a batch (image-major
  token rows) as the reward model's container (`outputs.py`): decoded boxes, the caption's
  tokens, the colorized image, the panoptic map;
- `gold(task, outputs, batch, n)`: the simulated annotators' hidden gold score of each output
  against its image's ground truth (`simulate.py`), with the task object's settings (CIDEr-D's
  idf, the fidelity weight), so it is the task's own reward (detection: per object);
- `perturb(task, batch, n, generator)`: n outputs per image spoilt from the ground truth
  (`perturb.py`);
- `collate(task, examples, image_size)`: a batch of the task's (detection: from
  DetectionExamples, which may come from a COCO folder too; the others: from scenes);
- the annotators' default noise and tie threshold in gold units, and the gold metric's name in
  the tuning logs (`gold_<name>`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trainer.data.detection import collate as collate_examples
from trainer.data.detection import scene_to_example
from trainer.reward_model.outputs import (
    BoxOutputs,
    CaptionOutputs,
    ColorOutputs,
    Outputs,
    PanopticOutputs,
)
from trainer.reward_model.perturb import (
    perturb_captions,
    perturb_colors,
    perturb_panoptic,
    perturbation_source,
)
from trainer.reward_model.simulate import (
    DEFAULT_NOISES,
    TIE_EPS,
    caption_gold_scores,
    colorization_gold_scores,
    gold_scores,
    panoptic_gold_scores,
)


@dataclass(frozen=True)
class TaskJudging:
    """How one task's outputs are made, scored by gold and spoilt (see the module docstring)."""

    outputs: Callable[[Any, Tensor, Any, int], Outputs]  # (codec, tokens, batch, n)
    gold: Callable[[Any, Outputs, Any, int], Tensor]  # (task, outputs, batch, n) -> (B*n,)
    perturb: Callable[[Any, Any, int, torch.Generator], Outputs]  # (task, batch, n, generator)
    collate: Callable[[Any, Sequence[Any], int], Any]  # (task, examples, image_size) -> batch
    noise: float  # the simulated annotators' default noise, in gold units
    tie_eps: float  # gold scores closer than this are a tie
    gold_name: str  # logged as gold_<gold_name> when tuning against a learned reward


def _rows(batch_tensor: Tensor, n: int, like: Tensor) -> Tensor:
    """A per-image tensor repeated for n outputs per image, on `like`'s device."""
    return batch_tensor.repeat_interleave(n, 0).to(like.device)


# --- detection ---

def _detection_outputs(codec: Any, tokens: Tensor, batch: Any, n: int) -> BoxOutputs:
    decoded = codec.decode(tokens)
    return BoxOutputs(decoded.boxes, decoded.classes, decoded.valid)


def _detection_gold(task: Any, outputs: BoxOutputs, batch: Any, n: int) -> Tensor:
    settings = {} if task is None else {"class_weights": task.class_weights,
                                        "duplicate_penalty": task.config.duplicate_penalty}
    return gold_scores(outputs.boxes, outputs.classes, outputs.valid,
                       *(_rows(t, n, outputs.boxes) for t in (batch.boxes, batch.classes,
                                                              batch.valid)), **settings)


def _detection_perturb(task: Any, batch: Any, n: int, generator: torch.Generator) -> BoxOutputs:
    num_classes = 8 if task is None else task.codec.num_classes
    return perturbation_source(num_classes)(batch, n, generator)


# --- captioning ---

def _caption_outputs(codec: Any, tokens: Tensor, batch: Any, n: int) -> CaptionOutputs:
    # Sampling pads after EOS already; a row cut before its EOS stays as it is.
    return CaptionOutputs(tokens)


def _caption_perturb(task: Any, batch: Any, n: int, generator: torch.Generator
                     ) -> CaptionOutputs:
    return perturb_captions(batch, n, task.codec, generator)


def _caption_gold(task: Any, outputs: CaptionOutputs, batch: Any, n: int) -> Tensor:
    captions = task.codec.decode(outputs.tokens)
    references = [batch.references[row // n] for row in range(len(captions))]
    return caption_gold_scores(captions, references, task.cider).to(outputs.tokens.device)


# --- colorization ---

def _color_outputs(codec: Any, tokens: Tensor, batch: Any, n: int) -> ColorOutputs:
    return ColorOutputs.from_rgb(codec.decode(tokens, _rows(batch.gray, n, tokens)))


def _color_perturb(task: Any, batch: Any, n: int, generator: torch.Generator) -> ColorOutputs:
    return perturb_colors(batch, n, generator)


def _color_gold(task: Any, outputs: ColorOutputs, batch: Any, n: int) -> Tensor:
    return colorization_gold_scores(outputs.rgb(), _rows(batch.rgb, n, outputs.pixels),
                                    fidelity_weight=task.config.fidelity_weight)


# --- panoptic ---

def _panoptic_outputs(codec: Any, tokens: Tensor, batch: Any, n: int) -> PanopticOutputs:
    return PanopticOutputs(codec.decode(tokens, batch.panoptic.shape[1]))


def _panoptic_perturb(task: Any, batch: Any, n: int, generator: torch.Generator
                      ) -> PanopticOutputs:
    return perturb_panoptic(batch, n, task.codec.num_things, generator)


def _panoptic_gold(task: Any, outputs: PanopticOutputs, batch: Any, n: int) -> Tensor:
    return panoptic_gold_scores(outputs.maps, _rows(batch.panoptic, n, outputs.maps))


def _scene_collate(task: Any, scenes: Sequence[Any], image_size: int) -> Any:
    return task.collate(list(scenes), image_size)


def _detection_collate(task: Any, examples: Sequence[Any], image_size: int) -> Any:
    examples = [e if hasattr(e, "image_id") else scene_to_example(e) for e in examples]
    return collate_examples(examples, image_size)


JUDGING: dict[str, TaskJudging] = {
    "detection": TaskJudging(_detection_outputs, _detection_gold, _detection_perturb,
                             _detection_collate, DEFAULT_NOISES["detection"],
                             TIE_EPS["detection"], "detection_reward"),
    "captioning": TaskJudging(_caption_outputs, _caption_gold, _caption_perturb, _scene_collate,
                              DEFAULT_NOISES["captioning"], TIE_EPS["captioning"], "cider_d"),
    "colorization": TaskJudging(_color_outputs, _color_gold, _color_perturb, _scene_collate,
                                DEFAULT_NOISES["colorization"], TIE_EPS["colorization"],
                                "colorization_reward"),
    "panoptic": TaskJudging(_panoptic_outputs, _panoptic_gold, _panoptic_perturb, _scene_collate,
                            DEFAULT_NOISES["panoptic"], TIE_EPS["panoptic"], "pq"),
}


def judging(task: str) -> TaskJudging:
    """The judging of task `task`; ValueError naming the known ones otherwise."""
    if task not in JUDGING:
        raise ValueError(f"no reward model for task {task!r} (known: {', '.join(JUDGING)})")
    return JUDGING[task]


@functools.cache
def default_task(name: str) -> Any:
    """The task object of `name` with its default config, on Synthetic Shapes (built once:
    captioning's reads a thousand scenes for CIDEr-D's idf)."""
    from trainer.data.shapes import CLASS_NAMES, DEFAULT_CONFIG
    from trainer.tasks.registry import task_entry

    entry = task_entry(name)
    return entry.make_task(entry.task_config(), CLASS_NAMES, DEFAULT_CONFIG)
