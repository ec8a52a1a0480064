"""Reward models of captioning, colorization and panoptic segmentation: each learns a toy
preference from tiny simulated data (loss finite and falling, a clearly better output ranked
above a worse one), the policy readout of each starts from its policy and a saved model loads
alone, the outputs are drawn as the docs say, the perturbations spoil the ground truth, and the
simulated annotators' agreement figures match hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from trainer.configs import (
    READOUTS_OF_TASK,
    REWARD_MODEL_TASKS,
    CaptioningTaskConfig,
    ColorizationTaskConfig,
    ColorizerConfig,
    ConfigError,
    DataConfig,
    ModelConfig,
    PanopticTaskConfig,
    PretrainConfig,
    RewardModelConfig,
    default_readout,
)
from trainer.data.shapes import ShapesConfig
from trainer.reward_model.candidates import make_preference_data, policy_source, scene_stream
from trainer.reward_model.encoders import draw_colorization, draw_panoptic
from trainer.reward_model.model import RewardModel, load_reward_model, save_reward_model
from trainer.reward_model.outputs import CaptionOutputs, ColorOutputs, PanopticOutputs
from trainer.reward_model.simulate import annotator_agreement, label_gold_agreement
from trainer.reward_model.tasks import default_task, judging
from trainer.reward_model.train import train_reward_model
from trainer.tasks.captioning import EOS, WORD_OFFSET
from trainer.train import loops
from trainer.train.checkpoint import load_checkpoint

NEW_TASKS = ("captioning", "colorization", "panoptic")
SCENES = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.25, max_object_size=0.5)


def tiny_config(task: str, **changes) -> RewardModelConfig:
    settings = {"task": task, "readout": default_readout(task), "image_size": 32, "width": 8,
                "stages": 2, "steps": 120, "batch_size": 16, "eval_every": 120, "lr": 3e-3,
                "warmup": 5, "weight_decay": 0.0, **changes}
    return RewardModelConfig(**settings)


def batch_of(task: str, count: int, start: int):
    """A batch of `count` tiny scenes of the task's, from the given stretch of the stream."""
    stream = scene_stream(SCENES, "train", start)
    return judging(task).collate(default_task(task),
                                 [next(stream) for _ in range(count)], 32)


def better_and_worse(task: str, batch):
    """Per image, a clearly better output (the ground truth) and a clearly worse one."""
    if task == "captioning":
        codec = default_task(task).codec
        truth = codec.encode([refs[0] for refs in batch.references])
        salad = torch.randint(WORD_OFFSET, codec.vocab_size, truth.shape,
                              generator=torch.Generator().manual_seed(0))
        salad = torch.where(truth >= WORD_OFFSET, salad, truth)  # same length, random words
        return CaptionOutputs(truth), CaptionOutputs(salad)
    if task == "colorization":
        return (ColorOutputs.from_rgb(batch.rgb),
                ColorOutputs.from_rgb(batch.gray.expand(-1, 3, -1, -1)))
    background = torch.zeros_like(batch.panoptic)
    return PanopticOutputs(batch.panoptic), PanopticOutputs(background)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_reward_model_learns_a_toy_preference(task, one_thread):
    data = make_preference_data(240, 0.0, 0, task=task, image_size=32,
                                examples=scene_stream(SCENES, "train", 10**6))
    result = train_reward_model(tiny_config(task), preferences=data)
    losses = [step["loss"] for step in result.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.05
    assert result.heldout["pair_acc"] > 0.6
    # On images it never saw, the ground truth beats a clearly spoilt output.
    batch = batch_of(task, 12, 2 * 10**6)
    better, worse = better_and_worse(task, batch)
    model = result.model
    wins = model.score_outputs(batch.images, better) > model.score_outputs(batch.images, worse)
    assert wins.float().mean() >= 0.75


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """A 2-step MLE checkpoint of each new task at 32 px."""
    root = tmp_path_factory.mktemp("policies")
    models = {
        "captioning": (ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                                   decoder_layers=1), CaptioningTaskConfig(max_words=12,
                                                                           idf_images=8)),
        "colorization": (ColorizerConfig(image_size=32, width=8, blocks=2),
                         ColorizationTaskConfig()),
        "panoptic": (ColorizerConfig(image_size=32, width=8, blocks=2), PanopticTaskConfig()),
    }
    for task, (model, task_config) in models.items():
        loops.pretrain(model, task_config, DataConfig(max_objects=3),
                       PretrainConfig(steps=2, batch_size=2, warmup=1),
                       checkpoint_path=root / f"{task}.pt", task_name=task, progress=False)
    return root


@pytest.mark.parametrize("task", NEW_TASKS)
def test_policy_readout_trains_from_the_policy_and_loads_alone(task, policies, tmp_path,
                                                               one_thread):
    mle = load_checkpoint(policies / f"{task}.pt")
    policy, policy_task = mle.build("cpu")
    source = policy_source(policy.eval(), policy_task.codec, task=task)
    data = make_preference_data(40, 0.0, 0, source, task=task, task_object=policy_task,
                                image_size=32, examples=scene_stream(SCENES, "train", 0))
    config = tiny_config(task, readout="policy", steps=4, eval_every=4, lr=1e-3,
                         belief_init=0.5)
    result = train_reward_model(config, preferences=data, policy=mle)
    assert all(torch.isfinite(torch.tensor([step["loss"] for step in result.history])))
    # Only the head, the belief weight and the last block learn: the rest is the policy's.
    readout = result.model.policy_readout
    learnt = {name for name, p in readout.named_parameters() if p.requires_grad}
    assert any(name.startswith("head.") for name in learnt) and "belief.weight" in learnt
    frozen = [name for name, p in readout.network.named_parameters() if not p.requires_grad]
    assert frozen and all(torch.equal(readout.network.state_dict()[name], mle.state[name])
                          for name in frozen)
    save_reward_model(tmp_path / "rm.pt", result.model, {"rm_heldout_acc": 0.5})
    loaded, figures = load_reward_model(tmp_path / "rm.pt")
    assert figures == {"rm_heldout_acc": 0.5}
    rows = torch.arange(6)
    outputs = data.a.select(rows)
    expected = result.model.score_outputs(data.images[data.image_index[rows]], outputs)
    assert torch.allclose(loaded.score_outputs(data.images[data.image_index[rows]], outputs),
                          expected, atol=1e-6)


def test_policy_readout_needs_a_policy_of_its_own_task(policies):
    with pytest.raises(ValueError, match="scores captioning; the policy's task is panoptic"):
        RewardModel(tiny_config("captioning", readout="policy"),
                    load_checkpoint(policies / "panoptic.pt"))


def test_every_task_has_readouts_and_a_wrong_one_names_the_field():
    assert REWARD_MODEL_TASKS == ("detection", "captioning", "colorization", "panoptic")
    for task in REWARD_MODEL_TASKS:
        assert default_readout(task) == READOUTS_OF_TASK[task][0]
    for task in NEW_TASKS:
        assert isinstance(RewardModel(tiny_config(task)), RewardModel)  # builds without a policy
    with pytest.raises(ConfigError) as error:
        RewardModelConfig(task="captioning", readout="boxes")
    assert error.value.field == "readout" and "'tokens'" in str(error.value)


def test_panoptic_map_is_drawn_as_categories_and_instance_boundaries():
    maps = torch.zeros(1, 4, 4, 2, dtype=torch.int64)
    maps[0, :2, :2] = torch.tensor([1, 1])  # instance 1 of class 0, top left
    maps[0, :2, 2:] = torch.tensor([1, 2])  # instance 2 of the same class, touching it
    drawn = draw_panoptic(PanopticOutputs(maps), 4, num_classes=2)
    assert drawn.shape == (1, 4, 4, 4)  # background, class 0, class 1, boundaries
    assert drawn[0, 1, :2].sum() == 8 and drawn[0, 0, 2:].sum() == 8 and drawn[0, 2].sum() == 0
    # Same class on both sides: only the boundary channel tells the two instances apart.
    boundary = drawn[0, 3]
    assert boundary[0, 1] == 1 and boundary[0, 0] == 0 and boundary[1, :].sum() == 4
    assert boundary[3].sum() == 0


def test_colorization_is_drawn_with_its_opponent_channels():
    grey = ColorOutputs.from_rgb(torch.full((1, 3, 8, 8), 0.5))
    red = ColorOutputs.from_rgb(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8))
    assert draw_colorization(grey, 8, 0)[:, 3:].abs().max() < 1e-6  # no colour, no opponents
    drawn = draw_colorization(red, 4, 0)  # resized to the reward model's side
    assert drawn.shape == (1, 5, 4, 4)
    assert torch.allclose(drawn[0, 3], torch.ones(4, 4)) and torch.allclose(drawn[0, 4],
                                                                           torch.full((4, 4), 0.5))


@pytest.mark.parametrize("task", NEW_TASKS)
def test_perturbations_spoil_the_ground_truth(task):
    batch = batch_of(task, 6, 0)
    judge, task_object = judging(task), default_task(task)
    better, _ = better_and_worse(task, batch)
    truth_gold = judge.gold(task_object, better, batch, 1)
    if task == "captioning":  # the truth is any reference: the best of them
        per_reference = [judge.gold(task_object, CaptionOutputs(task_object.codec.encode(
            [refs[k] for refs in batch.references])), batch, 1) for k in range(5)]
        truth_gold = torch.stack(per_reference).amax(0)
    spoilt = judge.perturb(task_object, batch, 8, torch.Generator().manual_seed(0))
    assert len(spoilt) == 6 * 8
    gold = judge.gold(task_object, spoilt, batch, 8).view(6, 8)
    # Nothing beats the truth (up to 8-bit colours), and some candidates are clearly worse.
    assert (gold <= truth_gold[:, None] + 1e-3 * truth_gold.abs()[:, None] + 1e-4).all()
    assert (gold < truth_gold[:, None] - judge.tie_eps).float().mean() > 0.3
    if task == "captioning":
        assert (spoilt.tokens == EOS).sum(1).eq(1).all()  # every caption ends once


def test_label_gold_agreement_hand_case():
    gold_a = torch.tensor([1.0, 1.0, 0.0, 0.5, 0.2, 0.3])
    gold_b = torch.tensor([0.0, 0.0, 1.0, 0.5, 0.1, 0.3])
    label = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.0])
    # Decided pairs 0, 1, 2, 3, 5; gold ties (3, 5) left out: of 0, 1, 2 the labels name the
    # gold-better output on 0 and 2.
    assert label_gold_agreement(label, gold_a, gold_b) == pytest.approx(2 / 3)
    assert torch.isnan(torch.tensor(label_gold_agreement(torch.full((2,), 0.5),
                                                         gold_a[:2], gold_b[:2])))


def test_annotator_agreement_hand_case():
    first = torch.tensor([1.0, 0.0, 1.0, 0.5, 1.0])
    second = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.0])
    assert annotator_agreement(first, second) == pytest.approx(2 / 4)  # the tie left out
