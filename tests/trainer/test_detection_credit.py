"""Detection's reward-to-go: each box's tokens are credited the reward gained from that box on."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from trainer.configs import DetectionTaskConfig
from trainer.tasks.detection import TOKENS_PER_BOX, DetectionTask

TASK = DetectionTask(DetectionTaskConfig(coord_bins=101, max_boxes=4), num_classes=3)
GT = SimpleNamespace(
    boxes=torch.tensor([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]]),
    classes=torch.tensor([[0, 2]]),
    valid=torch.tensor([[True, True]]),
)


def sequence(boxes: list[tuple[list[float], int]]) -> torch.Tensor:
    """One (1, L) token sequence of (box, class) pairs, then EOS."""
    count = len(boxes)
    padded = boxes + [([0.0] * 4, 0)] * (TASK.codec.max_boxes - count)
    return TASK.codec.encode(
        torch.tensor([[b for b, _ in padded]]), torch.tensor([[c for _, c in padded]]),
        torch.tensor([[i < count for i in range(len(padded))]]), None,
    )


def test_each_box_is_credited_the_reward_from_it_on() -> None:
    hit_first = ([0.1, 0.1, 0.4, 0.4], 0)
    duplicate = ([0.12, 0.1, 0.4, 0.4], 0)  # overlaps the first gt, worse than the hit
    hit_second = ([0.5, 0.5, 0.9, 0.9], 2)
    tokens = sequence([hit_first, duplicate, hit_second])
    scored = TASK.reward(tokens, GT, 1)
    to_go = TASK.rewards_to_go(tokens, GT, 1, scored)[0]
    # Alone, the hit gets 1 (all thresholds), the duplicate costs 0.3 x its share of thresholds.
    assert torch.isclose(scored.reward[0], torch.tensor(2.0 - 0.3 * 0.9), atol=1e-6)
    box = [to_go[i * TOKENS_PER_BOX : (i + 1) * TOKENS_PER_BOX] for i in range(3)]
    assert torch.allclose(box[0], scored.reward[0])  # the first box: the whole reward
    assert torch.allclose(box[1], torch.tensor(1.0 - 0.3 * 0.9))  # reward minus the hit's 1
    assert torch.allclose(box[2], torch.tensor(1.0))  # the second hit's own reward
    assert torch.all(to_go[3 * TOKENS_PER_BOX :] == 0)  # EOS and after: nothing left to gain


def test_rows_keep_their_own_ground_truth() -> None:
    """n samples per image: prefixes are scored against their own image's boxes."""
    tokens = torch.cat([sequence([([0.5, 0.5, 0.9, 0.9], 2)]), sequence([])])
    batch = SimpleNamespace(**{k: torch.cat([v, v]) for k, v in vars(GT).items()})
    scored = TASK.reward(tokens.repeat(2, 1), batch, 2)
    to_go = TASK.rewards_to_go(tokens.repeat(2, 1), batch, 2, scored)
    assert torch.allclose(to_go[:, 0], torch.tensor([1.0, 0.0, 1.0, 0.0]))
