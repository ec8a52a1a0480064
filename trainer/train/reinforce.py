"""REINFORCE tuning, after the paper's Algorithm 2: sample N, score, baseline, loss, update.

Baselines (`TuneConfig.baseline`):
- `paper`: the paper's detection recipe. Of each image's N samples one is optimised, and the
  mean reward of the other N-1 is its baseline (they are spent on the baseline only).
- `loo`: leave-one-out over all N (RLOO): every sample is optimised with the mean reward of the
  other N-1 as its baseline; unbiased as well, and no sample is wasted.
- `none`: b = 0 (for tests and ablations).
With a frozen reference policy and `kl_coef > 0`, the reward is shaped by
`- kl_coef * (log p(y|x) - log p_ref(y|x))`, a one-sample estimate of the KL to the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainer.train.config import TuneConfig


def leave_one_out_baseline(rewards: Tensor) -> Tensor:
    """(B, N) -> (B, N): for each sample, the mean reward of the image's other N-1 samples."""
    n = rewards.shape[1]
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (n - 1)


def reinforce_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task,
    batch,
    config: TuneConfig,
    generator: torch.Generator | None = None,
    reference: nn.Module | None = None,
) -> dict[str, float]:
    """One REINFORCE update on a batch of images; returns its metrics.

    The model needs `sample`, `trim`, `logits` and `token_logprobs` (and `log_prob` for the
    KL term); the task `reward(tokens, batch, n)`, whose result has `reward`, `select(rows)` and
    `metrics()`, and `aux_loss(logits, scored)`.
    """
    images, b, n = batch.images, batch.images.shape[0], config.samples
    # 1. Sample N outputs per image from the current policy.
    tokens, _ = model.sample(images, n, temperature=config.temperature, generator=generator)
    # 2. Score them with the task reward.
    scored = task.reward(tokens, batch, n)
    rewards = scored.reward.view(b, n)
    if reference is not None and config.kl_coef > 0:
        with torch.no_grad():
            kl = model.log_prob(images, tokens) - reference.log_prob(images, tokens)
        rewards = rewards - config.kl_coef * kl.view(b, n)
    # 3. Baseline; the paper's recipe keeps sample 0 of each image (samples are i.i.d.).
    baseline = leave_one_out_baseline(rewards) if config.baseline != "none" else 0 * rewards
    keep = torch.arange(b * n, device=images.device)
    if config.baseline == "paper":
        keep = keep.view(b, n)[:, 0]
    advantage = (rewards - baseline).flatten()[keep]
    # 4. Loss: -(r - b) log p(y|x), plus the task's supervised auxiliary loss (confidence).
    kept = model.trim(tokens[keep])
    logits = model.logits(images, kept)
    logp = model.token_logprobs(logits, kept, config.temperature).sum(dim=1)
    pg_loss = -(advantage * logp).mean()
    aux_loss = task.aux_loss(logits, scored.select(keep))
    loss = pg_loss + aux_loss
    # 5. Update.
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return {
        "reward": scored.reward.mean().item(),
        "advantage_abs": advantage.abs().mean().item(),
        "pg_loss": pg_loss.item(),
        "aux_loss": aux_loss.item(),
        "logp": logp.mean().item(),
        "grad_norm": float(grad_norm),
        **scored.metrics(),
    }
