"""Reward hacking in a run's logged steps: the learned reward rises while the gold metric, the
task's metric against ground truth that the reward model never sees, falls.

A series' trend is the mean of its last third of logged values minus the mean of its first
third; it counts as a rise or a fall only beyond twice the standard error of that difference
(the steps' own scatter within each third is the noise), so sampling noise of a short run does
not cry wolf. A run is hacking its reward when the learned reward rises and the gold metric
falls. The gold series is the held-out one (`heldout_<metric>`, the selection's scores against
ground truth) where enough steps were scored, else the gold metric of the training samples
(`gold_<metric>`), which is logged every step.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuning.models import RewardKind, TuningRun, TuningStep

MIN_POINTS = 6  # fewer logged values make thirds of one or two: no trend is told
LEARNED = "reward"  # the step metric of the reward that trained the policy
NOISE_FACTOR = 2.0  # standard errors a change must exceed to count


@dataclass(frozen=True)
class Trend:
    first: float  # mean of the first third
    last: float  # mean of the last third
    noise: float  # standard error of their difference

    @property
    def change(self) -> float:
        return self.last - self.first

    @property
    def rising(self) -> bool:
        return self.change > NOISE_FACTOR * self.noise

    @property
    def falling(self) -> bool:
        return self.change < -NOISE_FACTOR * self.noise


def _mean_and_variance(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def trend(values: Sequence[float | None]) -> Trend | None:
    """The trend of a series in step order (None and NaN left out); None when it has fewer
    than MIN_POINTS values."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(kept) < MIN_POINTS:
        return None
    third = len(kept) // 3
    (first, var_first), (last, var_last) = (_mean_and_variance(kept[:third]),
                                            _mean_and_variance(kept[-third:]))
    return Trend(first, last, math.sqrt(var_first / third + var_last / third))


def reward_hacking(learned: Sequence[float | None], gold: Sequence[float | None]) -> bool | None:
    """Whether the learned reward rose while the gold metric fell (see the module docstring);
    None when either series is too short to tell."""
    learned_trend, gold_trend = trend(learned), trend(gold)
    if learned_trend is None or gold_trend is None:
        return None
    return learned_trend.rising and gold_trend.falling


def _series(rows: list[dict[str, Any]], name: str) -> list[float | None]:
    return [row[name] for row in rows if isinstance(row.get(name), int | float)]


def gold_series_name(rows: list[dict[str, Any]]) -> str | None:
    """The held-out gold metric where enough steps have it, else the training samples'."""
    names = sorted({name for row in rows for name in row})
    held_out = [n for n in names if n.startswith("heldout_") and n != "heldout_learned_reward"]
    for name in held_out:
        if len(_series(rows, name)) >= MIN_POINTS:
            return name
    gold = [n for n in names if n.startswith("gold_")]
    return gold[0] if gold else (held_out[0] if held_out else None)


def _figure(value: float) -> str:
    return f"{value:.4g}"


def run_reward_hacking(run: TuningRun) -> dict[str, Any] | None:
    """For a run against a learned reward: which series are compared, the verdict
    (`hacking`: true, false, or null while too few steps are logged) and a sentence saying it
    plainly; None for a metric reward, or while no gold metric is logged."""
    if run.reward != RewardKind.LEARNED:
        return None
    rows = list(TuningStep.objects.filter(run=run).order_by("step")
                .values_list("metrics", flat=True))
    gold = gold_series_name(rows)
    if gold is None:
        return None
    learned_values, gold_values = _series(rows, LEARNED), _series(rows, gold)
    verdict = reward_hacking(learned_values, gold_values)
    if verdict is None:
        summary = (f"Too few logged steps to tell whether the learned reward and {gold} move "
                   f"apart (at least {MIN_POINTS} of each).")
    else:
        learned_trend, gold_trend = trend(learned_values), trend(gold_values)
        moves = (f"the learned reward went from {_figure(learned_trend.first)} to "
                 f"{_figure(learned_trend.last)} and {gold} from {_figure(gold_trend.first)} "
                 f"to {_figure(gold_trend.last)} (first third of the steps to the last)")
        summary = (f"Reward hacking: {moves}. The policy pleases the reward model while the "
                   "metric it stands for falls." if verdict else
                   f"No sign of reward hacking: {moves}.")
    return {"learned": LEARNED, "gold": gold, "hacking": verdict, "summary": summary}
