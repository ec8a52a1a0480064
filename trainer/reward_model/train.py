"""Training a reward model from feedback: a held-out split, a readable loop, pairwise accuracy.

    result = train_reward_model(config, preferences=prefs)   # any mix of the three kinds
    result.heldout["pair_acc"], result.history[-1]

Each step draws a batch of every kind of feedback given, adds their losses (`losses.py`) and
takes one AdamW step; it returns its metrics. Held-out images (with all their feedback) are
evaluated every `eval_every` steps as pairwise accuracy: the share of the pairs the feedback
implies that the model orders the same way (ties in the labels left out, equal scores count
half). Where the feedback was simulated, `gold_acc` is the same against the hidden gold order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from trainer.configs import RewardModelConfig
from trainer.reward_model.data import (
    FeedbackDataset,
    PreferenceDataset,
    RankingDataset,
    RatingDataset,
    split_by_image,
)
from trainer.reward_model.losses import (
    bradley_terry_loss,
    ordinal_nll,
    plackett_luce_loss,
    ranking_pairs_loss,
)
from trainer.reward_model.model import RewardModel
from trainer.reward_model.outputs import Outputs
from trainer.reward_model.tasks import judging
from trainer.train.checkpoint import Checkpoint
from trainer.train.mle import make_optimizer, warmup_cosine


@dataclass
class TrainedRewardModel:
    model: RewardModel
    history: list[dict[str, float]]  # one dict of metrics per step (held-out ones when run)
    heldout: dict[str, float]  # the last held-out evaluation
    seconds: float = 0.0  # wall time of the loop
    sizes: dict[str, int] = field(default_factory=dict)  # train / held-out rows of each kind


def augment(images: Tensor, outputs: Outputs, per_image: int, ops: Tensor):
    """Images (B, C, S, S) and their `per_image` outputs each, transformed together by `ops`
    (B, 3) bool: transpose, mirror left-right, mirror top-bottom (the 8 symmetries of the
    square; a scene's labels do not change under them)."""
    transpose, flip_x, flip_y = (ops[:, i, None, None, None] for i in range(3))
    images = torch.where(transpose, images.transpose(-1, -2), images)
    images = torch.where(flip_x, images.flip(-1), images)
    images = torch.where(flip_y, images.flip(-2), images)
    rows = ops.repeat_interleave(per_image, 0)
    return images, outputs.transform(rows[:, 1], rows[:, 2], rows[:, 0])


def can_augment(outputs: Outputs) -> bool:
    """Whether the outputs move with their image (captions do not: "left of" stays left)."""
    return hasattr(outputs, "transform")


def _scores(
    model: RewardModel, images: Tensor, outputs: Outputs, per_image: int, ops: Tensor | None
) -> Tensor:
    """Scores of `per_image` consecutive outputs on each image, augmented by `ops` if given
    (and the outputs can be)."""
    if ops is not None and can_augment(outputs):
        images, outputs = augment(images, outputs, per_image, ops)
    index = torch.arange(len(images), device=images.device).repeat_interleave(per_image)
    return model(images, outputs, index)


def feedback_loss(
    model: RewardModel,
    dataset: FeedbackDataset,
    rows: Tensor,
    config: RewardModelConfig,
    ops: Tensor | None = None,
) -> Tensor:
    """The loss of one kind of feedback on the given rows of its dataset."""
    device = model.device
    images = dataset.images[dataset.image_index[rows]].to(device)
    if isinstance(dataset, PreferenceDataset):
        # a and b of pair i are outputs 2i and 2i + 1 of image i.
        both = type(dataset.a).cat([dataset.a.select(rows), dataset.b.select(rows)])
        interleave = torch.arange(2 * len(rows)).view(2, -1).T.flatten()
        scores = _scores(model, images, both.select(interleave).to(device), 2, ops)
        return bradley_terry_loss(scores[0::2], scores[1::2], dataset.label[rows].to(device))
    if isinstance(dataset, RankingDataset):
        k = dataset.k
        output_rows = (rows[:, None] * k + torch.arange(k)).flatten()
        scores = _scores(model, images, dataset.ranked.select(output_rows).to(device), k, ops)
        loss = plackett_luce_loss if config.ranking_loss == "plackett_luce" else ranking_pairs_loss
        return loss(scores.view(-1, k))
    scores = _scores(model, images, dataset.outputs.select(rows).to(device), 1, ops)
    return ordinal_nll(scores, dataset.rating[rows].to(device), model.cutpoints())


def reward_model_step(
    model: RewardModel,
    optimizer: torch.optim.Optimizer,
    datasets: dict[str, FeedbackDataset],
    config: RewardModelConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """One update on a random batch of each kind of feedback; returns its metrics."""
    model.train()
    losses = {}
    for kind, dataset in datasets.items():
        rows = torch.randint(len(dataset), (config.batch_size,), generator=generator)
        ops = None
        if config.augment:
            ops = (torch.rand(config.batch_size, 3, generator=generator) < 0.5).to(model.device)
        losses[kind] = feedback_loss(model, dataset, rows, config, ops)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return {"loss": loss.item(), **{f"loss_{k}": v.item() for k, v in losses.items()},
            "grad_norm": float(grad_norm)}


@torch.no_grad()
def pairwise_accuracy(
    model: RewardModel, dataset: FeedbackDataset, tie_eps: float | None = None
) -> dict[str, float]:
    """Agreement of the model's order with the pairs `dataset` implies (see module doc).

    `pair_acc` against the feedback's labels; `gold_acc` against the hidden gold order on pairs
    whose gold scores differ by more than `tie_eps` (simulated feedback only; None: the task's
    tie threshold, `simulate.TIE_EPS`); `pairs` counted.
    """
    tie_eps = judging(model.config.task).tie_eps if tie_eps is None else tie_eps
    pairs = dataset.as_pairs()
    if len(pairs) == 0:
        return {"pairs": 0}
    images = pairs.images.to(model.device)
    index = pairs.image_index.to(model.device)
    score_a = _score_all(model, images, pairs.a, index)
    score_b = _score_all(model, images, pairs.b, index)
    agree = (score_a > score_b).float() + 0.5 * (score_a == score_b).float()
    decided = pairs.label != 0.5
    result = {"pairs": len(pairs), "pair_acc": _agreement(agree, pairs.label > 0.5, decided)}
    if pairs.gold_a is not None and pairs.gold_b is not None:
        gold_margin = pairs.gold_a - pairs.gold_b
        result["gold_acc"] = _agreement(agree, gold_margin > 0, gold_margin.abs() > tie_eps)
    return result


def _agreement(agree_a: Tensor, a_better: Tensor, counted: Tensor) -> float:
    if not counted.any():
        return math.nan
    right = torch.where(a_better, agree_a, 1 - agree_a)
    return right[counted].mean().item()


def _score_all(
    model: RewardModel, images: Tensor, outputs: Outputs, index: Tensor, chunk: int = 512
) -> Tensor:
    model.eval()
    scores = [
        model(images, outputs.select(slice(s, s + chunk)).to(model.device), index[s : s + chunk])
        for s in range(0, len(outputs), chunk)
    ]
    return torch.cat(scores).cpu()


def _evaluate(model: RewardModel, heldout: dict[str, FeedbackDataset]) -> dict[str, float]:
    """Held-out accuracy per kind, and over all pairs of all kinds (weighted by pairs)."""
    metrics: dict[str, float] = {}
    weighted: dict[str, list[tuple[float, int]]] = {"pair_acc": [], "gold_acc": []}
    for kind, dataset in heldout.items():
        result = pairwise_accuracy(model, dataset)
        for name, value in result.items():
            metrics[f"heldout_{kind}_{name}"] = value
            if name in weighted and not math.isnan(value):
                weighted[name].append((value, result["pairs"]))
    for name, values in weighted.items():
        total = sum(n for _, n in values)
        if total:
            metrics[name] = sum(v * n for v, n in values) / total
    return metrics


def train_reward_model(
    config: RewardModelConfig,
    *,
    preferences: PreferenceDataset | None = None,
    rankings: RankingDataset | None = None,
    ratings: RatingDataset | None = None,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    policy: Checkpoint | None = None,
) -> TrainedRewardModel:
    """Train a new reward model on whatever feedback is given; see the module docstring.

    Every dataset is split by image into train and held-out (`config.heldout_fraction`).
    `on_step(step, metrics)` is called after every step (logging, progress, cancellation).
    `policy`: the checkpoint of the task's policy that readout 'policy' starts from.
    """
    given = {"pairs": preferences, "rankings": rankings, "ratings": ratings}
    given = {kind: data for kind, data in given.items() if data is not None and len(data)}
    if not given:
        raise ValueError("no feedback to learn from: give preferences, rankings or ratings")
    # A thread count for this run only: one thread is much faster on a busy 2-core machine
    # (small convolutions spend their time waiting for each other's threads).
    previous_threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, given, device, on_step, policy)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    config: RewardModelConfig,
    given: dict[str, FeedbackDataset],
    device: torch.device | str,
    on_step: Callable[[int, dict[str, Any]], None] | None,
    policy: Checkpoint | None,
) -> TrainedRewardModel:
    torch.manual_seed(config.seed)
    train, heldout = {}, {}
    for kind, data in given.items():
        train[kind], heldout[kind] = split_by_image(data, config.heldout_fraction, config.seed)
        if len(train[kind]) == 0:
            raise ValueError(f"{kind}: all feedback is on one image; need at least two images")
    model = RewardModel(config, policy).to(device)
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    evaluation: dict[str, float] = {}
    began = time.perf_counter()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * warmup_cosine(step, config.steps, config.warmup)
        metrics = reward_model_step(model, optimizer, train, config, generator)
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        if (step + 1) % config.eval_every == 0 or step == config.steps - 1:
            evaluation = _evaluate(model, heldout)
            metrics.update(evaluation)
        history.append(metrics)
        if on_step is not None:
            on_step(step, metrics)
    model.eval()
    sizes = {f"{side}_{kind}": len(data) for side, split in (("train", train),
             ("heldout", heldout)) for kind, data in split.items()}
    return TrainedRewardModel(model, history, evaluation, time.perf_counter() - began, sizes)

