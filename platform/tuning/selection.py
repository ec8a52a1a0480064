"""A finished run's held-out selection in words, the same on its page and in its API.

The worker records the selection in the tuned version's metrics (`selection`, written by the
trainer: `trainer.train.selection`): the figure, how many held-out images it was measured on
and against what (their ground truth, or the learned reward's mean score where they have none),
the start's score, the best one's and its step. A run whose best step is its start ends with the
starting model, and its page must say so plainly.
"""

from typing import Any

from tuning.models import TuningRun

AGAINST = {"ground_truth": "against their ground truth",
           "learned_reward": "by the learned reward's mean score (no ground truth)"}


def run_selection(run: TuningRun) -> dict[str, Any] | None:
    """The run's selection record with a `summary` sentence; `{"enabled": false, ...}` when
    the run tuned without selection; None before it succeeded, or when its version records
    none (runs from before selection)."""
    metrics = run.result_version.metrics if run.result_version else None
    if not isinstance(metrics, dict) or "selection" not in metrics:
        return None
    record = metrics["selection"]
    if not record:
        return {"enabled": False, "summary": "Held-out selection was off (select_every=0): "
                                             "the tuned version is the run's last step."}
    return {"enabled": True, **record, "summary": _summary(record)}


def _summary(record: dict[str, Any]) -> str:
    name, start, best = record["name"], _figure(record["start_metric"]), \
        _figure(record["best_metric"])
    measured = f"{record['images']} held-out images, {AGAINST.get(record['source'], '')}"
    if not record["improved"]:
        return (f"The tuned version is the starting model: no step beat it on the held-out "
                f"images ({name} {start} at the start; {measured}).")
    return (f"Held-out {name}: {start} at the start, {best} at step {record['best_step']}, "
            f"the tuned version ({measured}).")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
