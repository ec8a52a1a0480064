"""The one frozen config of a reward-model run: network sizes and training, each with its help."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainer.train.config import opt

RATING_LEVELS = 5  # ratings are integers 1..RATING_LEVELS


@dataclass(frozen=True)
class RewardModelConfig:
    """A learned reward model (image, output) -> scalar, and how it is trained from feedback."""

    task: str = opt("detection", "whose outputs it scores: picks the output encoder")
    num_classes: int = opt(8, "classes of the task (Synthetic Shapes: 8)")
    image_size: int = opt(64, "side of the square input; other sizes are resized to it")
    readout: str = opt("boxes", "'boxes': a conv net on a window around each box, summed; "
                                "'image': a conv net on the whole image (see model.py); "
                                "'policy': started from a detection policy's network "
                                "(policy_readout.py; needs that checkpoint to train)")
    trainable_blocks: int = opt(1, "'policy': the policy's last decoder blocks that learn; "
                                   "the rest of its network stays frozen")
    belief_init: float = opt(0.0, "'policy': starting weight of the policy's log-probabilities "
                                  "of a box's tokens in the box's score: 0 starts the reward "
                                  "model knowing nothing; 1 as the policy's own likelihood of "
                                  "the output, a better judge of pairs at the start but, as a "
                                  "tuning reward, one that favours fewer boxes")
    window: int = opt(12, "'boxes': side of each box's window in cells")
    margin: float = opt(0.5, "'boxes': context around a box, as a share of its side per side")
    width: int = opt(16, "channels of the first stage; each later stage doubles them")
    stages: int = opt(2, "resolution stages; each later one halves the side")
    steps: int = opt(600, "optimiser steps")
    batch_size: int = opt(32, "comparisons per step, of each kind of feedback present")
    lr: float = opt(2e-3, "peak AdamW learning rate (linear warmup, cosine decay to 10%)")
    warmup: int = opt(50, "warmup steps")
    weight_decay: float = opt(0.5, "AdamW weight decay (strong: 1,600 pairs overfit easily)")
    grad_clip: float = opt(1.0, "max gradient norm")
    augment: bool = opt(True, "transpose / mirror image and outputs together at random")
    ranking_loss: str = opt("plackett_luce", "'plackett_luce', or 'pairs' (Bradley-Terry on "
                                             "all pairs of each ranking)")
    heldout_fraction: float = opt(0.2, "share of images held out (with all their feedback)")
    eval_every: int = opt(100, "steps between held-out evaluations (and at the last step)")
    seed: int = opt(0, "seed of initialisation, split and batch order")
    threads: int = opt(1, "torch CPU threads while training (1 is fastest on a busy 2-core CPU); "
                            "0 = leave torch's default")

    def __post_init__(self) -> None:
        positive = ("num_classes", "image_size", "window", "width", "stages", "steps",
                    "batch_size", "eval_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.width % 8:
            # GroupNorm(8, ...) needs channel counts divisible by 8.
            raise ValueError(f"width must be a multiple of 8, got {self.width}")
        if self.readout not in {"boxes", "image", "policy"}:
            raise ValueError(f"readout must be 'boxes', 'image' or 'policy', "
                             f"got {self.readout!r}")
        if self.trainable_blocks < 0:
            raise ValueError(f"trainable_blocks must be 0 or more, got {self.trainable_blocks}")
        if not math.isfinite(self.belief_init):
            raise ValueError(f"belief_init must be a finite number, got {self.belief_init}")
        # Each stage after the first halves the side; the 'image' readout starts at stride 4.
        # ('policy' has the policy's own network, checked against the reward model when built.)
        side, name, factor = ((self.window, "window", 2 ** (self.stages - 1))
                              if self.readout == "boxes"
                              else (self.image_size, "image_size", 2 ** (self.stages + 1)))
        if self.readout != "policy" and side % factor:
            raise ValueError(f"{name} must be a multiple of {factor} (from stages)")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must lie in (0, 1), got {self.heldout_fraction}")
        if self.ranking_loss not in {"plackett_luce", "pairs"}:
            raise ValueError(f"ranking_loss must be 'plackett_luce' or 'pairs', "
                             f"got {self.ranking_loss!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
