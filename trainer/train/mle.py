"""MLE pretraining: teacher forcing on target sequences (objects in random order)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.models.pix2seq import Pix2SeqModel


def mle_loss(model: Pix2SeqModel, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per policy token (deterministic slots and PAD excluded)."""
    tokens = model.trim(tokens)
    logits = model.logits(images, tokens)
    logp = model.token_logprobs(logits, tokens)
    return -logp.sum() / model.scored_mask(tokens).sum().clamp_min(1)


def mle_step(
    model: Pix2SeqModel,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    tokens: torch.Tensor,
    grad_clip: float,
) -> dict[str, float]:
    """One teacher-forced update; returns its metrics."""
    loss = mle_loss(model, images, tokens)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"loss": loss.item(), "grad_norm": float(grad_norm)}


def warmup_cosine(
    step: int, total: int, warmup: int, floor: float = 0.1, time_fraction: float = 0.0
) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to `floor`. With a time
    budget, the decay follows whichever of steps and wall time is further along."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, readout_lr: float | None = None
) -> torch.optim.AdamW:
    """AdamW with no decay on biases, norms, embeddings' positions (1-D or position tables).
    With `readout_lr`, the confidence readout (`readout.*`, trained apart from the policy by its
    own loss) learns at that rate. Each group keeps its peak rate as `base_lr` for schedules."""
    decay, no_decay, readout = [], [], []
    for name, p in model.named_parameters():
        if readout_lr is not None and name.startswith("readout."):
            readout.append(p)
        else:
            (no_decay if p.ndim < 2 or name.endswith("_pos") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "base_lr": lr},
              {"params": no_decay, "weight_decay": 0.0, "base_lr": lr}]
    if readout:
        groups.append({"params": readout, "weight_decay": 0.0, "base_lr": readout_lr})
    for group in groups:
        group["lr"] = group["base_lr"]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))
