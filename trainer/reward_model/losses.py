"""Losses that turn human feedback into a reward: pairs, rankings and 1-5 ratings.

All three read scores as Bradley-Terry utilities, so one model learns from any mix:
- pairs: `-log sigmoid(r_a - r_b)` for "a preferred", weighted by the label's probability, so a
  tie (label 0.5) pulls the two scores together;
- rankings: Plackett-Luce, the probability of choosing the best output, then the best of the
  rest, and so on; for two outputs it is exactly the pairwise loss;
- ratings: a cumulative-logit (ordinal) model, `P(rating <= k) = sigmoid(c_k - r)` with learned,
  ordered cut points c_1 < ... < c_4: the score orders outputs and the cut points place the
  rating boundaries, without assuming that the steps between ratings are equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bradley_terry_loss(score_a: Tensor, score_b: Tensor, label: Tensor) -> Tensor:
    """Mean negative log-likelihood of labels P(a preferred) in [0, 1] (0.5 = tie)."""
    margin = score_a - score_b
    nll = -(label * F.logsigmoid(margin) + (1 - label) * F.logsigmoid(-margin))
    return nll.mean()


def plackett_luce_loss(ranked_scores: Tensor) -> Tensor:
    """Mean negative log-likelihood of rankings; `ranked_scores` (N, K) is best first."""
    # log of sum_{j >= i} exp(s_j) for every position i: a reversed cumulative logsumexp.
    tails = ranked_scores.flip(-1).logcumsumexp(-1).flip(-1)
    # The last choice has probability 1 and adds nothing.
    return (tails - ranked_scores)[:, :-1].sum(-1).mean()


def ranking_pairs_loss(ranked_scores: Tensor) -> Tensor:
    """Bradley-Terry over all K (K - 1) / 2 pairs of each ranking (best first)."""
    k = ranked_scores.shape[1]
    better, worse = torch.triu_indices(k, k, offset=1, device=ranked_scores.device)
    margins = ranked_scores[:, better] - ranked_scores[:, worse]
    return -F.logsigmoid(margins).mean()


def rating_log_probs(scores: Tensor, cutpoints: Tensor) -> Tensor:
    """(N, L) log-probability of each rating level 1..L under the cumulative-logit model."""
    # P(rating <= k) at the L - 1 cut points, framed by 0 and 1.
    cumulative = torch.sigmoid(cutpoints[None, :] - scores[:, None])
    zeros, ones = cumulative.new_zeros(len(scores), 1), cumulative.new_ones(len(scores), 1)
    bounds = torch.cat([zeros, cumulative, ones], 1)
    return (bounds[:, 1:] - bounds[:, :-1]).clamp_min(1e-9).log()


def ordinal_nll(scores: Tensor, ratings: Tensor, cutpoints: Tensor) -> Tensor:
    """Mean negative log-likelihood of integer ratings 1..L (L = len(cutpoints) + 1)."""
    log_probs = rating_log_probs(scores, cutpoints)
    return -log_probs.gather(1, (ratings - 1)[:, None]).mean()
