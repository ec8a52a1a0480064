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
metric falls (reward hacking) shows in the logs. Where an image has no ground truth (a
project's own images), `pred_iou` is 0 and `has_gt` is False: its boxes have no IoU target, so
`LearnedRewardTask.aux_loss` leaves them out (the confidence token would learn to predict 0).

`greedy_score` is the reward model's mean score of a policy's greedy outputs on some images:
what a tuning run reports before and after where there is no ground truth to evaluate against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from trainer.data.detection import DetectionExample, collate
from trainer.reward_model.model import RewardModel
from trainer.rewards.detection import detection_reward
from trainer.tasks.detection import ScoredSamples, credit_from_prefixes


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

    def with_gt_only(self) -> LearnedScoredSamples:
        """The same samples with the boxes of outputs on images without ground truth marked
        invalid (they have no IoU target)."""
        decoded = dataclasses.replace(self.decoded,
                                      valid=self.decoded.valid & self.has_gt[:, None])
        return dataclasses.replace(self, decoded=decoded)

    def metrics(self) -> dict[str, float]:
        figures = super().metrics()
        if self.has_gt.any():
            figures["metric_reward"] = self.metric_reward[self.has_gt].mean().item()
            # A box can only hit on an image with ground truth: count it among those.
            figures["hit_rate"] = ScoredSamples.metrics(self.with_gt_only())["hit_rate"]
        else:
            del figures["hit_rate"]
        return figures


class LearnedRewardTask:
    """A DetectionTask whose `reward` comes from a reward model; all else is the task's own."""

    def __init__(self, task, model: RewardModel, *, scale: float = 1.0) -> None:
        self.task = task
        self.scale = scale
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

    def aux_loss(self, logits: Tensor, scored: LearnedScoredSamples) -> Tensor:
        """The task's confidence loss on the boxes of outputs whose image has ground truth."""
        return self.task.aux_loss(logits, scored.with_gt_only())

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

    def rewards_to_go(self, tokens: Tensor, batch, n: int,
                      scored: LearnedScoredSamples) -> Tensor:
        """(N, L) each token's reward-to-go as `DetectionTask.rewards_to_go`, with the boxes
        before the token's box scored by the reward model (ground truth never enters it)."""
        decoded, device = scored.decoded, self.model.device
        before = self.model.prefix_scores(batch.images.to(device), decoded.boxes.to(device),
                                          decoded.classes.to(device), decoded.valid.to(device))
        return credit_from_prefixes(scored.reward, self.scale * before.to(scored.reward.device),
                                    tokens.shape[1])


@torch.no_grad()
def greedy_score(
    policy, codec, reward_model: RewardModel, examples: Sequence[DetectionExample], *,
    batch_size: int = 100,
) -> float:
    """Mean score the reward model gives the policy's greedy output on each example's image."""
    policy.eval()
    total = 0.0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        images = collate(chunk, policy.config.image_size).images.to(policy.device)  # (B,3,S,S)
        tokens, _ = policy.sample(images, 1, temperature=0.0)  # (B, L)
        decoded = codec.decode(tokens)
        device = reward_model.device
        total += reward_model.score(images.to(device), decoded.boxes.to(device),
                                    decoded.classes.to(device),
                                    decoded.valid.to(device)).sum().item()
    return total / max(1, len(examples))
