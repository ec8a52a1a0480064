"""Reward model readout 'policy': a detection policy's network with a new per-box head; scores,
what stays frozen, the model file, and a tiny run that learns a class-only preference."""

from dataclasses import replace

import pytest
import torch

from trainer.configs import RewardModelConfig
from trainer.data.detection import ShapesStream, collate
from trainer.reward_model.candidates import make_preference_data
from trainer.reward_model.data import PreferenceDataset
from trainer.reward_model.encoders import BoxOutputs
from trainer.reward_model.model import RewardModel, load_reward_model, save_reward_model
from trainer.reward_model.train import train_reward_model
from trainer.tasks.detection import CONF_SLOT, TOKENS_PER_BOX
from trainer.train.checkpoint import load_checkpoint

POLICY = RewardModelConfig(readout="policy", num_classes=8, image_size=32, steps=1)


@pytest.fixture
def policy(tiny_detection_mle):
    return load_checkpoint(tiny_detection_mle)


def _model(policy, **changes) -> RewardModel:
    model = RewardModel(replace(POLICY, **changes), policy)
    torch.nn.init.normal_(model.policy_readout.head[-1].weight)  # zero at first: all scores 0
    return model


def _outputs(n: int, boxes: int) -> BoxOutputs:
    corners = torch.rand(n, boxes, 2, 2).sort(dim=2).values
    return BoxOutputs(torch.cat([corners[:, :, 0], corners[:, :, 1]], -1),
                      torch.randint(0, 8, (n, boxes)), torch.rand(n, boxes) > 0.3)


def test_scores_are_sums_over_boxes_and_prefixes_agree(policy, one_thread):
    torch.manual_seed(0)
    model = _model(policy)
    images, out = torch.randn(2, 3, 32, 32), _outputs(6, 3)
    scores = model.score(images, out.boxes, out.classes, out.valid)  # 3 outputs per image
    assert scores.shape == (6,)
    rows = torch.arange(2).repeat_interleave(3)
    per_box = model.policy_readout.per_box(images, out, rows)
    assert per_box.shape == (6, 3) and (per_box[:, 2][out.valid.sum(1) < 3] == 0).all()
    assert torch.allclose(scores, per_box.sum(1), atol=1e-5)
    # The decoder is causal: the first box alone scores what it scores in the whole output.
    first = out.valid & (out.valid.cumsum(1) == 1)
    alone = model.score(images, out.boxes, out.classes, first)
    assert torch.allclose(alone, per_box[:, 0], atol=1e-5)
    assert model.score(images, out.boxes, out.classes, torch.zeros_like(out.valid)).eq(0).all()


def test_it_starts_as_the_policys_own_likelihood_of_the_boxes(policy, one_thread):
    """belief_init 1: before training, an output's score is the policy's log-probability of
    its boxes' coordinate and class tokens; belief_init 0 (the default): nothing."""
    torch.manual_seed(0)
    images, out = torch.randn(2, 3, 32, 32), _outputs(6, 3)  # 3 outputs per image
    net, task = policy.build("cpu")
    tokens = task.codec.encode(out.boxes.float(), out.classes, out.valid, None)
    with torch.no_grad():
        logp = net.token_logprobs(net.logits(images, tokens), tokens)  # (6, L)
    position = torch.arange(logp.shape[1])
    in_a_box = position < out.valid.sum(1, keepdim=True) * TOKENS_PER_BOX  # valid boxes first
    expected = torch.where(in_a_box & (position % TOKENS_PER_BOX < CONF_SLOT), logp, 0).sum(1)
    fresh = RewardModel(replace(POLICY, belief_init=1.0), policy)  # head: zero at first
    with torch.no_grad():
        assert torch.allclose(fresh.score(images, out.boxes, out.classes, out.valid), expected,
                              atol=1e-4)
        blank = RewardModel(POLICY, policy)
        assert blank.score(images, out.boxes, out.classes, out.valid).eq(0).all()


def test_prefix_scores_from_one_pass_equal_scoring_each_prefix(policy, one_thread):
    torch.manual_seed(0)
    model = _model(policy)
    images, out = torch.randn(2, 3, 32, 32), _outputs(6, 3)
    prefixes = model.prefix_scores(images, out.boxes, out.classes, out.valid)  # one pass
    assert prefixes.shape == (6, 4)
    for j in range(4):  # each prefix scored on its own: the valid boxes among the first j
        kept = out.valid & (torch.arange(3) < j)
        alone = model.score(images, out.boxes, out.classes, kept)
        assert torch.allclose(prefixes[:, j], alone, atol=1e-5), j


def test_only_the_head_and_last_block_learn(policy, tiny_shapes_config, one_thread):
    torch.manual_seed(0)
    config = replace(POLICY, trainable_blocks=1, lr=1e-2, steps=3, warmup=1)
    before = {k: v.clone() for k, v in RewardModel(config, policy).state_dict().items()}
    data = make_preference_data(20, 0.05, 0, "perturb",
                                examples=ShapesStream(tiny_shapes_config, "train"), image_size=32)
    after = train_reward_model(config, preferences=data, policy=policy).model.state_dict()
    # The tiny policy has one decoder block: it and the final norm learn, with the new parts.
    learns = ("policy_readout.head.", "policy_readout.belief.",
              "policy_readout.network.decoder.0.", "policy_readout.network.dec_norm.")
    frozen = [name for name in after if name.startswith("policy_readout.network.")
              and not name.startswith(learns)]
    assert "policy_readout.network.encoder.0.mlp.0.weight" in frozen
    assert all(torch.equal(after[name], before[name]) for name in frozen)
    for name in ("policy_readout.head.2.weight", "policy_readout.belief.weight",
                 "policy_readout.network.decoder.0.mlp.0.weight"):
        assert not torch.equal(after[name], before[name]), name


def test_model_file_rebuilds_the_policy_network(policy, tmp_path, one_thread):
    torch.manual_seed(0)
    model = _model(policy)
    path = tmp_path / "rm.pt"
    save_reward_model(path, model, {"pair_acc": 0.9})
    loaded, metrics = load_reward_model(path)
    assert loaded.config == model.config and metrics == {"pair_acc": 0.9}
    images, out = torch.randn(2, 3, 32, 32), _outputs(2, 3)
    args = (images, out.boxes, out.classes, out.valid)
    assert torch.equal(model.score(*args), loaded.score(*args))


def test_refuses_a_missing_or_mismatched_policy(policy):
    with pytest.raises(ValueError, match="readout 'policy'"):
        RewardModel(POLICY)
    with pytest.raises(ValueError, match="classes"):
        RewardModel(replace(POLICY, num_classes=3), policy)
    with pytest.raises(ValueError, match="image_size"):
        RewardModel(replace(POLICY, image_size=64), policy)
    with pytest.raises(ValueError, match="trainable_blocks"):
        RewardModel(replace(POLICY, trainable_blocks=5), policy)



def test_tiny_run_learns_a_class_only_preference(policy, tiny_shapes_config, one_thread):
    """Two outputs of one image differ only in their first box's class; the annotator prefers
    the first four class names to the last four."""
    torch.manual_seed(0)
    stream = ShapesStream(tiny_shapes_config, "train")
    batch = collate([next(stream) for _ in range(200)], 32)
    boxes = batch.boxes[:, :1]  # every scene has an object
    liked, disliked = torch.randint(0, 4, (200, 1)), torch.randint(4, 8, (200, 1))
    a_liked = torch.rand(200) < 0.5
    a = torch.where(a_liked[:, None], liked, disliked)
    b = torch.where(a_liked[:, None], disliked, liked)
    valid = torch.ones(200, 1, dtype=torch.bool)
    data = PreferenceDataset(batch.images, torch.arange(200), BoxOutputs(boxes, a, valid),
                             BoxOutputs(boxes, b, valid), a_liked.float())
    config = replace(POLICY, steps=60, batch_size=16, lr=3e-3, warmup=5, eval_every=60,
                     augment=False)
    result = train_reward_model(config, preferences=data, policy=policy)
    assert result.heldout["pair_acc"] >= 0.8
