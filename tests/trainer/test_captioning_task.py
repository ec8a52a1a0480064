"""Captioning task: vocabulary and codec, exact sample log-probabilities, reward, and a tiny
MLE-then-REINFORCE run through the detection pipeline's model and step functions unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.configs import ModelConfig, TuneConfig
from trainer.data.shapes import ShapesConfig, generate_scene, scene_seed
from trainer.models.pix2seq import Pix2SeqModel
from trainer.rewards.captioning import tokenize
from trainer.tasks.captioning import (
    EOS,
    CaptionCodec,
    CaptioningTask,
    CaptioningTaskConfig,
    caption_batch,
    caption_vocabulary,
    evaluate_captions,
)
from trainer.train.mle import make_optimizer, mle_step
from trainer.train.reinforce import reinforce_step

TINY_MODEL = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1)
TINY_TASK = CaptioningTaskConfig(max_words=24, idf_images=30)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scenes():
    config = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2, max_object_size=0.5)
    return [generate_scene(scene_seed("val", i), config) for i in range(6)]


@pytest.fixture(scope="module")
def task(scenes):
    return CaptioningTask(TINY_TASK, corpus=[list(scene.captions) for scene in scenes])


def test_vocabulary_is_deterministic_and_covers_every_template() -> None:
    assert caption_vocabulary() == caption_vocabulary()
    codec = CaptionCodec(CaptioningTaskConfig(max_words=100))
    crowded = ShapesConfig(max_objects=10)
    for i in range(60):
        captions = list(generate_scene(scene_seed("test", i), crowded).captions)
        assert codec.decode(codec.encode(captions)) == [tokenize(c) for c in captions]


def test_codec_round_trip_cut_and_refusal() -> None:
    codec = CaptionCodec(CaptioningTaskConfig(max_words=4))
    tokens = codec.encode(["A red circle.", "two shapes: a blue star and a ring"])
    assert tokens.shape == (2, 5)
    assert codec.decode(tokens) == ["a red circle", "two shapes a blue"]
    assert tokens[0, 3] == EOS and tokens[1, 4] == EOS
    with pytest.raises(ValueError, match="zebra"):
        codec.encode(["a red zebra"])
    with pytest.raises(ValueError, match="no words"):
        codec.encode([" , "])


def test_sampled_logprob_equals_recomputed_logprob(task, scenes) -> None:
    torch.manual_seed(0)
    model = Pix2SeqModel(TINY_MODEL, task.spec).eval()
    images = caption_batch(scenes[:3], 32).images
    generator = torch.Generator().manual_seed(0)
    tokens, logprobs = model.sample(images, 4, generator=generator)
    assert torch.allclose(model.log_prob(images, tokens), logprobs, atol=1e-4)
    # The grammar holds while sampling: no BOS or PAD inside a caption, one word at least.
    for caption in task.codec.decode(tokens):
        assert caption and all(word in task.codec.index for word in caption.split())


def test_reward_of_a_reference_beats_a_random_caption(task, scenes) -> None:
    batch = caption_batch(scenes, 32)
    truth = task.codec.encode([scene.captions[0] for scene in scenes])
    generator = torch.Generator().manual_seed(0)
    random = torch.randint(3, task.spec.vocab_size, truth.shape, generator=generator)
    random[:, 12] = EOS
    scored_truth, scored_random = task.reward(truth, batch, 1), task.reward(random, batch, 1)
    assert (scored_truth.reward > scored_random.reward + 1.0).all()
    # n samples per image are scored against that image's references (image-major rows).
    both = torch.stack([truth, random], dim=1).flatten(0, 1)
    paired = task.reward(both, batch, 2).reward.view(-1, 2)
    assert torch.allclose(paired[:, 0], scored_truth.reward)
    assert torch.allclose(paired[:, 1], scored_random.reward)


def test_mle_then_reinforce_runs_with_the_pipeline_steps(task, scenes) -> None:
    torch.manual_seed(0)
    model = Pix2SeqModel(TINY_MODEL, task.spec)
    optimizer = make_optimizer(model, 1e-3, 0.0)
    batch = caption_batch(scenes, 32)
    order = torch.Generator().manual_seed(0)
    losses = [mle_step(model, optimizer, batch.images, task.targets(batch, order), 1.0)["loss"]
              for _ in range(4)]
    assert all(math.isfinite(loss) for loss in losses)
    before = [p.detach().clone() for p in model.parameters()]
    config = TuneConfig(samples=3, lr=1e-3)
    sampler = torch.Generator().manual_seed(1)
    for _ in range(2):
        metrics = reinforce_step(model, optimizer, task, batch, config, sampler)
        assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["reward"] >= 0 and 0 < metrics["distinct_captions"] <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    figures = evaluate_captions(model.eval(), task, scenes, batch_size=4)
    assert set(figures) == {"cider", "bleu4", "reward"}
    assert all(math.isfinite(value) and value >= 0 for value in figures.values())
