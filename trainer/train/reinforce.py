"""REINFORCE tuning, after the paper's Algorithm 2: sample N, score, baseline, loss, update.

Baselines (`TuneConfig.baseline`):
- `paper`: the paper's detection recipe. Of each image's N samples one is optimised, and the
  mean reward of the other N-1 is its baseline (they are spent on the baseline only).
- `loo`: leave-one-out over all N (RLOO): every sample is optimised with the mean reward of the
  other N-1 as its baseline; unbiased as well, and no sample is wasted.
- `none`: b = 0 (for tests and ablations).
Credit (`TuneConfig.credit`): `sequence` credits every token with the sample's reward, as the
paper; `reward_to_go` credits a token with the sample's reward minus the reward that the output
units (boxes) before the token's own would get alone, as the task computes it (`rewards_to_go`).
That part depends only on earlier tokens, so leaving it out keeps the gradient's expectation and
removes its noise (REINFORCE with causality, Williams 1992).
With a frozen reference policy and `kl_coef > 0`, the reward is shaped by
`- kl_coef * (log p(y|x) - log p_ref(y|x))`, a one-sample estimate of the KL to the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainer.configs import TuneConfig
from trainer.models.sampling import Generators
from trainer.train.distributed import average_gradients


def leave_one_out_baseline(rewards: Tensor) -> Tensor:
    """(B, N, ...) -> same shape: for each sample, the mean of the image's other N-1 samples."""
    n = rewards.shape[1]
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (n - 1)


def reinforce_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task,
    batch,
    config: TuneConfig,
    generator: Generators = None,
    reference: nn.Module | None = None,
) -> dict[str, float]:
    """One REINFORCE update on a batch of images; returns its metrics. `generator`: one for the
    sampling, or one per image (`trainer.models.sampling`).

    The model needs `sample`, `trim`, `logits` and `token_logprobs` (and `log_prob` for the
    KL term); the task `reward(tokens, batch, n)`, whose result has `reward`, `select(rows)` and
    `metrics()`, `aux_loss(logits, scored)` and, for `credit="reward_to_go"`,
    `rewards_to_go(tokens, batch, n, scored) -> (B*n, L)`; for `fill`, a `min_length`
    argument to `sample`, `logits` and `log_prob` and a `spec` (Pix2seq).
    """
    images, b, n = batch.images, batch.images.shape[0], config.samples
    # With `fill`, the policy is the model with EOS forbidden until the sequence is full.
    fill = {"min_length": model.spec.length} if config.fill else {}
    # 1. Sample N outputs per image from the current policy.
    tokens, _ = model.sample(images, n, temperature=config.temperature, generator=generator,
                             **fill)
    length = tokens.shape[1]
    # 2. Score them with the task reward; each token's return: the sample's reward, or with
    # `reward_to_go` the part of it gained from the token's output unit (box) on.
    scored = task.reward(tokens, batch, n)
    if config.credit == "reward_to_go":
        returns = task.rewards_to_go(tokens, batch, n, scored)  # (B*n, L)
    else:
        returns = scored.reward[:, None].expand(-1, length)  # (B*n, L)
    if reference is not None and config.kl_coef > 0:
        with torch.no_grad():
            kl = model.log_prob(images, tokens, **fill) - reference.log_prob(images, tokens, **fill)
        returns = returns - config.kl_coef * kl[:, None]
    returns = returns.reshape(b, n, length)
    # 3. Baseline; the paper's recipe keeps sample 0 of each image (samples are i.i.d.).
    baseline = leave_one_out_baseline(returns) if config.baseline != "none" else 0 * returns
    keep = torch.arange(b * n, device=images.device)
    if config.baseline == "paper":
        keep = keep.view(b, n)[:, 0]
    advantage = (returns - baseline).flatten(0, 1)[keep]  # (K, L)
    # 4. Loss: -(r - b) log p(y|x) summed over each sample's tokens, plus the task's
    # supervised auxiliary loss (confidence).
    kept = model.trim(tokens[keep])
    logits = model.logits(images, kept, **fill)
    token_logp = model.token_logprobs(logits, kept, config.temperature)  # (K, T), T <= L
    pg_loss = -(advantage[:, : kept.shape[1]] * token_logp).sum(dim=1).mean()
    aux_loss = task.aux_loss(logits, scored.select(keep))
    loss = pg_loss + aux_loss
    # 5. Update, with the gradient averaged over the data-parallel processes (if several).
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(model)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return {
        "reward": scored.reward.mean().item(),
        "advantage_abs": advantage[:, 0].abs().mean().item(),
        "pg_loss": pg_loss.item(),
        "aux_loss": aux_loss.item(),
        "logp": token_logp.sum(dim=1).mean().item(),
        "grad_norm": float(grad_norm),
        **scored.metrics(),
    }
