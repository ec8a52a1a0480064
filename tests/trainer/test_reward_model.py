"""Reward model: the losses on hand cases, the box drawing, scoring, checkpoints, and a tiny
model that learns a simple preference."""

import math
from dataclasses import replace

import pytest
import torch

from trainer.configs import RewardModelConfig
from trainer.data.detection import ShapesStream
from trainer.data.shapes import ShapesConfig
from trainer.reward_model.candidates import (
    make_preference_data,
    make_ranking_data,
    make_rating_data,
)
from trainer.reward_model.data import RatingDataset, split_by_image
from trainer.reward_model.encoders import BoxOutputs, box_windows, rasterise_boxes
from trainer.reward_model.losses import (
    bradley_terry_loss,
    ordinal_nll,
    plackett_luce_loss,
    ranking_pairs_loss,
    rating_log_probs,
)
from trainer.reward_model.model import RewardModel, load_reward_model, save_reward_model
from trainer.reward_model.train import train_reward_model
from trainer.train.checkpoint import CheckpointError

TINY = RewardModelConfig(num_classes=3, image_size=32, width=8, stages=2, steps=1)


def outputs(boxes, classes, valid=None) -> BoxOutputs:
    boxes = torch.tensor(boxes, dtype=torch.float32)
    classes = torch.tensor(classes)
    valid = torch.ones_like(classes, dtype=torch.bool) if valid is None else torch.tensor(valid)
    return BoxOutputs(boxes, classes, valid)


def test_bradley_terry_values_and_gradient_sign():
    winner = torch.tensor([0.0, 2.0], requires_grad=True)
    loser = torch.tensor([0.0, 0.0], requires_grad=True)
    loss = bradley_terry_loss(winner, loser, torch.tensor([1.0, 1.0]))
    loss.backward()
    # Equal scores: log 2; a margin of 2: log(1 + e^-2). Mean over the two pairs.
    expected = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    # d/dr_w = -(1 - sigmoid(margin)) / 2: the winner is pushed up, the loser down.
    assert winner.grad.tolist() == pytest.approx([-0.25, -(1 - torch.sigmoid(torch.tensor(2.0)))
                                                  .item() / 2], abs=1e-6)
    assert loser.grad.tolist() == pytest.approx((-winner.grad).tolist(), abs=1e-6)


def test_bradley_terry_tie_pulls_scores_together():
    a = torch.tensor([1.0, 0.0], requires_grad=True)
    b = torch.tensor([0.0, 0.0], requires_grad=True)
    bradley_terry_loss(a, b, torch.tensor([0.5, 0.5])).backward()
    assert a.grad[0] > 0 > b.grad[0]  # a above b: a goes down, b up
    assert a.grad[1] == 0 and b.grad[1] == 0  # already equal: no force


def test_plackett_luce_is_bradley_terry_for_two():
    scores = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    pl = plackett_luce_loss(scores)
    bt = bradley_terry_loss(scores[:, 0], scores[:, 1], torch.ones(50))
    assert pl.item() == pytest.approx(bt.item(), abs=1e-6)
    assert ranking_pairs_loss(scores).item() == pytest.approx(bt.item(), abs=1e-6)


def test_plackett_luce_hand_case():
    scores = torch.tensor([[2.0, 1.0, 0.0]])
    # -log(e^2 / (e^2 + e + 1)) - log(e / (e + 1))
    e = torch.exp(torch.tensor(1.0))
    expected = -torch.log(e**2 / (e**2 + e + 1)) - torch.log(e / (e + 1))
    assert plackett_luce_loss(scores).item() == pytest.approx(expected.item(), abs=1e-6)
    # The true order is likelier than its reverse.
    assert plackett_luce_loss(scores) < plackett_luce_loss(scores.flip(-1))


def test_ordinal_probabilities_and_gradient():
    cut = torch.tensor([-1.5, -0.5, 0.5, 1.5])
    scores = torch.tensor([-3.0, 0.0, 3.0], requires_grad=True)
    probs = rating_log_probs(scores, cut).exp()
    assert probs.sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert probs.argmax(1).tolist() == [0, 2, 4]  # low score -> 1, middle -> 3, high -> 5
    ordinal_nll(scores, torch.tensor([5, 5, 5]), cut).backward()
    assert (scores.grad < 0).all()  # a rating of 5 pushes every score up


def test_rasteriser_draws_the_box_where_it_is():
    # One class-1 box over rows 2..5 and columns 2..3 of an 8x8 grid; the second box is padding.
    drawn = rasterise_boxes(
        outputs([[[0.25, 0.25, 0.75, 0.5], [0.0, 0.0, 1.0, 1.0]]], [[1, 0]], [[True, False]]),
        size=8, num_classes=3,
    )[0]
    fill, outline = drawn[:3], drawn[3:]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:4] = 1
    assert torch.equal(fill[1], expected)
    assert fill[0].abs().sum() == 0 and fill[2].abs().sum() == 0
    assert torch.equal(outline[1], expected)  # two pixels wide: all of it is outline


def test_rasteriser_is_anti_aliased_and_adds_duplicates():
    # Rows 3..7 of 10 covered fully; columns 0 and 9 half (x from 0.05 to 0.95).
    box = [0.3, 0.05, 0.8, 0.95]
    drawn = rasterise_boxes(outputs([[box, box]], [[0, 0]]), size=10, num_classes=1)[0]
    fill, outline = drawn[0], drawn[1]
    # A duplicate doubles the coverage.
    assert torch.allclose(fill[3:8, 1:9], torch.full((5, 8), 2.0), atol=1e-5)
    assert fill[5, 0].item() == pytest.approx(2 * 0.5, abs=1e-5)
    assert fill[2].abs().sum() == 0 and fill[8].abs().sum() == 0
    # The outline is the one-pixel ring: the top row, not the middle.
    assert outline[5, 5].item() == pytest.approx(0.0, abs=1e-5)
    assert outline[3, 5].item() == pytest.approx(2.0, abs=1e-5)


def test_rasteriser_matches_drawing_one_box_at_a_time():
    gen = torch.Generator().manual_seed(1)
    corners = torch.rand(3, 5, 2, 2, generator=gen).sort(dim=2).values  # (n, p, min/max, y/x)
    boxes = torch.cat([corners[:, :, 0], corners[:, :, 1]], -1)
    classes = torch.randint(0, 2, (3, 5), generator=gen)
    valid = torch.rand(3, 5, generator=gen) > 0.3
    drawn = rasterise_boxes(BoxOutputs(boxes, classes, valid), size=12, num_classes=2)
    for n in range(3):
        expected = torch.zeros(4, 12, 12)
        for p in range(5):
            one = BoxOutputs(boxes[n, p][None, None], classes[n, p][None, None],
                             valid[n, p][None, None])
            expected += rasterise_boxes(one, 12, 2)[0]
        assert torch.allclose(drawn[n], expected, atol=1e-5)
    # A valid box covers its own area (in pixels) in its class's fill channel.
    areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]) * 144
    per_class = torch.stack([(areas * valid * (classes == c)).sum(1) for c in range(2)], 1)
    assert torch.allclose(drawn[:, :2].sum((2, 3)), per_class, atol=1e-3)


def test_box_windows_put_every_box_at_the_same_place():
    # The same 8x8-pixel box at two places of a 32-pixel image, drawn, then windowed.
    boxes = torch.tensor([[[0.0625, 0.125, 0.3125, 0.375], [0.5, 0.5, 0.75, 0.75]]])
    drawn = rasterise_boxes(BoxOutputs(boxes, torch.zeros(1, 2, dtype=torch.int64),
                                       torch.ones(1, 2, dtype=torch.bool)), 32, 1)
    windows = box_windows(drawn[:, :1], boxes, window=12, margin=0.25)  # fill channel
    assert windows.shape == (1, 2, 1, 12, 12)
    assert torch.allclose(windows[0, 0], windows[0, 1], atol=1e-5)
    expected = torch.zeros(12, 12)
    expected[2:10, 2:10] = 1  # the box, with a margin of a quarter of its side around it
    assert torch.allclose(windows[0, 0, 0], expected, atol=1e-5)
    # Outside the image the window reads zeros.
    corner = box_windows(torch.ones(1, 1, 32, 32), torch.tensor([[[0.0, 0.0, 0.25, 0.25]]]),
                         window=12, margin=0.25)[0, 0, 0]
    assert corner[:2].abs().sum() == 0 and corner[:, :2].abs().sum() == 0
    assert torch.allclose(corner[2:, 2:], torch.ones(10, 10), atol=1e-5)


def test_rasteriser_refuses_unknown_classes():
    with pytest.raises(ValueError, match="classes must lie"):
        rasterise_boxes(outputs([[[0.1, 0.1, 0.5, 0.5]]], [[3]]), 8, num_classes=3)


@pytest.mark.parametrize("readout", ["boxes", "image"])
def test_score_shapes_and_shared_images(readout):
    torch.manual_seed(0)
    model = RewardModel(replace(TINY, readout=readout))
    images = torch.randn(2, 3, 32, 32)
    corners = torch.rand(6, 4, 2, 2).sort(dim=2).values
    boxes = torch.cat([corners[:, :, 0], corners[:, :, 1]], -1)
    classes = torch.randint(0, 3, (6, 4))
    valid = torch.rand(6, 4) > 0.3
    shared = model.score(images, boxes, classes, valid)  # 3 outputs per image
    assert shared.shape == (6,)
    one_each = model.score(images.repeat_interleave(3, 0), boxes, classes, valid, chunk=4)
    assert torch.allclose(shared, one_each, atol=1e-5)
    # An image of another size is resized to the model's.
    assert model.score(torch.randn(6, 3, 48, 48), boxes, classes, valid).shape == (6,)
    with pytest.raises(ValueError, match="evenly"):
        model.score(torch.randn(4, 3, 32, 32), boxes, classes, valid)


def test_checkpoint_round_trip(tmp_path):
    model = RewardModel(TINY)
    torch.nn.init.normal_(model.box_head[-1].weight)
    path = tmp_path / "rm.pt"
    save_reward_model(path, model, {"pair_acc": 0.9})
    loaded, metrics = load_reward_model(path)
    assert loaded.config == TINY and metrics == {"pair_acc": 0.9}
    images = torch.randn(2, 3, 32, 32)
    boxes = torch.tensor([[[0.1, 0.1, 0.6, 0.5]], [[0.2, 0.3, 0.9, 0.9]]])
    args = (images, boxes, torch.tensor([[0], [2]]), torch.ones(2, 1, dtype=torch.bool))
    assert torch.equal(model.score(*args), loaded.score(*args))


def test_checkpoint_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_reward_model(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_reward_model(broken)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something else"}, foreign)
    with pytest.raises(CheckpointError, match="not a Tunelab reward model"):
        load_reward_model(foreign)


def test_config_refuses_impossible_values():
    with pytest.raises(ValueError, match="heldout_fraction"):
        RewardModelConfig(heldout_fraction=1.0)
    with pytest.raises(ValueError, match="window"):
        RewardModelConfig(window=10, stages=3)
    with pytest.raises(ValueError, match="image_size"):
        RewardModelConfig(readout="image", image_size=36, stages=3)
    with pytest.raises(ValueError, match="readout"):
        RewardModelConfig(readout="tokens")
    with pytest.raises(ValueError, match="no feedback"):
        train_reward_model(TINY)


def test_split_holds_out_whole_images():
    data = RatingDataset(
        images=torch.zeros(10, 3, 8, 8),
        image_index=torch.arange(10).repeat_interleave(3),
        outputs=outputs([[[0.1, 0.1, 0.5, 0.5]]] * 30, [[0]] * 30),
        rating=torch.ones(30, dtype=torch.int64),
    )
    train, heldout = split_by_image(data, 0.2, seed=0)
    assert len(heldout) == 6 and len(train) == 24
    assert not set(train.image_index.tolist()) & set(heldout.image_index.tolist())


def _some_boxes_moved(batch, n, generator):
    """Each ground-truth box kept or moved off its object by its own size (1/2 each): all
    outputs of an image have as many boxes, only where they sit tells the better one."""
    rows = torch.arange(len(batch)).repeat_interleave(n)
    boxes, valid = batch.boxes[rows], batch.valid[rows]
    moved_here = torch.rand(valid.shape, generator=generator) < 0.5
    side = boxes[..., 2:] - boxes[..., :2]
    away = torch.where(boxes[..., :2] > 0.5, -side, side).repeat(1, 1, 2)
    moved = (boxes + away).clamp(0, 1)
    return BoxOutputs(torch.where(moved_here[..., None], moved, boxes),
                      batch.classes[rows].clamp_min(0), valid)


def test_tiny_model_learns_to_prefer_boxes_on_objects():
    shapes = ShapesConfig(image_size=32, min_objects=2, max_objects=3, min_object_size=0.25,
                          max_object_size=0.45, max_occlusion=0.0)
    data = make_preference_data(400, noise=0.0, seed=0, candidate_source=_some_boxes_moved,
                                examples=ShapesStream(shapes, "train"), image_size=32)
    config = replace(TINY, num_classes=8, window=8, steps=150, batch_size=16, lr=3e-3,
                     warmup=5, eval_every=150, augment=False)
    result = train_reward_model(config, preferences=data)
    assert len(result.history) == 150 and "pair_acc" in result.history[-1]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert torch.equal(data.a.valid.sum(1), data.b.valid.sum(1))  # counting cannot tell
    assert result.heldout["pair_acc"] >= 0.85
    assert result.heldout["gold_acc"] == result.heldout["pair_acc"]  # labels are noise-free


@pytest.mark.parametrize("ranking_loss", ["plackett_luce", "pairs"])
def test_training_takes_rankings_and_ratings_together(ranking_loss):
    rankings = make_ranking_data(12, 3, noise=0.05, seed=1, image_size=32)
    ratings = make_rating_data(12, 2, noise=0.05, seed=2, image_size=32)
    config = replace(TINY, num_classes=8, window=8, steps=4, batch_size=4, eval_every=2,
                     ranking_loss=ranking_loss)
    before = RewardModel(config).cutpoints().detach()
    result = train_reward_model(config, rankings=rankings, ratings=ratings)
    last = result.history[-1]
    assert {"loss_rankings", "loss_ratings", "pair_acc", "heldout_rankings_pair_acc",
            "heldout_ratings_pairs"} <= set(last)
    assert all(math.isfinite(h["loss"]) for h in result.history)
    cut = result.model.cutpoints().detach()
    assert (cut.diff() > 0).all() and not torch.equal(cut, before)  # learnt, still ordered
    assert result.sizes["heldout_rankings"] + result.sizes["train_rankings"] == 12
