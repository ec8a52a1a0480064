"""A learned reward model used where the metric reward is: same inputs, same kind of output.

- `learned_detection_reward(model)` is a function with the metric's argument list
  (`pred_*`, `gt_*`) plus the images the model must see, returning `LearnedRewardOutput`, which
  has the metric output's fields (`reward`, `pred_iou`, `matched`).
- `LearnedRewardTask(task, model)` wraps a DetectionTask for the REINFORCE step
  (`trainer.train.reinforce.reinforce_step`), which calls `task.reward(tokens, batch, n)`.

The reward is the model's score (times `scale`); ground truth never enters it. Scores are
Bradley-Terry utilities: against annotators who prefer with `sigmoid((gold_a - gold_b) / noise)`
they approximate `gold / noise` plus a per-image constant, so `scale = noise` puts the reward in
gold units (detection reward per ground-truth object) and a tuning learning rate tried on the
metric transfers roughly after also multiplying by the typical number of objects. Where an image
has ground truth, the metric is still computed beside it: its `pred_iou` trains the confidence
token (the policy's box scores need an IoU target, and a reward model gives none), and its
reward is reported as `metric_reward`, so a policy that pleases the reward model while the
metric falls (reward hacking) shows in the logs. Where an image has no ground truth, `pred_iou`
is 0 and `has_gt` is False: set the task's `confidence_weight` to 0 for such data, or the
confidence token learns to predict 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from trainer.reward_model.model import RewardModel
from trainer.rewards.detection import detection_reward
from trainer.tasks.detection import ScoredSamples


@dataclass(frozen=True)
class LearnedRewardOutput:
    """The learned reward of each output, and the metric's figures where ground truth exists."""

    reward: Tensor  # (B,) reward model score times `scale`
    pred_iou: Tensor  # (B, P) confidence target from the metric; 0 without ground truth
    matched: Tensor  # (B, P) bool, from the metric; False without ground truth
    metric_reward: Tensor  # (B,) detection reward against ground truth; 0 without it
    has_gt: Tensor  # (B,) bool, the image has at least one ground-truth box


LearnedDetectionReward = Callable[..., LearnedRewardOutput]


def learned_detection_reward(
    model: RewardModel,
    *,
    scale: float = 1.0,
    class_weights: Tensor | None = None,
    duplicate_penalty: float = 0.3,
) -> LearnedDetectionReward:
    """`reward(pred_boxes, pred_classes, pred_valid, gt_boxes, gt_classes, gt_valid, *, images)`.

    Shapes as `detection_reward` (B outputs, padded gt of each output's image); `images` are
    normalised model inputs, (B, 3, H, W) or (B / n, 3, H, W) for n consecutive outputs per
    image. `class_weights` and `duplicate_penalty` only concern the metric beside the reward.
    """

    def reward(
        pred_boxes: Tensor,
        pred_classes: Tensor,
        pred_valid: Tensor,
        gt_boxes: Tensor,
        gt_classes: Tensor,
        gt_valid: Tensor,
        *,
        images: Tensor,
    ) -> LearnedRewardOutput:
        metric = detection_reward(
            pred_boxes, pred_classes, pred_valid, gt_boxes, gt_classes, gt_valid,
            class_weights=class_weights, duplicate_penalty=duplicate_penalty,
        )
        learned = model.score(images.to(model.device), pred_boxes.to(model.device),
                              pred_classes.to(model.device), pred_valid.to(model.device))
        return LearnedRewardOutput(
            reward=(scale * learned).to(pred_boxes.device),
            pred_iou=metric.pred_iou,
            matched=metric.matched,
            metric_reward=metric.reward,
            has_gt=gt_valid.any(1),
        )

    return reward


@dataclass(frozen=True)
class LearnedScoredSamples(ScoredSamples):
    """ScoredSamples whose reward is learned, with the metric beside it for the logs."""

    metric_reward: Tensor  # (N,) detection reward against ground truth
    has_gt: Tensor  # (N,) bool

    def select(self, rows: Tensor) -> LearnedScoredSamples:
        return LearnedScoredSamples(self.reward[rows], self.pred_iou[rows],
                                    self.decoded.select(rows), self.metric_reward[rows],
                                    self.has_gt[rows])

    def metrics(self) -> dict[str, float]:
        figures = super().metrics()
        if self.has_gt.any():
            figures["metric_reward"] = self.metric_reward[self.has_gt].mean().item()
        return figures


class LearnedRewardTask:
    """A DetectionTask whose `reward` comes from a reward model; all else is the task's own."""

    def __init__(self, task, model: RewardModel, *, scale: float = 1.0) -> None:
        self.task = task
        self.model = model.eval().requires_grad_(False)
        self._reward = learned_detection_reward(
            self.model, scale=scale, class_weights=task.class_weights,
            duplicate_penalty=task.config.duplicate_penalty,
        )

    def __getattr__(self, name: str):
        # spec, codec, config, targets, aux_loss ...: everything but the reward is the task's.
        if name == "task":  # not set yet (copy, unpickling): no endless lookup
            raise AttributeError(name)
        return getattr(self.task, name)

    def reward(self, tokens: Tensor, batch, n: int) -> LearnedScoredSamples:
        """Score n samples per image (image-major rows), as `DetectionTask.reward` does."""
        decoded = self.task.codec.decode(tokens)
        with torch.no_grad():
            out = self._reward(
                decoded.boxes, decoded.classes, decoded.valid,
                *(t.repeat_interleave(n, 0) for t in (batch.boxes, batch.classes, batch.valid)),
                images=batch.images,
            )
        return LearnedScoredSamples(out.reward, out.pred_iou, decoded, out.metric_reward,
                                    out.has_gt)
