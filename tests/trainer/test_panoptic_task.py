"""Panoptic task and model: the codec, exact sample log-probabilities, the reward against
torchmetrics on the model's own outputs, and a tiny MLE-then-REINFORCE run with the pipeline's
steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from trainer.configs import TuneConfig
from trainer.data.coco_panoptic import scene_panoptic
from trainer.data.shapes import CLASS_NAMES, ShapesConfig, generate_scene, scene_seed
from trainer.models.colorizer import ColorizerConfig
from trainer.models.panoptic_net import PanopticNet
from trainer.tasks.panoptic import (
    PanopticTask,
    PanopticTaskConfig,
    evaluate_panoptic,
    segments_per_map,
)
from trainer.train.mle import make_optimizer, mle_step
from trainer.train.reinforce import reinforce_step

TINY_MODEL = ColorizerConfig(image_size=32, width=16, blocks=2)
# 2-pixel patches of 32-pixel images: the default 4-pixel patches of 64-pixel ones, scaled.
TASK = PanopticTask(PanopticTaskConfig(patch=2), len(CLASS_NAMES))
SHAPES = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2, max_object_size=0.5)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(scene_seed("val", i), SHAPES) for i in range(6)]


@pytest.fixture(scope="module")
def batch(scenes):
    return TASK.collate(scenes, 32)


def test_batch_carries_the_scenes_panoptic_maps(scenes, batch) -> None:
    assert batch.images.shape == (6, 3, 32, 32)
    expected = torch.from_numpy(np.stack([scene_panoptic(scene) for scene in scenes]))
    assert torch.equal(batch.panoptic, expected)
    assert batch.targets.shape == (6, (32 // TASK.config.patch) ** 2)


def test_slots_name_the_cell_of_the_box_centre() -> None:
    # Slot grid 4 over 64 px: cells of 16 px. Class 2 centred at (y 40, x 8): row 2, column 0.
    boxes = np.array([[30.0, 0.0, 50.0, 16.0], [0.0, 48.0, 10.0, 64.0]], dtype=np.float32)
    tokens = TASK.codec.instance_tokens(np.array([2, 0]), boxes, 64)
    assert tokens.tolist() == [0, 1 + 2 * 16 + 8, 1 + 0 * 16 + 3]
    maps = TASK.codec.decode(torch.tensor([[0, 1 + 2 * 16 + 8, 1 + 3, 0]]), 4)
    assert maps[0, ..., 0].tolist() == [[0, 0, 3, 3], [0, 0, 3, 3], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert maps[0, ..., 1].tolist() == [[0, 0, 9, 9], [0, 0, 9, 9], [4, 4, 0, 0], [4, 4, 0, 0]]


def test_true_tokens_decode_close_to_the_truth(batch) -> None:
    truth = TASK.reward(batch.targets, batch, 1)
    assert (truth.reward > 0.6).all()  # only the patches' blocky outlines are lost
    random = torch.randint(0, TASK.codec.bins, batch.targets.shape,
                           generator=torch.Generator().manual_seed(0))
    assert (TASK.reward(random, batch, 1).reward < 0.2).all()
    assert segments_per_map(torch.tensor([[0, 5, 5, 0], [7, 7, 7, 7]])).tolist() == [2, 1]


def test_sampled_logprob_equals_recomputed_logprob(batch) -> None:
    torch.manual_seed(0)
    model = PanopticNet(TINY_MODEL, TASK.spec).eval()
    tokens, logprobs = model.sample(batch.images, 3, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (18, 256)
    assert torch.allclose(model.log_prob(batch.images, tokens), logprobs, atol=1e-3)
    assert not torch.equal(tokens[0], tokens[1])  # one image's samples differ
    assert torch.equal(model.greedy(batch.images), model(batch.images).argmax(-1))


def test_model_needs_rgb_input(batch) -> None:
    model = PanopticNet(TINY_MODEL, TASK.spec)
    with pytest.raises(ValueError, match="RGB"):
        model(batch.images[:, :1])


def _torchmetrics_pq(maps: torch.Tensor, truth: torch.Tensor) -> list[float]:
    out = []
    for pred, target in zip(maps, truth, strict=True):
        metric = PanopticQuality(things=set(range(1, len(CLASS_NAMES) + 1)), stuffs={0})
        metric.update(pred[None], target[None])
        out.append(float(metric.compute()))
    return out


def test_reward_equals_torchmetrics_on_model_samples(batch) -> None:
    torch.manual_seed(0)
    model = PanopticNet(TINY_MODEL, TASK.spec).eval()
    sampled, _ = model.sample(batch.images, 2, generator=torch.Generator().manual_seed(1))
    # Samples of an untrained model spoil a share of the true patches (from none to most), so
    # the maps have matched, missed and spurious segments alike.
    share = torch.linspace(0, 0.6, sampled.shape[0])[:, None]
    noise = torch.rand(sampled.shape, generator=torch.Generator().manual_seed(2))
    tokens = torch.where(noise < share, sampled, batch.targets.repeat_interleave(2, dim=0))
    scored = TASK.reward(tokens, batch, 2)
    maps = TASK.codec.decode(tokens, 32)
    expected = _torchmetrics_pq(maps, batch.panoptic.repeat_interleave(2, dim=0))
    assert scored.reward.tolist() == pytest.approx(expected, abs=1e-6)
    assert len(set(np.round(expected, 3))) > 6  # varied cases, not all 0 or all 1


def test_mle_then_reinforce_runs_with_the_pipeline_steps(scenes, batch) -> None:
    torch.manual_seed(0)
    model = PanopticNet(TINY_MODEL, TASK.spec)
    optimizer = make_optimizer(model, 3e-3, 0.0)
    targets = TASK.targets(batch, None)
    losses = [mle_step(model, optimizer, batch.images, targets, 1.0)["loss"] for _ in range(5)]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    before = [p.detach().clone() for p in model.parameters()]
    # A fresh optimiser (no momentum from MLE): parameters move only if the rewards differ.
    # At temperature 0.3 the samples are mostly the background the model has learnt so far,
    # which matches the truth's, so rewards are above 0 and unequal.
    optimizer = make_optimizer(model, 1e-3, 0.0)
    config = TuneConfig(samples=3, lr=1e-3, temperature=0.3)
    sampler = torch.Generator().manual_seed(1)
    for _ in range(2):
        metrics = reinforce_step(model, optimizer, TASK, batch, config, sampler)
        assert all(math.isfinite(value) for value in metrics.values())
        assert metrics["reward"] > 0 and metrics["advantage_abs"] > 0
    assert metrics["segments_per_sample"] >= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    figures = evaluate_panoptic(model.eval(), TASK, scenes[:3])
    assert set(figures) == {"pq", "sq", "rq", "reward", "segments_per_image"}
    assert all(math.isfinite(value) for value in figures.values())
