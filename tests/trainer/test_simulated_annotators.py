"""Simulated annotators: gold scores from the detection reward, and feedback that follows them
exactly without noise and approximately with it; candidates of varied quality."""

import pytest
import torch

from trainer.reward_model.candidates import (
    make_preference_data,
    make_ranking_data,
    make_rating_data,
    perturb_boxes,
)
from trainer.reward_model.encoders import BoxOutputs
from trainer.reward_model.simulate import (
    gold_scores,
    simulate_preferences,
    simulate_rankings,
    simulate_ratings,
)

GT = BoxOutputs(torch.tensor([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.8]]]),
                torch.tensor([[0, 1]]), torch.tensor([[True, True]]))


def gold(pred: BoxOutputs) -> torch.Tensor:
    n = len(pred)
    return gold_scores(pred.boxes, pred.classes, pred.valid, GT.boxes.expand(n, -1, -1),
                       GT.classes.expand(n, -1), GT.valid.expand(n, -1))


def test_gold_score_is_one_for_perfect_and_per_object_otherwise():
    perfect = gold(GT)
    one_missing = gold(BoxOutputs(GT.boxes, GT.classes, torch.tensor([[True, False]])))
    wrong_class = gold(BoxOutputs(GT.boxes, torch.tensor([[0, 0]]), GT.valid))
    assert perfect.item() == pytest.approx(1.0)
    assert one_missing.item() == pytest.approx(0.5)
    assert wrong_class.item() == pytest.approx(0.5)


def test_zero_noise_preferences_follow_gold_with_ties():
    a = torch.tensor([0.9, 0.2, 0.5, 0.51])
    b = torch.tensor([0.1, 0.8, 0.5, 0.50])
    labels = simulate_preferences(a, b, noise=0.0, tie_eps=0.02)
    assert labels.tolist() == [1.0, 0.0, 0.5, 0.5]


def test_noisy_preferences_follow_bradley_terry():
    n = 20000
    margin = torch.full((n,), 0.1)
    labels = simulate_preferences(margin, torch.zeros(n), noise=0.1, tie_eps=0.0,
                                  generator=torch.Generator().manual_seed(0))
    # P(a) = sigmoid(0.1 / 0.1) = 0.731
    assert labels.mean().item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(),
                                                 abs=0.015)
    with pytest.raises(ValueError, match="noise"):
        simulate_preferences(margin, margin, noise=-1.0)


def test_zero_noise_rankings_and_ratings_follow_gold():
    scores = torch.tensor([[0.3, 0.9, -0.1, 0.5]])
    assert simulate_rankings(scores, noise=0.0).tolist() == [[1, 3, 0, 2]]
    ratings = simulate_ratings(torch.tensor([-0.2, 0.1, 0.3, 0.5, 0.7, 0.95]), noise=0.0)
    assert ratings.tolist() == [1, 1, 2, 3, 4, 5]


def test_noisy_rankings_keep_the_gold_order_more_often_than_not():
    gold_scores_ = torch.tensor([[1.0, 0.5, 0.0]]).expand(4000, -1)
    order = simulate_rankings(gold_scores_, noise=0.3, generator=torch.Generator().manual_seed(0))
    assert sorted(order[0].tolist()) == [0, 1, 2]  # a permutation
    top = order[:, 0]
    assert (top == 0).float().mean() > (top == 1).float().mean() > (top == 2).float().mean()


def test_perturbations_spoil_ground_truth_more_at_higher_strength():
    n = 400
    gen = torch.Generator().manual_seed(0)
    rows = torch.zeros(n, dtype=torch.int64)
    for strength, low, high in ((0.0, 1.0, 1.0), (0.3, 0.5, 0.95), (1.0, 0.0, 0.7)):
        spoilt = perturb_boxes(GT.select(rows), torch.full((n,), strength), num_classes=3,
                               max_boxes=10, generator=gen)
        mean_gold = gold(spoilt).mean().item()
        assert low - 1e-6 <= mean_gold <= high + 1e-6, (strength, mean_gold)
    zero = perturb_boxes(GT, torch.zeros(1), num_classes=3, max_boxes=10, generator=gen)
    assert zero.valid.sum() == 2  # strength 0 is the ground truth, in some order


def test_simulated_datasets_with_zero_noise_agree_with_gold():
    prefs = make_preference_data(40, noise=0.0, seed=3, image_size=32)
    assert len(prefs) == 40 and prefs.images.shape == (20, 3, 32, 32)
    decided = prefs.label != 0.5
    assert torch.equal(prefs.label[decided] == 1, (prefs.gold_a > prefs.gold_b)[decided])
    rankings = make_ranking_data(10, 4, noise=0.0, seed=3, image_size=32)
    assert (rankings.gold[:, :-1] >= rankings.gold[:, 1:]).all()
    ratings = make_rating_data(10, 3, noise=0.0, seed=3, image_size=32)
    order = ratings.gold.argsort()
    assert (ratings.rating[order].diff() >= 0).all()
    pairs = rankings.as_pairs()
    assert len(pairs) == 10 * 6 and (pairs.gold_a >= pairs.gold_b).all()


def test_preference_data_is_reproducible_and_refuses_a_bad_source():
    first = make_preference_data(8, noise=0.1, seed=5, image_size=32)
    second = make_preference_data(8, noise=0.1, seed=5, image_size=32)
    assert torch.equal(first.label, second.label) and torch.equal(first.a.boxes, second.a.boxes)
    with pytest.raises(ValueError, match="candidate source"):
        make_preference_data(8, noise=0.1, seed=5, candidate_source="bogus")
