"""The REINFORCE step on a toy categorical policy: its gradient is the exact gradient of the
expected reward (within sampling error), with and without a baseline, and a bandit improves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from trainer.configs import TuneConfig
from trainer.train.reinforce import leave_one_out_baseline, reinforce_step

REWARDS = torch.tensor([1.0, 3.0, 0.0, 2.0, 5.0])


class CategoricalPolicy(nn.Module):
    """One token from K choices, independent of the image: the smallest tunable model."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.5, -0.2, 0.1, 0.3, -0.6]))

    def trim(self, tokens: Tensor) -> Tensor:
        return tokens

    def logits(self, images: Tensor, tokens: Tensor) -> Tensor:
        return self.theta.expand(tokens.shape[0], 1, -1)

    def token_logprobs(self, logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
        return torch.log_softmax(logits / temperature, -1).gather(-1, tokens[..., None])[..., 0]

    def sample(self, images: Tensor, n: int, *, temperature: float = 1.0, generator=None):
        probs = torch.softmax(self.theta.detach() / temperature, -1)
        tokens = torch.multinomial(probs, images.shape[0] * n, True, generator=generator)
        return tokens[:, None], torch.log(probs[tokens])


@dataclass
class Scored:
    reward: Tensor

    def select(self, rows: Tensor) -> Scored:
        return Scored(self.reward[rows])

    def metrics(self) -> dict[str, float]:
        return {}


class BanditTask:
    def reward(self, tokens: Tensor, batch, n: int) -> Scored:
        return Scored(REWARDS[tokens[:, 0]])

    def aux_loss(self, logits: Tensor, scored: Scored) -> Tensor:
        return logits.sum() * 0


@dataclass
class Batch:
    images: Tensor


def exact_gradient(policy: CategoricalPolicy) -> Tensor:
    theta = policy.theta.detach().clone().requires_grad_(True)
    (torch.softmax(theta, -1) @ REWARDS).backward()
    return theta.grad


def estimated_gradient(
    policy: CategoricalPolicy, config: TuneConfig, images: int, seed: int = 0
) -> Tensor:
    """-grad of the step's loss: lr 0 keeps the parameters, the gradient stays in .grad."""
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.0)
    generator = torch.Generator().manual_seed(seed)
    reinforce_step(policy, optimizer, BanditTask(), Batch(torch.zeros(images, 1)), config,
                   generator)
    return -policy.theta.grad


@pytest.mark.parametrize("baseline", ["none", "loo", "paper"])
def test_gradient_matches_exact_gradient_of_expected_reward(baseline: str) -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy()
    config = TuneConfig(samples=4, baseline=baseline, grad_clip=1e9)
    images = 20000
    estimate = estimated_gradient(policy, config, images)
    exact = exact_gradient(policy)
    # Per-sample gradient terms are bounded by max|r| * 2, so 5 standard errors of the mean
    # over >= 20000 draws is below 0.15; a biased estimator (wrong sign or a baseline that
    # depends on the sample itself) is off by more than 0.3 on this problem.
    assert torch.allclose(estimate, exact, atol=0.15), (estimate, exact)


def test_baseline_reduces_variance() -> None:
    policy = CategoricalPolicy()
    spreads = {}
    for baseline in ("none", "loo"):
        grads = torch.stack([
            estimated_gradient(
                policy, TuneConfig(samples=4, baseline=baseline, grad_clip=1e9), 64, seed
            )
            for seed in range(30)
        ])
        spreads[baseline] = grads.std(0).sum()
    assert spreads["loo"] < spreads["none"]


def test_leave_one_out_baseline_excludes_own_reward() -> None:
    rewards = torch.tensor([[1.0, 2.0, 6.0]])
    assert torch.allclose(leave_one_out_baseline(rewards), torch.tensor([[4.0, 3.5, 1.5]]))


def test_bandit_expected_reward_improves() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy()
    before = float(torch.softmax(policy.theta.detach(), -1) @ REWARDS)
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
    config = TuneConfig(samples=4, baseline="loo")
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        metrics = reinforce_step(policy, optimizer, BanditTask(), Batch(torch.zeros(16, 1)),
                                 config, generator)
    after = float(torch.softmax(policy.theta.detach(), -1) @ REWARDS)
    assert after > before + 1.0
    assert after > 4.5  # close to the best arm's reward of 5
    assert set(metrics) >= {"reward", "pg_loss", "grad_norm"}


# --- credit="reward_to_go": a two-token policy whose reward is a first-token part plus a part
# that depends on both tokens (as a box sequence's reward grows box by box).

FIRST = torch.tensor([1.0, -2.0, 0.5])  # f(t1)
SECOND = torch.tensor([[0.0, 2.0, -1.0], [1.0, 0.0, 3.0], [-1.0, 1.0, 0.0]])  # g(t1, t2)


class TwoTokenPolicy(nn.Module):
    """Two independent categorical tokens (3 choices each), independent of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([[0.3, -0.4, 0.1], [-0.2, 0.5, 0.0]]))

    def trim(self, tokens: Tensor) -> Tensor:
        return tokens

    def logits(self, images: Tensor, tokens: Tensor) -> Tensor:
        return self.theta.expand(tokens.shape[0], 2, 3)

    def token_logprobs(self, logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
        return torch.log_softmax(logits / temperature, -1).gather(-1, tokens[..., None])[..., 0]

    def sample(self, images: Tensor, n: int, *, temperature: float = 1.0, generator=None):
        probs = torch.softmax(self.theta.detach() / temperature, -1)
        rows = images.shape[0] * n
        tokens = torch.stack(
            [torch.multinomial(probs[i], rows, True, generator=generator) for i in range(2)], 1)
        return tokens, torch.log(probs.gather(1, tokens.T)).sum(0)


class TwoTokenTask:
    def reward(self, tokens: Tensor, batch, n: int) -> Scored:
        return Scored(FIRST[tokens[:, 0]] + SECOND[tokens[:, 0], tokens[:, 1]])

    def rewards_to_go(self, tokens: Tensor, batch, n: int, scored: Scored) -> Tensor:
        return torch.stack([scored.reward, scored.reward - FIRST[tokens[:, 0]]], dim=1)

    def aux_loss(self, logits: Tensor, scored: Scored) -> Tensor:
        return logits.sum() * 0


def two_token_gradients(credit: str, images: int, seeds: range) -> Tensor:
    """(seeds, 2, 3) REINFORCE gradient estimates of the two-token policy."""
    grads = []
    for seed in seeds:
        policy = TwoTokenPolicy()
        optimizer = torch.optim.SGD(policy.parameters(), lr=0.0)
        config = TuneConfig(samples=4, baseline="loo", credit=credit, grad_clip=1e9)
        reinforce_step(policy, optimizer, TwoTokenTask(), Batch(torch.zeros(images, 1)), config,
                       torch.Generator().manual_seed(seed))
        grads.append(-policy.theta.grad)
    return torch.stack(grads)


def test_reward_to_go_is_unbiased_and_less_noisy() -> None:
    theta = TwoTokenPolicy().theta.detach().clone().requires_grad_(True)
    p1, p2 = torch.softmax(theta, -1)
    (p1 @ FIRST + p1 @ SECOND @ p2).backward()
    estimate = two_token_gradients("reward_to_go", 20000, range(1))[0]
    assert torch.allclose(estimate, theta.grad, atol=0.1), (estimate, theta.grad)
    # The second token no longer carries the first token's part of the reward: less spread.
    spread = {credit: two_token_gradients(credit, 32, range(40))[:, 1].std(0).sum()
              for credit in ("sequence", "reward_to_go")}
    assert spread["reward_to_go"] < 0.8 * spread["sequence"], spread
