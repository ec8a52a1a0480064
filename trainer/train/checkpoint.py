"""Checkpoints that carry their configs, so any one can be evaluated or resumed alone.

A checkpoint is a `torch.save`d dict: the task's name (`trainer.tasks.registry`; "detection"
when absent, as in checkpoints written before other tasks), the model, task and run configs
(plain dicts), the class names, the stage ("pretrain" or "tune"), the step reached, the model
weights and, for resuming, the optimiser state and the stream position. A tuning run's
checkpoint written before its end also holds the weights of its best held-out step so far
(`best_model`; `trainer.train.selection`), which a resumed run keeps. `load_checkpoint`
raises `CheckpointError` with a one-line reason for a missing, unreadable or foreign file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.configs import DataConfig, from_dict, to_dict
from trainer.tasks.registry import task_entry
from trainer.train.data import shapes_config

FORMAT = "tunelab-checkpoint/1"
# Checkpoints of every task were written under this name before it said what they are.
FORMERLY = ("tunelab-pix2seq-detection/1",)


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with a message fit for the command line."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: rebuild the model with `build()`."""

    model_config: Any  # the task's model config (registry)
    task_config: Any  # the task's config (registry)
    class_names: tuple[str, ...]
    stage: str
    step: int
    run_config: dict[str, Any]
    state: dict[str, Any]  # model weights
    optimizer: dict[str, Any] | None
    data_config: dict[str, Any]
    task_name: str = "detection"
    # A tuning run's best held-out weights so far, when they are not `state`.
    best_state: dict[str, Any] | None = None

    def build(self, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
        entry = task_entry(self.task_name)
        shapes = shapes_config(from_dict(DataConfig, self.data_config))
        task = entry.make_task(self.task_config, self.class_names, shapes)
        model = entry.make_model(self.model_config, task.spec)
        # Checkpoints written before the confidence readout existed load with a fresh one.
        missing, unexpected = model.load_state_dict(self.state, strict=False)
        if unexpected or any(not key.startswith("readout.") for key in missing):
            model.load_state_dict(self.state)  # raises, naming the keys
        return model.to(device), task


def write_payload(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically (a temporary file renamed), so an interrupted save leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_payload(path: str | Path, *, format: str, what: str, formerly: tuple[str, ...] = ()
                 ) -> dict[str, Any]:
    """The dict saved at `path` in `format` (or one of its `formerly` names), or
    `CheckpointError` with a one-line reason for a missing, unreadable or foreign file (`what`
    names the kind of file in the message)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"cannot read {what} {path}: {type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") not in (format, *formerly):
        raise CheckpointError(f"{path} is not a Tunelab {what}")
    return payload


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    task: Any,
    class_names: tuple[str, ...],
    stage: str,
    step: int,
    run_config: Any,
    data_config: Any,
    optimizer: torch.optim.Optimizer | None = None,
    task_name: str = "detection",
    best_state: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write atomically (a temporary file renamed), so an interrupted save leaves the old one.
    `best_state`: a tuning run's best held-out weights so far, when they are not the model's."""
    payload = {
        "format": FORMAT,
        "task": task_name,
        "model_config": to_dict(model.config),
        "task_config": to_dict(task.config),
        "class_names": list(class_names),
        "stage": stage,
        "step": step,
        "run_config": run_config if isinstance(run_config, dict) else to_dict(run_config),
        "data_config": to_dict(data_config),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
    }
    if best_state is not None:
        payload["best_model"] = {k: v.detach().cpu() for k, v in best_state.items()}
    write_payload(path, payload)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (see the module docstring)."""
    payload = read_payload(path, format=FORMAT, what="checkpoint", formerly=FORMERLY)
    try:
        name = payload.get("task", "detection")
        entry = task_entry(name)
        return Checkpoint(
            task_name=name,
            model_config=from_dict(entry.model_config, payload["model_config"]),
            task_config=from_dict(entry.task_config, payload["task_config"]),
            class_names=tuple(payload["class_names"]),
            stage=payload["stage"],
            step=int(payload["step"]),
            run_config=payload["run_config"],
            data_config=payload["data_config"],
            state=payload["model"],
            optimizer=payload["optimizer"],
            best_state=payload.get("best_model"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is incomplete or damaged ({exc})") from None
