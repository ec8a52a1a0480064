"""A learned reward model used where the metric reward is: same inputs, same kind of output.

- `learned_detection_reward(model)` is a function with the metric's argument list
  (`pred_*`, `gt_*`) plus the images the model must see, returning `LearnedRewardOutput`, which
  has the metric output's fields (`reward`, `pred_iou`, `matched`).
- `LearnedRewardTask(task, model)` wraps a task of any of the four kinds for the REINFORCE step
  (`trainer.train.reinforce.reinforce_step`), which calls `task.reward(tokens, batch, n)`: the
  samples are decoded as the reward model reads them (`tasks.py`) and scored by it. The task's
  own verdict against ground truth stays beside the learned reward (`LearnedScores.metric`),
  so its figures (CIDEr-D, colourfulness and PSNR, segments, PQ) are logged, and the metric
  itself as `metric_reward` and `gold_<metric>` (`TaskJudging.gold_name`): the reward model
  never sees it, the logs show whether it follows.

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
what a tuning run reports before and after where there is no ground truth to evaluate against;
`greedy_task_score` is the same for a task of any kind on examples its `collate` takes
(Synthetic Shapes scenes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trainer.data.detection import DetectionExample, collate
from trainer.reward_model.model import RewardModel
from trainer.reward_model.tasks import judging
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
    gold_name = judging("detection").gold_name

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
            figures[f"gold_{self.gold_name}"] = figures["metric_reward"]
            # A box can only hit on an image with ground truth: count it among those.
            figures["hit_rate"] = ScoredSamples.metrics(self.with_gt_only())["hit_rate"]
        else:
            del figures["hit_rate"]
        return figures


@dataclass(frozen=True)
class LearnedScores:
    """Samples of a whole-output task (captioning, colorization, panoptic) scored by a reward
    model, with the task's own verdict against ground truth beside it for the logs."""

    reward: Tensor  # (N,) reward model score times the scale
    metric: Any  # the task's scored samples (ScoredCaptions, ScoredColors, ScoredPanoptic)
    gold_name: str

    def select(self, rows: Tensor) -> LearnedScores:
        return LearnedScores(self.reward[rows], self.metric.select(rows), self.gold_name)

    def metrics(self) -> dict[str, float]:
        metric_reward = self.metric.reward.float().mean().item()
        return {**self.metric.metrics(), "metric_reward": metric_reward,
                f"gold_{self.gold_name}": metric_reward}


class LearnedRewardTask:
    """A task whose `reward` comes from a reward model; all else is the task's own. The reward
    model's task must be the wrapped task's."""

    def __init__(self, task, model: RewardModel, *, scale: float = 1.0) -> None:
        self.task = task
        self.scale = scale
        self.model = model.eval().requires_grad_(False)
        self.judging = judging(model.config.task)
        self.detection = model.config.task == "detection"
        if self.detection:
            self._reward = learned_detection_reward(
                self.model, scale=scale, class_weights=task.class_weights,
                duplicate_penalty=task.config.duplicate_penalty,
            )

    def __getattr__(self, name: str):
        # spec, codec, config, targets, collate ...: everything but the reward is the task's.
        if name == "task":  # not set yet (copy, unpickling): no endless lookup
            raise AttributeError(name)
        return getattr(self.task, name)

    def aux_loss(self, logits: Tensor, scored: LearnedScoredSamples | LearnedScores) -> Tensor:
        """Detection: the task's confidence loss on the boxes of outputs whose image has ground
        truth; the other tasks: theirs (none)."""
        if self.detection:
            return self.task.aux_loss(logits, scored.with_gt_only())
        return self.task.aux_loss(logits, scored.metric)

    def reward(self, tokens: Tensor, batch, n: int) -> LearnedScoredSamples | LearnedScores:
        """Score n samples per image (image-major rows), as the task's `reward` does."""
        if not self.detection:
            metric = self.task.reward(tokens, batch, n)
            outputs = self.judging.outputs(self.task.codec, tokens, batch, n)
            device = self.model.device
            learned = self.model.score_outputs(batch.images.to(device), outputs.to(device))
            return LearnedScores((self.scale * learned).to(metric.reward.device), metric,
                                 self.judging.gold_name)
        decoded = self.task.codec.decode(tokens)
        with torch.no_grad():
            out = self._reward(
                decoded.boxes, decoded.classes, decoded.valid,
                *(t.repeat_interleave(n, 0) for t in (batch.boxes, batch.classes, batch.valid)),
                images=batch.images,
            )
        return LearnedScoredSamples(out.reward, out.pred_iou, decoded, out.metric_reward,
                                    out.has_gt)

    @property
    def rewards_to_go(self):
        """Detection's reward-to-go (`_rewards_to_go`); the whole-output tasks have none, so
        `hasattr(task, "rewards_to_go")` answers as for the task itself."""
        if not self.detection:
            raise AttributeError("rewards_to_go")
        return self._rewards_to_go

    def _rewards_to_go(self, tokens: Tensor, batch, n: int,
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


@torch.no_grad()
def greedy_task_score(
    policy, task, reward_model: RewardModel, examples: Sequence[Any], *, batch_size: int = 100,
) -> float:
    """Mean score the reward model gives the policy's greedy output on each example, for any
    task: the examples batched as the task collates them, the output read as the reward model
    reads samples (`tasks.judging`)."""
    judge = judging(reward_model.config.task)
    policy.eval()
    total = 0.0
    for start in range(0, len(examples), batch_size):
        batch = judge.collate(task, examples[start : start + batch_size],
                              policy.config.image_size).to(policy.device)
        outputs = judge.outputs(task.codec, policy.greedy(batch.images), batch, 1)
        device = reward_model.device
        total += reward_model.score_outputs(batch.images.to(device),
                                            outputs.to(device)).sum().item()
    return total / max(1, len(examples))
