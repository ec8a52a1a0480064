"""Every run config of the trainer, and the rules of their values: plain dataclasses, no torch.

One frozen dataclass per run and per task; every field carries a one-line help and, where a
user can set it, its range (`opt(..., ge=1, le=4096)`, `choices=...`). Each config checks
itself when built (`__post_init__`): the field's type, its range, and the rules that tie fields
together. A bad value raises `ConfigError`, which names the field, so the command line prints
it and the platform answers HTTP 400 naming `config.<field>`. This module imports nothing
heavier than the standard library: the platform's web processes validate configs with it and
never load torch.

A checkpoint stores its configs as plain dicts (`to_dict`), so any checkpoint can be evaluated
or resumed alone (`from_dict`). `apply_overrides` turns CLI `key=value` strings into a new
config, parsing each value as the field's type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

BASELINES = ("loo", "paper", "none")  # TuneConfig.baseline
CREDITS = ("sequence", "reward_to_go")  # TuneConfig.credit
READOUTS = ("boxes", "image", "tokens", "policy")  # RewardModelConfig.readout
# RewardModelConfig.task: whose outputs a reward model scores; each task's readouts, the first
# its default (`default_readout`).
REWARD_MODEL_TASKS = ("detection", "captioning", "colorization", "panoptic")
READOUTS_OF_TASK: dict[str, tuple[str, ...]] = {
    "detection": ("boxes", "image", "policy"),
    "captioning": ("tokens", "policy"),
    "colorization": ("image", "policy"),
    "panoptic": ("image", "policy"),
}
RATING_LEVELS = 5  # ratings are integers 1..RATING_LEVELS
DEFAULT_FIDELITY_WEIGHT = 16.0  # colorization: colourfulness points per dB of PSNR
EVAL_SPLITS = ("val", "test")  # DataConfig.eval_split
SEED_MAX = 2**31 - 1
MAX_THREADS = 256  # torch CPU threads: more than any machine here has, far below what kills one
A_WEEK_S = 7 * 24 * 3600.0


class ConfigError(ValueError):
    """A config value that cannot be used; `errors` maps each bad field to a sentence that
    starts with the field's name ("steps must be >= 1 ...")."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors.values()))

    @property
    def field(self) -> str:
        """The first bad field."""
        return next(iter(self.errors))


def opt(default: Any, help: str, *, ge: float | None = None, gt: float | None = None,
        le: float | None = None, lt: float | None = None,
        choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with its default, one-line help and the values it accepts."""
    rules = {name: value for name, value in
             (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("choices", choices))
             if value is not None}
    return field(default=default, metadata={"help": help, **rules})


def _bound_text(rules: dict[str, Any]) -> str:
    if "choices" in rules:
        return "one of " + ", ".join(repr(c) for c in rules["choices"])
    low = (f">= {rules['ge']:g}" if "ge" in rules else
           f"> {rules['gt']:g}" if "gt" in rules else "")
    high = (f"<= {rules['le']:g}" if "le" in rules else
            f"< {rules['lt']:g}" if "lt" in rules else "")
    return " and ".join(part for part in (low, high) if part)


def range_of(config_type: type, name: str) -> str:
    """The values field `name` accepts, in words ('>= 1 and <= 4096'); '' when any."""
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    return _bound_text(dict(fields[name].metadata))


def _type_error(value: Any, expected: type) -> str | None:
    """Why `value` is not of the field's type (JSON true is not a number), or None."""
    if expected is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool):
        return f"must be a {'number' if expected is float else expected.__name__}"
    if expected is float:
        if not isinstance(value, int | float):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if expected is int:
        return None if isinstance(value, int) else "must be a whole number"
    if expected is str:
        return None if isinstance(value, str) else "must be a string"
    return None


def _value_error(value: Any, rules: dict[str, Any]) -> str | None:
    if "choices" in rules and value not in rules["choices"]:
        return f"must be {_bound_text(rules)}, got {value!r}"
    if (("ge" in rules and value < rules["ge"]) or ("gt" in rules and value <= rules["gt"])
            or ("le" in rules and value > rules["le"])
            or ("lt" in rules and value >= rules["lt"])):
        return f"must be {_bound_text(rules)}, got {value!r}"
    return None


def check_fields(config: Any) -> None:
    """Check every field of a config dataclass against its type and its rules; whole numbers
    given for float fields become floats. Raises `ConfigError` naming every bad field."""
    errors: dict[str, str] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        expected = type(f.default) if f.default is not dataclasses.MISSING else None
        if expected not in (bool, int, float, str):
            continue
        why = _type_error(value, expected) or _value_error(value, dict(f.metadata))
        if why:
            errors[f.name] = f"{f.name} {why}"
        elif expected is float and not isinstance(value, float):
            object.__setattr__(config, f.name, float(value))
    if errors:
        raise ConfigError(errors)


def fail(name: str, sentence: str) -> None:
    """Refuse field `name` for a rule that ties it to others (`sentence` names it)."""
    raise ConfigError({name: sentence})


class Checked:
    """Mixin: a config dataclass that checks its fields when built, then `check()` (the rules
    that tie fields together, if any)."""

    def __post_init__(self) -> None:
        check_fields(self)
        self.check()

    def check(self) -> None:
        """Rules between fields; raise with `fail(field, sentence)`."""


@dataclass(frozen=True)
class ModelConfig(Checked):
    """Sizes of the Pix2seq encoder-decoder (the task sets vocabulary and sequence length)."""

    image_size: int = opt(64, "side of the square model input in pixels (multiple of 8)",
                          ge=16, le=1024)
    d_model: int = opt(128, "width of encoder and decoder", ge=8, le=4096)
    heads: int = opt(4, "attention heads", ge=1, le=64)
    encoder_layers: int = opt(2, "Transformer blocks over the 8x8-pixel patch tokens",
                              ge=1, le=48)
    decoder_layers: int = opt(2, "Transformer decoder blocks", ge=1, le=48)
    mlp_ratio: int = opt(4, "hidden width of the MLPs as a multiple of d_model", ge=1, le=16)

    def check(self) -> None:
        if self.image_size % 8:
            fail("image_size",
                 f"image_size must be a multiple of 8 (the patch side), got {self.image_size}")
        if self.d_model % self.heads:
            fail("heads", f"heads must divide d_model={self.d_model}, got {self.heads}")


@dataclass(frozen=True)
class DetectionTaskConfig(Checked):
    """The detection task: sequence codec and reward."""

    coord_bins: int = opt(64, "quantisation bins per box coordinate", ge=2, le=4096)
    conf_bins: int = opt(11, "bins of the confidence token (predicted IoU), 0..1 inclusive",
                         ge=2, le=1001)
    max_boxes: int = opt(10, "most boxes in a sequence (the sequence is 6 tokens a box + EOS)",
                         ge=1, le=200)
    duplicate_penalty: float = opt(0.3, "reward lost per duplicate prediction (paper: 0.3)",
                                   ge=0, le=10)
    confidence_weight: float = opt(0.3, "weight of the confidence token's IoU loss (paper: 0.3)",
                                   ge=0, le=100)


@dataclass(frozen=True)
class CaptioningTaskConfig(Checked):
    """The captioning task: vocabulary, sequence length and the reward's idf corpus."""

    max_words: int = opt(48, "most words in a caption (longer references are cut)",
                         ge=1, le=512)
    max_count: int = opt(10, "the vocabulary covers scenes of up to this many objects",
                         ge=1, le=100)
    idf_images: int = opt(1000, "training scenes whose captions give CIDEr-D's idf",
                          ge=1, le=1_000_000)


def _power_of_two(name: str, value: int) -> None:
    if value & (value - 1):
        fail(name, f"{name} must be a power of two, got {value}")


@dataclass(frozen=True)
class ColorizationTaskConfig(Checked):
    """The colorization task: output grid, colour bins and reward weight."""

    patch: int = opt(4, "pixels a side of the patch that gets one colour (a power of two)",
                     ge=1, le=64)
    ab_bins: int = opt(17, "bins per Lab axis over [-ab_max, ab_max]; odd keeps grey",
                       ge=2, le=255)
    ab_max: float = opt(100.0, "largest |a| and |b| the bins cover", gt=0, le=128)
    fidelity_weight: float = opt(DEFAULT_FIDELITY_WEIGHT, "reward points per dB of PSNR",
                                 ge=0, le=1000)

    def check(self) -> None:
        _power_of_two("patch", self.patch)


@dataclass(frozen=True)
class PanopticTaskConfig(Checked):
    """The panoptic task: output grid and instance slots (both shape the model's output)."""

    patch: int = opt(4, "pixels a side of the patch that gets one label (a power of two)",
                     ge=1, le=64)
    slot_grid: int = opt(4, "an instance's id is the cell of its box centre on this grid a side",
                         ge=1, le=32)

    def check(self) -> None:
        _power_of_two("patch", self.patch)


@dataclass(frozen=True)
class ColorizerConfig(Checked):
    """Sizes of the colorizer (the task sets the colour bins and the patch size)."""

    image_size: int = opt(64, "side of the square greyscale input in pixels", ge=8, le=1024)
    width: int = opt(64, "channels of the convolutional body", ge=1, le=2048)
    blocks: int = opt(4, "residual blocks; dilations 1, 2, 4, 8, ... widen the context",
                      ge=1, le=32)


@dataclass(frozen=True)
class DataConfig(Checked):
    """Where examples come from."""

    data_dir: str = opt("", "COCO folder (instances.json + images); empty = Synthetic Shapes")
    min_objects: int = opt(1, "Synthetic Shapes: fewest objects per scene", ge=1, le=64)
    max_objects: int = opt(6, "Synthetic Shapes: most objects per scene", ge=1, le=64)
    eval_images: int = opt(300, "held-out images evaluated (first ones of the split)",
                           ge=1, le=100_000)
    eval_split: str = opt("test", "Synthetic Shapes split to evaluate on (val or test; tuning "
                                  "selects its best step on val, so test keeps them apart)",
                          choices=EVAL_SPLITS)
    val_fraction: float = opt(0.1, "data folder: seeded share of its images held out of training, "
                                   "on which tuning selects its best step (a heldout.json in "
                                   "the folder names them instead); 0 = none", ge=0, lt=1)
    split_seed: int = opt(0, "data folder: seed of the images val_fraction holds out",
                          ge=0, le=SEED_MAX)
    augment: bool = opt(True, "data folder: random horizontal flip and scale jitter of the "
                              "training images, boxes moved along (Pix2seq's recipe)")
    scale_min: float = opt(0.5, "data folder, augment: smallest scale of the jitter (Pix2seq: "
                                "0.3 at 640 px; at 64 px a third-size object drops below a "
                                "patch)", gt=0, le=1)
    scale_max: float = opt(1.5, "data folder, augment: largest scale of the jitter (Pix2seq: 2)",
                           ge=1, le=4)

    def check(self) -> None:
        if self.min_objects > self.max_objects:
            fail("min_objects", f"min_objects must be at most max_objects={self.max_objects}, "
                                f"got {self.min_objects}")


@dataclass(frozen=True)
class PretrainConfig(Checked):
    """MLE pretraining: teacher forcing, random object order, fresh scenes every batch."""

    steps: int = opt(6000, "optimiser steps", ge=1, le=10_000_000)
    batch_size: int = opt(32, "images per step", ge=1, le=65_536)
    lr: float = opt(1e-3, "peak AdamW learning rate (linear warmup, cosine decay to 10%)",
                    gt=0, lt=1)
    warmup: int = opt(200, "warmup steps", ge=0, le=10_000_000)
    weight_decay: float = opt(0.05, "AdamW weight decay", ge=0, le=10)
    grad_clip: float = opt(1.0, "max gradient norm", gt=0, le=1e12)
    seed: int = opt(0, "seed of the initialisation and the scene stream", ge=0, le=SEED_MAX)
    max_seconds: float = opt(0.0, "wall-time budget: stop (LR schedule ends) by then; 0 = none",
                             ge=0, le=A_WEEK_S)
    log_every: int = opt(50, "steps between metrics-log lines", ge=1, le=10_000_000)
    threads: int = opt(0, "torch CPU threads; 0 = leave torch's default", ge=0, le=MAX_THREADS)


@dataclass(frozen=True)
class TuneConfig(Checked):
    """REINFORCE tuning of a pretrained model (the paper's Algorithm 2)."""

    steps: int = opt(600, "optimiser steps", ge=1, le=10_000_000)
    batch_size: int = opt(8, "images per step (over all processes)", ge=1, le=65_536)
    samples: int = opt(8, "N: samples drawn per image", ge=1, le=1024)
    baseline: str = opt("loo", "'loo': every sample, baseline = mean of the other N-1; "
                               "'paper': one sample per image, same baseline; 'none'",
                        choices=BASELINES)
    credit: str = opt("sequence", "'sequence': every token of a sample is credited its whole "
                                  "reward (the paper); 'reward_to_go': only the reward gained "
                                  "from its box on (same expected gradient, less variance)",
                      choices=CREDITS)
    lr: float = opt(1e-4, "AdamW learning rate (constant after warmup)", gt=0, lt=1)
    readout_lr: float = opt(1e-3, "learning rate of the confidence readout (its own loss, "
                                  "apart from the policy)", ge=0, lt=1)
    warmup: int = opt(20, "warmup steps", ge=0, le=10_000_000)
    temperature: float = opt(1.0, "sampling temperature during tuning", gt=0, le=100)
    fill: bool = opt(False, "sample with EOS forbidden until the sequence is full (Pix2seq's "
                            "delayed EOS): the policy tuned is the 'fill' decoding, whose "
                            "extra outputs the reward and the confidence token sort out")
    kl_coef: float = opt(0.0, "KL penalty to the pretrained policy (paper: none)", ge=0, le=1e3)
    grad_clip: float = opt(1.0, "max gradient norm", gt=0, le=1e12)
    seed: int = opt(1, "seed of the scene stream and the sampling", ge=0, le=SEED_MAX)
    max_seconds: float = opt(0.0, "wall-time budget: stop by then; 0 = none", ge=0, le=A_WEEK_S)
    log_every: int = opt(20, "steps between metrics-log lines", ge=1, le=10_000_000)
    threads: int = opt(0, "torch CPU threads; 0 = leave torch's default", ge=0, le=MAX_THREADS)
    processes: int = opt(1, "data-parallel processes (torchrun; NCCL on GPUs, one each, gloo "
                            "on CPU); each takes an equal share of batch_size", ge=1, le=64)
    select_every: int = opt(200, "steps between held-out evaluations of the policy; the run "
                                 "ends with the best one's weights, the start and the last step "
                                 "included (0 = off: it ends with its last step)",
                            ge=0, le=10_000_000)
    select_images: int = opt(200, "held-out images each evaluation scores: the first of the "
                                  "Synthetic Shapes val split, or of a data folder's held-out "
                                  "share (DataConfig.val_fraction)", ge=1, le=100_000)

    def check(self) -> None:
        if self.baseline != "none" and self.samples < 2:
            fail("samples", f"samples={self.samples}: the {self.baseline!r} baseline is the "
                            "mean of an image's other samples, so it needs at least 2")
        if self.batch_size % self.processes:
            fail("batch_size", f"batch_size={self.batch_size} is not divisible by processes="
                               f"{self.processes}: each process takes an equal share of the batch")


@dataclass(frozen=True)
class RewardModelConfig(Checked):
    """A learned reward model (image, output) -> scalar, and how it is trained from feedback."""

    task: str = opt("detection", "whose outputs it scores: picks the output encoder",
                    choices=REWARD_MODEL_TASKS)
    num_classes: int = opt(8, "classes of the task (Synthetic Shapes: 8; panoptic: its thing "
                              "classes)", ge=1, le=10_000)
    image_size: int = opt(64, "side of the square input; other sizes are resized to it",
                          ge=8, le=1024)
    readout: str = opt("boxes", "'boxes' (detection): a conv net on a window around each box, "
                                "summed; 'image' (detection, colorization, panoptic): a conv "
                                "net on the image with the output drawn as channels; 'tokens' "
                                "(captioning): a transformer over the caption's words and the "
                                "image's features; 'policy' (every task): started from the "
                                "task's policy network (policy_readout.py; needs that "
                                "checkpoint to train)",
                       choices=READOUTS)
    trainable_blocks: int = opt(1, "'policy': the policy's last decoder blocks (colorization, "
                                   "panoptic: residual blocks) that learn; the rest of its "
                                   "network stays frozen", ge=0, le=48)
    belief_init: float = opt(0.0, "'policy': starting weight of the policy's log-probabilities "
                                  "of the output's tokens in its score: 0 starts the reward "
                                  "model knowing nothing; 1 as the policy's own likelihood of "
                                  "the output, a better judge of pairs at the start but, as a "
                                  "tuning reward, one that favours fewer boxes", ge=-100, le=100)
    text_layers: int = opt(2, "'tokens': transformer layers over the image's features and the "
                              "caption's words", ge=1, le=24)
    max_count: int = opt(10, "'tokens': the caption vocabulary covers scenes of up to this many "
                             "objects (the captioning task's max_count)", ge=1, le=100)
    max_words: int = opt(48, "'tokens': most words of a caption read (the captioning task's "
                             "max_words; later words are cut)", ge=1, le=512)
    window: int = opt(12, "'boxes': side of each box's window in cells", ge=1, le=256)
    margin: float = opt(0.5, "'boxes': context around a box, as a share of its side per side",
                        ge=0, le=10)
    width: int = opt(16, "channels of the first stage; each later stage doubles them",
                     ge=8, le=1024)
    stages: int = opt(2, "resolution stages; each later one halves the side", ge=1, le=8)
    steps: int = opt(600, "optimiser steps", ge=1, le=10_000_000)
    batch_size: int = opt(32, "comparisons per step, of each kind of feedback present",
                          ge=1, le=65_536)
    lr: float = opt(2e-3, "peak AdamW learning rate (linear warmup, cosine decay to 10%)",
                    gt=0, lt=1)
    warmup: int = opt(50, "warmup steps", ge=0, le=10_000_000)
    weight_decay: float = opt(0.5, "AdamW weight decay (strong: 1,600 pairs overfit easily)",
                              ge=0, le=10)
    grad_clip: float = opt(1.0, "max gradient norm", gt=0, le=1e12)
    augment: bool = opt(True, "transpose / mirror image and outputs together at random")
    ranking_loss: str = opt("plackett_luce", "'plackett_luce', or 'pairs' (Bradley-Terry on "
                                             "all pairs of each ranking)",
                            choices=("plackett_luce", "pairs"))
    heldout_fraction: float = opt(0.2, "share of images held out (with all their feedback)",
                                  gt=0, lt=1)
    eval_every: int = opt(100, "steps between held-out evaluations (and at the last step)",
                          ge=1, le=10_000_000)
    seed: int = opt(0, "seed of initialisation, split and batch order", ge=0, le=SEED_MAX)
    threads: int = opt(1, "torch CPU threads while training (1 is fastest on a busy 2-core CPU); "
                            "0 = leave torch's default", ge=0, le=MAX_THREADS)

    def check(self) -> None:
        readouts = READOUTS_OF_TASK[self.task]
        if self.readout not in readouts:
            fail("readout", f"readout {self.readout!r} does not score {self.task} outputs; "
                            f"use one of {', '.join(map(repr, readouts))}")
        if self.width % 8:
            # GroupNorm(8, ...) needs channel counts divisible by 8.
            fail("width", f"width must be a multiple of 8, got {self.width}")
        # Each stage after the first halves the side; the 'image' and 'tokens' readouts start
        # at stride 4.
        # ('policy' has the policy's own network, checked against the reward model when built.)
        if self.readout == "policy":
            return
        side, name, factor = ((self.window, "window", 2 ** (self.stages - 1))
                              if self.readout == "boxes"
                              else (self.image_size, "image_size", 2 ** (self.stages + 1)))
        if side % factor:
            fail(name,
                 f"{name} must be a multiple of {factor} (from stages={self.stages}), got {side}")


def default_readout(task: str) -> str:
    """The readout a reward model of `task` gets unless told otherwise."""
    return READOUTS_OF_TASK[task][0]


def help_for(config_type: type) -> dict[str, str]:
    """Field name -> one-line help with the values it accepts, for `--help` texts and forms."""
    helps = {}
    for f in dataclasses.fields(config_type):
        bounds = _bound_text(dict(f.metadata))
        text = f.metadata.get("help", "")
        helps[f.name] = f"{text} ({bounds})" if bounds and "choices" not in f.metadata else text
    return helps


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
    text = json.dumps([to_dict(c) for c in configs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
