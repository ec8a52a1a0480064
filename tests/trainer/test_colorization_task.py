"""Colorization task and model: Lab conversion, the ab-bin codec, exact sample
log-probabilities, the reward, and a tiny MLE-then-REINFORCE run with the pipeline's steps."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.configs import TuneConfig
from trainer.data.shapes import ShapesConfig, generate_scene, scene_seed
from trainer.models.colorizer import Colorizer, ColorizerConfig
from trainer.tasks.colorization import (
    ColorizationTask,
    ColorizationTaskConfig,
    color_batch,
    evaluate_colorization,
    lab_to_rgb,
    rgb_to_lab,
)
from trainer.train.mle import make_optimizer, mle_step
from trainer.train.reinforce import reinforce_step

TINY_MODEL = ColorizerConfig(image_size=32, width=16, blocks=2)
TASK = ColorizationTask(ColorizationTaskConfig())


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch():
    config = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2, max_object_size=0.5)
    return color_batch([generate_scene(scene_seed("val", i), config) for i in range(6)], 32)


def test_lab_of_known_colours_and_round_trip() -> None:
    white_black = torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1)
    lab = rgb_to_lab(white_black)
    assert torch.allclose(lab[:, 0].flatten(), torch.tensor([100.0, 0.0]), atol=0.01)
    assert lab[:, 1:].abs().max() < 0.01
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.05)  # the sRGB red
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)


def test_codec_round_trip_on_patch_constant_colours() -> None:
    codec, bins = TASK.codec, TASK.config.ab_bins
    generator = torch.Generator().manual_seed(0)
    # Bins near grey, lit at L = 60: every such colour is inside the sRGB gamut.
    a, b = (torch.randint(bins // 2 - 2, bins // 2 + 3, (2, 64), generator=generator)
            for _ in "ab")
    tokens = a * bins + b
    ab = codec.ab(tokens, 32)
    rgb = lab_to_rgb(torch.cat([torch.full_like(ab[:, :1], 60.0), ab], dim=1))
    assert torch.equal(codec.encode(rgb), tokens)
    gray = (0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:])
    assert torch.allclose(codec.decode(tokens, gray), rgb, atol=2e-3)


def test_true_bins_decode_near_the_truth_and_beat_random_ones(batch) -> None:
    truth = TASK.targets(batch, None)
    assert truth.shape == (6, (32 // TASK.config.patch) ** 2)
    decoded = TASK.codec.decode(truth, batch.gray)
    luma = 0.299 * decoded[:, :1] + 0.587 * decoded[:, 1:2] + 0.114 * decoded[:, 2:]
    assert (luma - batch.gray).abs().mean() < 1 / 255  # the grey image's brightness is kept
    random = torch.randint(0, TASK.codec.bins, truth.shape,
                           generator=torch.Generator().manual_seed(0))
    scored_truth, scored_random = TASK.reward(truth, batch, 1), TASK.reward(random, batch, 1)
    assert (scored_truth.psnr > 20).all()
    assert (scored_truth.reward > scored_random.reward).all()


def test_sampled_logprob_equals_recomputed_logprob(batch) -> None:
    torch.manual_seed(0)
    model = Colorizer(TINY_MODEL, TASK.spec).eval()
    generator = torch.Generator().manual_seed(0)
    tokens, logprobs = model.sample(batch.images, 3, generator=generator)
    assert tokens.shape == (18, 64)
    assert torch.allclose(model.log_prob(batch.images, tokens), logprobs, atol=1e-3)
    # Samples of one image differ (a factorised categorical), greedy takes each arg-max.
    assert not torch.equal(tokens[0], tokens[1])
    assert torch.equal(model.greedy(batch.images), model(batch.images).argmax(-1))


def test_model_refuses_colour_input(batch) -> None:
    model = Colorizer(TINY_MODEL, TASK.spec)
    with pytest.raises(ValueError, match="greyscale"):
        model(batch.rgb)
    with pytest.raises(ValueError, match="power of two"):
        Colorizer(TINY_MODEL, ColorizationTask(ColorizationTaskConfig(patch=3)).spec)


def test_mle_then_reinforce_runs_with_the_pipeline_steps(batch) -> None:
    torch.manual_seed(0)
    model = Colorizer(TINY_MODEL, TASK.spec)
    optimizer = make_optimizer(model, 3e-3, 0.0)
    targets = TASK.targets(batch, None)
    losses = [mle_step(model, optimizer, batch.images, targets, 1.0)["loss"] for _ in range(5)]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    before = [p.detach().clone() for p in model.parameters()]
    config = TuneConfig(samples=3, lr=1e-3)
    sampler = torch.Generator().manual_seed(1)
    for _ in range(2):
        metrics = reinforce_step(model, optimizer, TASK, batch, config, sampler)
        assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["colorfulness"] > 0 and metrics["psnr"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    scenes = [generate_scene(scene_seed("val", i)) for i in range(2)]
    big = Colorizer(ColorizerConfig(width=8, blocks=1), TASK.spec).eval()
    figures = evaluate_colorization(big, TASK, scenes)
    assert set(figures) == {"colorfulness", "psnr", "reward"}
    assert all(math.isfinite(value) for value in figures.values())
