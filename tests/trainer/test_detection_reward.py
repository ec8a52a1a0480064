"""The detection reward REINFORCE tuning optimises: hand-made cases, the paper's matching rules,
padding, class weights, and agreement with the per-box reference on random fixtures."""

from __future__ import annotations

import pytest
import torch

from trainer.rewards import (
    DetectionRewardOutput,
    box_iou,
    class_frequency_weights,
    detection_reward,
)
from trainer.rewards.detection_reference import (
    random_detection_fixture,
    reference_detection_reward_batch,
)

GT = [0.0, 0.0, 1.0, 1.0]  # a unit box; [0, 0, 1, w] overlaps it with IoU exactly w
EPS = 2.0**-10  # dyadic, so float32 inputs give IoUs exactly 0.5 +- EPS


def score(
    preds: list[tuple[list[float], int]],
    gts: list[tuple[list[float], int]],
    *,
    pred_valid: list[bool] | None = None,
    gt_valid: list[bool] | None = None,
    **options: object,
) -> DetectionRewardOutput:
    """Scores one image given as (box, class) lists; everything is valid unless told."""

    def tensors(items: list[tuple[list[float], int]], valid: list[bool] | None):
        boxes = torch.tensor([box for box, _ in items], dtype=torch.float32).reshape(1, -1, 4)
        classes = torch.tensor([cls for _, cls in items], dtype=torch.int64).reshape(1, -1)
        flags = torch.tensor([True] * len(items) if valid is None else valid).reshape(1, -1)
        return boxes, classes, flags

    return detection_reward(*tensors(preds, pred_valid), *tensors(gts, gt_valid), **options)


def unit_width(w: float) -> list[float]:
    return [0.0, 0.0, 1.0, w]


def test_perfect_prediction_scores_one_per_gt_box_with_iou_target_one() -> None:
    gts = [(GT, 0), ([0.0, 2.0, 1.0, 3.0], 1)]
    out = score(gts, gts)
    assert out.reward.tolist() == [2.0]
    assert out.pred_iou.tolist() == [[1.0, 1.0]]
    assert out.matched.tolist() == [[True, True]]


def test_missed_gt_box_earns_nothing_and_costs_nothing() -> None:
    gts = [(GT, 0), ([0.0, 2.0, 1.0, 3.0], 1)]
    assert score(gts[:1], gts).reward.tolist() == [1.0]


def test_right_box_with_wrong_class_earns_nothing_and_is_not_a_duplicate() -> None:
    out = score([(GT, 1)], [(GT, 0)])
    assert out.reward.tolist() == [0.0]
    assert out.pred_iou.tolist() == [[0.0]]
    assert out.matched.tolist() == [[False]]


def test_duplicate_of_a_matched_box_costs_the_duplicate_penalty() -> None:
    assert score([(GT, 0), (GT, 0)], [(GT, 0)]).reward.item() == pytest.approx(1.0 - 0.3)
    halved = score([(GT, 0), (GT, 0)], [(GT, 0)], duplicate_penalty=0.5)
    assert halved.reward.item() == pytest.approx(0.5)


def test_duplicate_counts_only_at_the_thresholds_its_iou_passes() -> None:
    # The looser copy (IoU 0.75) passes 0.50..0.70, half of the 10 thresholds; the exact
    # copy is the gt's match although it comes second in the sequence.
    out = score([(unit_width(0.75), 0), (GT, 0)], [(GT, 0)])
    assert out.reward.item() == pytest.approx(1.0 - 0.3 * 0.5)
    assert out.matched.tolist() == [[False, True]]
    assert out.pred_iou.tolist() == [[0.75, 1.0]]


@pytest.mark.parametrize(
    ("iou", "expected"),
    [
        (0.5 - EPS, 0.0),
        (0.5, 0.0),  # the paper matches at IoU strictly above the threshold
        (0.5 + EPS, 1.0),
    ],
)
def test_single_threshold_counts_a_match_only_strictly_above_it(
    iou: float, expected: float
) -> None:
    out = score([(unit_width(iou), 0)], [(GT, 0)], iou_thresholds=torch.tensor([0.5]))
    assert out.reward.item() == expected


@pytest.mark.parametrize(
    ("iou", "thresholds_passed"),
    [(0.75 - EPS, 5), (0.75 + EPS, 6), (0.95 + EPS, 10), (0.5 - EPS, 0)],
)
def test_reward_is_the_share_of_the_ten_coco_thresholds_a_match_passes(
    iou: float, thresholds_passed: int
) -> None:
    out = score([(unit_width(iou), 0)], [(GT, 0)])
    assert out.reward.item() == pytest.approx(thresholds_passed / 10)


def test_confidence_target_is_the_iou_of_the_best_gt_above_one_half() -> None:
    preds = [(unit_width(0.875), 0), (unit_width(0.25), 0), (unit_width(0.625), 0)]
    out = score(preds, [(GT, 0), ([5.0, 5.0, 6.0, 6.0], 0)])
    # The third box is a duplicate of the first's gt: still trained towards its own IoU.
    assert out.pred_iou.tolist() == [[0.875, 0.0, 0.625]]
    assert out.matched.tolist() == [[True, False, False]]


def test_prediction_competes_only_for_its_best_gt_as_in_the_paper() -> None:
    # The second prediction overlaps gt A (IoU 15/17) and gt B (IoU 13/19, unmatched) but A is
    # its best and the first prediction covers A exactly: it is a duplicate, B stays missed.
    gt_a, gt_b = GT, [0.0, 0.25, 1.0, 1.25]
    second = [0.0, 0.0625, 1.0, 1.0625]
    out = score([(gt_a, 0), (second, 0)], [(gt_a, 0), (gt_b, 0)])
    thresholds_below_15_17 = 8  # 0.50 .. 0.85
    assert out.reward.item() == pytest.approx(1.0 - 0.3 * thresholds_below_15_17 / 10)
    assert out.matched.tolist() == [[True, False]]
    assert out.pred_iou[0, 1].item() == pytest.approx(15 / 17)


def test_reward_ignores_prediction_order_which_only_picks_the_match_among_equal_copies() -> None:
    fixture = random_detection_fixture(torch.Generator().manual_seed(3), 64, 10, 6, 3)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(4))
    shuffled = {
        name: value[:, order] if name.startswith("pred") else value
        for name, value in fixture.items()
    }
    out, out_shuffled = detection_reward(**fixture), detection_reward(**shuffled)
    torch.testing.assert_close(out_shuffled.reward, out.reward)
    torch.testing.assert_close(out_shuffled.pred_iou, out.pred_iou[:, order])

    forward = score([(GT, 0), (GT, 0)], [(GT, 0)])
    assert forward.matched.tolist() == [[True, False]]
    backward = score([(GT, 0), (GT, 0)][::-1], [(GT, 0)])
    assert backward.matched.tolist() == [[True, False]]
    assert backward.reward.item() == forward.reward.item()


def test_padded_predictions_and_gt_boxes_are_ignored() -> None:
    other = [0.0, 2.0, 1.0, 3.0]
    preds, gts = [(GT, 0), (other, 1)], [(GT, 0)]
    plain = score(preds, gts)
    # A padded gt under the unmatched prediction, a padded exact copy of the matched gt, and a
    # padded slot with a class id no weight table has.
    padded = score(
        [*preds, (GT, 0), (GT, -1)],
        [*gts, (other, 1)],
        pred_valid=[True, True, False, False],
        gt_valid=[True, False],
        class_weights=torch.tensor([1.0, 1.0]),
    )
    assert padded.reward.tolist() == plain.reward.tolist() == [1.0]
    assert padded.pred_iou[0, 2:].tolist() == [0.0, 0.0]
    assert padded.matched.tolist() == [[True, False, False, False]]


def test_class_weights_scale_matches_and_duplicates_of_their_class() -> None:
    box_b = [0.0, 2.0, 1.0, 3.0]
    out = score(
        [(GT, 0), (box_b, 1), (box_b, 1)],
        [(GT, 0), (box_b, 1)],
        class_weights=torch.tensor([0.5, 2.0]),
    )
    assert out.reward.item() == pytest.approx(0.5 + 2.0 - 0.3 * 2.0)


def test_class_frequency_weights_favour_rare_classes_and_average_one() -> None:
    unsmoothed = class_frequency_weights(torch.tensor([3, 1]), smoothing=0.0)
    torch.testing.assert_close(unsmoothed, torch.tensor([0.5, 1.5]))
    # The paper's smoothing adds 5% of all instances to every class: 1/95 vs 1/15.
    smoothed = class_frequency_weights(torch.tensor([90, 10]))
    torch.testing.assert_close(smoothed, torch.tensor([2 * 15 / 110, 2 * 95 / 110]))
    torch.testing.assert_close(class_frequency_weights(torch.tensor([7, 7, 7])), torch.ones(3))


@pytest.mark.parametrize(
    ("num_preds", "num_gts", "valid"),
    [(0, 3, True), (4, 0, True), (4, 3, False)],
    ids=["no-predictions", "no-gt", "all-padding"],
)
def test_empty_or_fully_padded_images_score_zero(num_preds: int, num_gts: int, valid: bool) -> None:
    boxes_p = torch.tensor(GT).expand(2, num_preds, 4)
    boxes_g = torch.tensor(GT).expand(2, num_gts, 4)
    out = detection_reward(
        boxes_p,
        torch.zeros(2, num_preds, dtype=torch.int64),
        torch.full((2, num_preds), valid),
        boxes_g,
        torch.zeros(2, num_gts, dtype=torch.int64),
        torch.full((2, num_gts), valid),
    )
    assert out.reward.tolist() == [0.0, 0.0]
    assert out.pred_iou.shape == out.matched.shape == (2, num_preds)
    assert not out.matched.any() and not out.pred_iou.any()


def test_degenerate_boxes_have_zero_iou_and_never_nan() -> None:
    flipped, flat = [1.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.5, 1.0]
    iou = box_iou(torch.tensor([flipped, flat, GT]), torch.tensor([flipped, flat, GT]))
    assert iou.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    out = score([(flipped, 0), (flat, 0)], [(flipped, 0), (GT, 0)])
    assert out.reward.tolist() == [0.0]
    assert out.pred_iou.tolist() == [[0.0, 0.0]]


def test_box_iou_is_intersection_over_union_and_broadcasts_over_leading_axes() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0], [5.0, 5.0, 6.0, 6.0]])
    iou = box_iou(a.expand(3, 1, 4), b)
    assert iou.shape == (3, 1, 3)
    torch.testing.assert_close(iou[2, 0], torch.tensor([1 / 7, 1 / 2, 0.0]))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "class_weights": torch.tensor([0.3, 1.0, 2.7, 0.9]),
            "duplicate_penalty": 0.5,
            "iou_thresholds": torch.tensor([0.5, 0.625, 0.75]),
        },
    ],
    ids=["paper-defaults", "weights-penalty-thresholds"],
)
def test_vectorised_reward_agrees_with_per_box_reference_on_random_fixtures(
    options: dict[str, object],
) -> None:
    fixture = random_detection_fixture(torch.Generator().manual_seed(0), 200, 10, 8, 4)
    out = detection_reward(**fixture, **options)
    reference_options = {
        name: value.tolist() if isinstance(value, torch.Tensor) else value
        for name, value in options.items()
    }
    rewards, pred_ious, matched = reference_detection_reward_batch(fixture, **reference_options)
    torch.testing.assert_close(
        out.reward.double(), torch.tensor(rewards, dtype=torch.float64), rtol=1e-6, atol=1e-6
    )
    torch.testing.assert_close(
        out.pred_iou.double(), torch.tensor(pred_ious, dtype=torch.float64), rtol=0, atol=1e-6
    )
    assert out.matched.tolist() == matched
    # The fixtures must exercise the hard cases, or agreement proves little.
    duplicates = (out.pred_iou > 0) & ~out.matched
    assert out.matched.sum() > 100 and duplicates.sum() > 20
    assert (out.reward == 0).any()


def test_runs_on_cpu_tensors_without_cuda_or_gradients() -> None:
    fixture = random_detection_fixture(torch.Generator().manual_seed(1), 8, 5, 4, 3)
    fixture["pred_boxes"].requires_grad_(True)
    out = detection_reward(**fixture)
    for tensor in (out.reward, out.pred_iou, out.matched):
        assert tensor.device.type == "cpu"
        assert not tensor.requires_grad
    assert (out.reward.dtype, out.pred_iou.dtype, out.matched.dtype) == (
        torch.float32,
        torch.float32,
        torch.bool,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_reward_equals_cpu_reward() -> None:
    fixture = random_detection_fixture(torch.Generator().manual_seed(2), 128, 10, 8, 80)
    on_cpu = detection_reward(**fixture)
    on_cuda = detection_reward(**{name: value.cuda() for name, value in fixture.items()})
    assert on_cuda.reward.device.type == "cuda"
    torch.testing.assert_close(on_cuda.reward.cpu(), on_cpu.reward)
    torch.testing.assert_close(on_cuda.pred_iou.cpu(), on_cpu.pred_iou)
    assert torch.equal(on_cuda.matched.cpu(), on_cpu.matched)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "gt_boxes": torch.zeros(3, 2, 4),
                "gt_classes": torch.zeros(3, 2, dtype=torch.int64),
                "gt_valid": torch.ones(3, 2, dtype=torch.bool),
            },
            "batch sizes differ",
        ),
        ({"pred_classes": torch.zeros(2, 2)}, "pred_classes must be integers"),
        ({"pred_valid": torch.ones(2, 3, dtype=torch.bool)}, "pred_valid"),
        ({"class_weights": torch.ones(1)}, r"classes of valid boxes must lie in \[0, 1\)"),
        ({"iou_thresholds": torch.tensor([0.5, 1.0])}, r"iou_thresholds must lie in \[0, 1\)"),
    ],
)
def test_bad_inputs_raise_a_value_error_naming_the_problem(
    change: dict[str, torch.Tensor], message: str
) -> None:
    inputs: dict[str, object] = {
        "pred_boxes": torch.tensor(GT).expand(2, 2, 4),
        "pred_classes": torch.tensor([[0, 1], [1, 0]]),
        "pred_valid": torch.ones(2, 2, dtype=torch.bool),
        "gt_boxes": torch.tensor(GT).expand(2, 2, 4),
        "gt_classes": torch.zeros(2, 2, dtype=torch.int64),
        "gt_valid": torch.ones(2, 2, dtype=torch.bool),
    }
    with pytest.raises(ValueError, match=message):
        detection_reward(**{**inputs, **change})
