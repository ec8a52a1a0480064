"""One frozen config dataclass per run; every field carries a one-line help (`help_for`).

A checkpoint stores its configs as plain dicts, so any checkpoint can be evaluated or resumed
alone. `apply_overrides` turns CLI `key=value` strings into a new config (values are parsed as
the field's type), raising `ValueError` with the field name on a bad key or value.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

BASELINES = ("loo", "paper", "none")  # TuneConfig.baseline
CREDITS = ("sequence", "reward_to_go")  # TuneConfig.credit


def opt(default: Any, help: str) -> Any:
    """A dataclass field with a default and its one-line help."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the Pix2seq encoder-decoder (the task sets vocabulary and sequence length)."""

    image_size: int = opt(64, "side of the square model input in pixels (multiple of 8)")
    d_model: int = opt(128, "width of encoder and decoder")
    heads: int = opt(4, "attention heads")
    encoder_layers: int = opt(2, "Transformer blocks over the 8x8-pixel patch tokens")
    decoder_layers: int = opt(2, "Transformer decoder blocks")
    mlp_ratio: int = opt(4, "hidden width of the MLPs as a multiple of d_model")


@dataclass(frozen=True)
class DetectionTaskConfig:
    """The detection task: sequence codec and reward."""

    coord_bins: int = opt(64, "quantisation bins per box coordinate")
    conf_bins: int = opt(11, "bins of the confidence token (predicted IoU), 0..1 inclusive")
    max_boxes: int = opt(10, "most boxes in a sequence (the sequence is 6 tokens a box + EOS)")
    duplicate_penalty: float = opt(0.3, "reward lost per duplicate prediction (paper: 0.3)")
    confidence_weight: float = opt(0.3, "weight of the confidence token's IoU loss (paper: 0.3)")


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from."""

    data_dir: str = opt("", "COCO folder (instances.json + images); empty = Synthetic Shapes")
    min_objects: int = opt(1, "Synthetic Shapes: fewest objects per scene")
    max_objects: int = opt(6, "Synthetic Shapes: most objects per scene")
    eval_images: int = opt(300, "held-out images evaluated (first ones of the split)")
    eval_split: str = opt("test", "Synthetic Shapes split to evaluate on (val or test)")


@dataclass(frozen=True)
class PretrainConfig:
    """MLE pretraining: teacher forcing, random object order, fresh scenes every batch."""

    steps: int = opt(6000, "optimiser steps")
    batch_size: int = opt(32, "images per step")
    lr: float = opt(1e-3, "peak AdamW learning rate (linear warmup, cosine decay to 10%)")
    warmup: int = opt(200, "warmup steps")
    weight_decay: float = opt(0.05, "AdamW weight decay")
    grad_clip: float = opt(1.0, "max gradient norm")
    seed: int = opt(0, "seed of the initialisation and the scene stream")
    max_seconds: float = opt(0.0, "wall-time budget: stop (LR schedule ends) by then; 0 = none")
    log_every: int = opt(50, "steps between metrics-log lines")
    threads: int = opt(0, "torch CPU threads; 0 = leave torch's default")


@dataclass(frozen=True)
class TuneConfig:
    """REINFORCE tuning of a pretrained model (the paper's Algorithm 2)."""

    steps: int = opt(600, "optimiser steps")
    batch_size: int = opt(8, "images per step (over all processes)")
    samples: int = opt(8, "N: samples drawn per image")
    baseline: str = opt("loo", "'loo': every sample, baseline = mean of the other N-1; "
                               "'paper': one sample per image, same baseline; 'none'")
    credit: str = opt("sequence", "'sequence': every token of a sample is credited its whole "
                                  "reward (the paper); 'reward_to_go': only the reward gained "
                                  "from its box on (same expected gradient, less variance)")
    lr: float = opt(1e-4, "AdamW learning rate (constant after warmup)")
    readout_lr: float = opt(1e-3, "learning rate of the confidence readout (its own loss, "
                                  "apart from the policy)")
    warmup: int = opt(20, "warmup steps")
    temperature: float = opt(1.0, "sampling temperature during tuning")
    fill: bool = opt(False, "sample with EOS forbidden until the sequence is full (Pix2seq's "
                            "delayed EOS): the policy tuned is the 'fill' decoding, whose "
                            "extra outputs the reward and the confidence token sort out")
    kl_coef: float = opt(0.0, "KL penalty to the pretrained policy (paper: none)")
    grad_clip: float = opt(1.0, "max gradient norm")
    seed: int = opt(1, "seed of the scene stream and the sampling")
    max_seconds: float = opt(0.0, "wall-time budget: stop by then; 0 = none")
    log_every: int = opt(20, "steps between metrics-log lines")
    threads: int = opt(0, "torch CPU threads; 0 = leave torch's default")
    processes: int = opt(1, "data-parallel processes (torchrun; NCCL on GPUs, one each, gloo "
                            "on CPU); each takes an equal share of batch_size")

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes={self.processes}: must be at least 1")
        if self.batch_size % self.processes:
            raise ValueError(f"batch_size={self.batch_size} is not divisible by processes="
                             f"{self.processes}: each process takes an equal share of the batch")


def help_for(config_type: type) -> dict[str, str]:
    """Field name -> one-line help, for `--help` texts."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(config_type)}


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(config_type: type[T], values: dict[str, Any]) -> T:
    """Rebuild a config, ignoring keys a newer/older version does not know."""
    names = {f.name for f in dataclasses.fields(config_type)}
    return config_type(**{k: v for k, v in values.items() if k in names})


def apply_overrides(config: T, overrides: dict[str, str]) -> T:
    """A copy of `config` with `key=value` strings applied; unknown keys raise ValueError."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown setting {key!r} (known: {', '.join(sorted(fields))})")
        current = getattr(config, key)
        try:
            if isinstance(current, bool):
                if raw.lower() not in {"true", "false", "1", "0"}:
                    raise ValueError
                values[key] = raw.lower() in {"true", "1"}
            elif isinstance(current, int | float):
                values[key] = type(current)(json.loads(raw))
            else:
                values[key] = raw
        except (ValueError, TypeError):
            raise ValueError(f"{key}={raw!r}: expected a {type(current).__name__}") from None
    return dataclasses.replace(config, **values)


def config_hash(*configs: Any) -> str:
    """A short stable hash of configs, to key cached checkpoints."""
    import hashlib

    text = json.dumps([to_dict(c) for c in configs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
