"""The model's two verbs agree with each other, and the KV cache changes nothing but speed."""

from __future__ import annotations

import copy

import pytest
import torch

from trainer.configs import DetectionTaskConfig, ModelConfig
from trainer.models.pix2seq import Pix2SeqModel
from trainer.tasks.detection import EOS, DetectionCodec


@pytest.fixture(scope="module")
def model_and_codec() -> tuple[Pix2SeqModel, DetectionCodec]:
    torch.manual_seed(0)
    codec = DetectionCodec(DetectionTaskConfig(coord_bins=16, max_boxes=3), num_classes=4)
    model = Pix2SeqModel(ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                                     decoder_layers=2), codec.spec)
    # Sharper logits than at initialisation, so sequences vary in length and content.
    with torch.no_grad():
        model.head.weight.mul_(20)
    return model.eval(), codec


def images(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sample_logprobs_equal_log_prob(model_and_codec, temperature: float) -> None:
    model, _ = model_and_codec
    x = images()
    tokens, logprobs = model.sample(x, 4, temperature=temperature,
                                    generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (12, model.spec.length)
    with torch.no_grad():
        again = model.log_prob(x, tokens, temperature=temperature)
    assert torch.allclose(logprobs, again, atol=1e-4)
    assert (logprobs < 0).all()


def test_samples_follow_the_grammar(model_and_codec) -> None:
    model, codec = model_and_codec
    tokens, _ = model.sample(images(), 8, generator=torch.Generator().manual_seed(1))
    for row in tokens:
        end = int((row == EOS).nonzero()[0])
        assert codec.spec.allowed[torch.arange(end + 1), row[: end + 1]].all()
    lengths = (tokens == EOS).float().argmax(1)
    assert len(set(lengths.tolist())) > 1  # the test would be vacuous if all stopped at once


def test_kv_cache_gives_the_same_tokens(model_and_codec) -> None:
    model, _ = model_and_codec
    x = images()
    cached = model.sample(x, 4, generator=torch.Generator().manual_seed(3))
    uncached = model.sample(x, 4, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(cached[0], uncached[0])
    assert torch.allclose(cached[1], uncached[1], atol=1e-4)
    assert torch.equal(model.greedy(x), model.sample(x, 1, temperature=0, use_cache=False)[0])


def test_same_seed_same_tokens_and_greedy_is_most_likely_step(model_and_codec) -> None:
    model, _ = model_and_codec
    x = images()
    a = model.sample(x, 2, generator=torch.Generator().manual_seed(9))[0]
    b = model.sample(x, 2, generator=torch.Generator().manual_seed(9))[0]
    assert torch.equal(a, b)
    greedy = model.greedy(x)
    logits = model.logits(x, greedy)
    scored = model.scored_mask(greedy)
    assert torch.equal(logits.argmax(-1)[scored], greedy[scored])


def test_min_length_forbids_early_eos(model_and_codec) -> None:
    model, codec = model_and_codec
    tokens = model.sample(images(), 1, temperature=0, min_length=codec.length - 1)[0]
    assert codec.decode(tokens).valid.all()


def test_filled_samples_are_scored_by_the_same_distribution(model_and_codec) -> None:
    """With EOS forbidden until the sequence is full, `log_prob` with the same `min_length`
    gives the sampled sequences the log-probability the sampler drew them with (EOS's share
    spread over the other tokens), which the unconstrained policy does not."""
    model, codec = model_and_codec
    x = images()
    tokens, logprobs = model.sample(x, 4, temperature=0.7, min_length=codec.length,
                                    generator=torch.Generator().manual_seed(2))
    assert codec.decode(tokens).valid.all() and (tokens[:, -1] == EOS).all()
    with torch.no_grad():
        filled = model.log_prob(x, tokens, temperature=0.7, min_length=codec.length)
        free = model.log_prob(x, tokens, temperature=0.7)
    assert torch.allclose(logprobs, filled, atol=1e-4)
    assert (free < filled - 1e-5).all()


def test_log_prob_has_gradients(model_and_codec) -> None:
    model, _ = model_and_codec
    x = images(2)
    tokens, _ = model.sample(x, 2, generator=torch.Generator().manual_seed(0))
    model.log_prob(x, tokens).sum().backward()
    assert model.head.weight.grad is not None and model.stem[0].weight.grad.abs().sum() > 0
    model.zero_grad()


def test_trimming_padding_changes_no_log_prob(model_and_codec) -> None:
    model, _ = model_and_codec
    x = images()
    tokens, _ = model.sample(x, 2, generator=torch.Generator().manual_seed(4))
    trimmed = model.trim(tokens)
    assert trimmed.shape[1] <= tokens.shape[1]
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x, trimmed), model.log_prob(x, tokens), atol=1e-5)


def test_confidence_loss_cannot_move_the_policy(model_and_codec) -> None:
    """The deterministic (confidence) positions train their own readout only: a step on a loss
    of their logits alone changes them and leaves every policy logit as it was."""
    model, codec = model_and_codec
    x = images()
    tokens, _ = model.sample(x, 2, generator=torch.Generator().manual_seed(1))
    trained = copy.deepcopy(model)
    optimizer = torch.optim.SGD(trained.parameters(), lr=1.0)
    loss = -codec.conf_logprobs(trained.logits(x, tokens))[..., 0].sum()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        before, after = model.logits(x, tokens), trained.logits(x, tokens)
    policy = ~model.deterministic
    assert torch.equal(before[:, policy], after[:, policy])
    assert not torch.allclose(before[:, ~policy], after[:, ~policy])
