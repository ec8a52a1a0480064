"""Simulated annotators: feedback from a hidden gold score, with a stated amount of noise.

Used in-process by the reward-model benchmark and, through the same plain functions, by the
platform's simulated-annotators command. Nothing here knows about datasets or models.

Gold score, the task's own reward against the image's ground truth:
- detection (`gold_scores`): the detection reward (`trainer.rewards.detection`) divided by the
  number of ground-truth objects, so it is about 1 for a perfect output and 0 for an empty one
  on every image. Dividing by a per-image constant keeps each image's order of outputs and
  makes one noise level mean the same on every image;
- captioning (`caption_gold_scores`): CIDEr-D against the image's reference captions;
- colorization (`colorization_gold_scores`): colourfulness plus the fidelity term, the weight
  times PSNR to the true colours (`trainer.rewards.colorization`);
- panoptic (`panoptic_gold_scores`): PQ of the map against the ground truth, in [0, 1].
Noise and tie thresholds are in each task's gold units (`DEFAULT_NOISES`, `TIE_EPS`).

Noise model, one parameter `noise` >= 0 for all three kinds of feedback (0 = a perfect annotator):
- pairs (Bradley-Terry): a is preferred with probability `sigmoid((gold_a - gold_b) / noise)`;
  when the gold scores differ by at most `tie_eps` the answer is a tie (0.5);
- rankings (Plackett-Luce): sort `gold / noise + Gumbel noise`: the same choice model, so any
  two outputs of a ranking are ordered as a pair would be;
- ratings 1-5: add `noise * Logistic` to the gold score and bin it at `RATING_EDGES`, the
  cumulative-logit model the reward model fits to ratings (detection's gold range; the other
  tasks pass their own edges).

What a noise level does is stated by what it does to labels: `label_gold_agreement` is the share
of decided pairs whose label names the gold-better output, and `annotator_agreement` the share
of pairs two independent draws of labels agree on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from trainer.configs import DEFAULT_FIDELITY_WEIGHT
from trainer.rewards.captioning import CiderD
from trainer.rewards.colorization import colorization_reward
from trainer.rewards.detection import detection_reward
from trainer.rewards.panoptic import SHAPES_STUFFS, panoptic_quality

RATING_EDGES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)  # gold score bins of ratings 1..5
# Annotator noise of the benchmarks and the simulated annotators unless told otherwise.
DEFAULT_NOISE = 0.05
DEFAULT_TIE_EPS = 0.02  # gold scores closer than this are a tie (about a fiftieth of a box)
# Each task's default noise and tie threshold, in its gold units. The new tasks' are set so
# that on pairs of the quick benchmark MLE policies' samples the labels name the gold-better
# output on about 80% of decided pairs (`label_gold_agreement`, which bench rlhf reports: 0.79
# captioning, 0.84 colorization, 0.86 panoptic in round 1); a stronger policy's samples are
# closer in gold, so the same noise decides fewer of them right.
DEFAULT_NOISES: dict[str, float] = {"detection": DEFAULT_NOISE, "captioning": 0.07,
                                    "colorization": 1.5, "panoptic": 0.02}
TIE_EPS: dict[str, float] = {"detection": DEFAULT_TIE_EPS, "captioning": 0.01,
                             "colorization": 0.5, "panoptic": 0.005}


def gold_scores(
    pred_boxes: Tensor,
    pred_classes: Tensor,
    pred_valid: Tensor,
    gt_boxes: Tensor,
    gt_classes: Tensor,
    gt_valid: Tensor,
    *,
    class_weights: Tensor | None = None,
    duplicate_penalty: float = 0.3,
) -> Tensor:
    """(B,) hidden gold score of each output: detection reward / number of gt objects."""
    reward = detection_reward(
        pred_boxes, pred_classes, pred_valid, gt_boxes, gt_classes, gt_valid,
        class_weights=class_weights, duplicate_penalty=duplicate_penalty,
    ).reward
    return reward / gt_valid.sum(1).clamp_min(1)


def caption_gold_scores(
    captions: Sequence[str], references: Sequence[Sequence[str]], cider: CiderD
) -> Tensor:
    """(B,) CIDEr-D of each caption against its image's references (`cider` holds the idf)."""
    return cider.cider_d(list(captions), [list(refs) for refs in references])


def colorization_gold_scores(
    pred_rgb: Tensor, true_rgb: Tensor, *, fidelity_weight: float = DEFAULT_FIDELITY_WEIGHT
) -> Tensor:
    """(B,) colourfulness + fidelity_weight * PSNR of (B, 3, H, W) RGB in [0, 1] to the truth."""
    return colorization_reward(pred_rgb.float(), true_rgb.float(),
                               fidelity_weight=fidelity_weight)


def panoptic_gold_scores(pred_maps: Tensor, true_maps: Tensor) -> Tensor:
    """(B,) PQ in [0, 1] of (B, H, W, 2) panoptic maps against the ground truth's."""
    return panoptic_quality(pred_maps.long(), true_maps.long(), stuffs=SHAPES_STUFFS)


def label_gold_agreement(label: Tensor, gold_a: Tensor, gold_b: Tensor) -> float:
    """The share of decided pairs (label not 0.5) whose label names the gold-better output,
    pairs equal in gold left out: what a noise level does to labels. NaN when none counts."""
    margin = gold_a - gold_b
    counted = (label != 0.5) & (margin != 0)
    if not counted.any():
        return float("nan")
    return ((label > 0.5) == (margin > 0))[counted].float().mean().item()


def annotator_agreement(first: Tensor, second: Tensor) -> float:
    """The share of pairs that two independent draws of labels answer alike (ties, which
    follow from gold alone, left out): how often two annotators with this noise agree. NaN
    when every pair is a tie."""
    counted = (first != 0.5) & (second != 0.5)
    if not counted.any():
        return float("nan")
    return (first == second)[counted].float().mean().item()


def _check_noise(noise: float) -> None:
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def simulate_preferences(
    gold_a: Tensor,
    gold_b: Tensor,
    *,
    noise: float,
    tie_eps: float = DEFAULT_TIE_EPS,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(N,) float labels P(a preferred): 1, 0, or 0.5 for a tie (see the module docstring)."""
    _check_noise(noise)
    margin = (gold_a - gold_b).float()
    if noise == 0:
        label = (margin > 0).float()
    else:
        prefer_a = torch.sigmoid(margin / noise)
        draws = torch.rand(margin.shape, generator=generator, device=margin.device)
        label = (draws < prefer_a).float()
    return torch.where(margin.abs() <= tie_eps, 0.5, label)


def simulate_rankings(
    gold: Tensor, *, noise: float, generator: torch.Generator | None = None
) -> Tensor:
    """(N, K) gold scores -> (N, K) int64 positions of the outputs, best first."""
    _check_noise(noise)
    if noise == 0:
        return gold.argsort(dim=1, descending=True, stable=True)
    uniform = torch.rand(gold.shape, generator=generator, device=gold.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-7)))
    return (gold.float() / noise + gumbel).argsort(dim=1, descending=True)


def simulate_ratings(
    gold: Tensor,
    *,
    noise: float,
    generator: torch.Generator | None = None,
    edges: tuple[float, ...] = RATING_EDGES,
) -> Tensor:
    """(N,) gold scores -> (N,) int64 ratings 1..len(edges) + 1."""
    _check_noise(noise)
    perceived = gold.float()
    if noise > 0:
        uniform = torch.rand(gold.shape, generator=generator, device=gold.device)
        uniform = uniform.clamp(1e-7, 1 - 1e-7)
        perceived = perceived + noise * torch.log(uniform / (1 - uniform))
    bounds = torch.tensor(edges, device=gold.device)
    return 1 + (perceived[:, None] > bounds).sum(1)
