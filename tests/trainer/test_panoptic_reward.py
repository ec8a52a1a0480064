"""PQ reward: hand-made maps, and equality with torchmetrics' PanopticQuality image by image."""

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from trainer.data.coco_panoptic import SHAPES_PANOPTIC_CATEGORIES, VOID, scene_panoptic
from trainer.data.shapes import ShapesConfig, generate_split
from trainer.eval.panoptic_metrics import panoptic_metrics
from trainer.rewards.panoptic import panoptic_quality

NUM_CATEGORIES = len(SHAPES_PANOPTIC_CATEGORIES)


def _map(categories: list[list[int]], instances: list[list[int]]) -> torch.Tensor:
    """A (1, H, W, 2) panoptic map from two nested lists."""
    return torch.tensor(np.stack([categories, instances], axis=-1))[None]


@pytest.fixture
def scene_map() -> torch.Tensor:
    """8x8: background (stuff 0), thing 1 instance 1 (a 3x3 block), thing 2 instance 1 (2x4)."""
    cat = np.zeros((8, 8), dtype=np.int64)
    inst = np.zeros((8, 8), dtype=np.int64)
    cat[1:4, 1:4], inst[1:4, 1:4] = 1, 1
    cat[5:7, 2:6], inst[5:7, 2:6] = 2, 1
    return _map(cat.tolist(), inst.tolist())


def _torchmetrics_per_image(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # torchmetrics takes an unknown target category (here NUM_CATEGORIES) as void.
    targets = torch.where(targets[..., :1] == VOID, NUM_CATEGORIES, targets)
    out = []
    for pred, target in zip(preds, targets, strict=True):
        metric = PanopticQuality(things=set(range(1, NUM_CATEGORIES)), stuffs={0})
        metric.update(pred[None], target[None])
        out.append(float(metric.compute()))
    return torch.tensor(out, dtype=torch.float64)


def test_perfect_prediction_scores_one(scene_map):
    assert panoptic_quality(scene_map, scene_map).tolist() == [1.0]


def test_instance_ids_are_labels_and_ignored_for_stuff(scene_map):
    pred = scene_map.clone()
    pred[0, ..., 1] = torch.where(pred[0, ..., 0] == 0, 7, 3)  # other ids, same segments
    assert panoptic_quality(pred, scene_map).tolist() == [1.0]


def test_missed_segment(scene_map):
    # Thing 2 painted as background: category 2 has one FN (PQ 0); the background segment grows
    # from 64 - 9 - 8 = 47 to 55 pixels, IoU 47/55 > 0.5, a TP; category 1 stays perfect.
    pred = scene_map.clone()
    pred[0, 5:7, 2:6] = 0
    expected = (1.0 + 0.0 + 47 / 55) / 3
    assert panoptic_quality(pred, scene_map).item() == pytest.approx(expected, abs=1e-7)
    pq = panoptic_metrics(pred, scene_map, num_categories=3)["pq"]
    assert pq == pytest.approx(100 * expected, abs=1e-4)


def test_merged_segments():
    # Two touching instances of category 1 (12 and 6 pixels) predicted as one: the merged
    # segment matches the larger (IoU 12/18), the smaller is a FN: PQ_1 = (12/18) / 1.5.
    cat = np.zeros((6, 6), dtype=np.int64)
    inst = np.zeros((6, 6), dtype=np.int64)
    cat[0:3, 0:4], inst[0:3, 0:4] = 1, 1
    cat[0:3, 4:6], inst[0:3, 4:6] = 1, 2
    target = _map(cat.tolist(), inst.tolist())
    pred = target.clone()
    pred[0, 0:3, 4:6, 1] = 1
    expected = (1.0 + (12 / 18) / 1.5) / 2
    assert panoptic_quality(pred, target).item() == pytest.approx(expected, abs=1e-7)


def test_wrong_category_is_a_false_positive_and_a_false_negative(scene_map):
    pred = scene_map.clone()
    pred[0, 1:4, 1:4] = torch.tensor([2, 2])  # thing 1 labelled as category 2, instance 2
    # Category 1: FN (PQ 0); category 2: one TP (IoU 1) and one FP -> 1 / 1.5; background 1.
    expected = (1.0 + 0.0 + 1 / 1.5) / 3
    assert panoptic_quality(pred, scene_map).item() == pytest.approx(expected, abs=1e-7)


def test_void_ground_truth_is_ignored(scene_map):
    target = scene_map.clone()
    target[0, :, 6:] = torch.tensor([VOID, 0])  # two unlabelled columns (16 pixels)
    pred = scene_map.clone()
    pred[0, 0:3, 5:8] = torch.tensor([3, 1])  # a thing with 6 of its 9 pixels on void: no FP
    # Category 3 then has no TP, FP or FN and does not count. The background keeps its void
    # pixels in the prediction, but they leave the union.
    background_gt = int((target[0, ..., 0] == 0).sum())
    background_pred = int((pred[0, ..., 0] == 0).sum())
    void_in_background_pred = int(((pred[0, ..., 0] == 0) & (target[0, ..., 0] == VOID)).sum())
    intersection = int(((pred[0, ..., 0] == 0) & (target[0, ..., 0] == 0)).sum())
    iou = intersection / (background_pred - void_in_background_pred + background_gt - intersection)
    assert panoptic_quality(pred, target).item() == pytest.approx((iou + 1 + 1) / 3, abs=1e-7)


def test_images_of_a_batch_do_not_interact(scene_map):
    shifted = torch.roll(scene_map, shifts=1, dims=2)
    preds = torch.cat([scene_map, shifted, shifted])
    targets = torch.cat([scene_map, scene_map, shifted])
    batch = panoptic_quality(preds, targets)
    alone = [panoptic_quality(p[None], t[None]).item() for p, t in zip(preds, targets, strict=True)]
    assert batch.tolist() == alone
    assert batch[0] == batch[2] == 1.0 and batch[1] < 1.0


@pytest.fixture(scope="module")
def shapes_fixture() -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth of 12 Synthetic Shapes scenes and imperfect predictions of several kinds."""
    config = ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)
    targets = torch.tensor(np.stack([scene_panoptic(s) for s in generate_split("val", 12, config)]))
    generator = torch.Generator().manual_seed(0)
    preds = targets.clone()
    preds[0:3] = torch.roll(targets[0:3], shifts=(1, 2), dims=(1, 2))  # shifted segments
    noisy = torch.rand(preds[3:6].shape[:-1], generator=generator) < 0.25  # pixel noise
    preds[3:6][noisy] = torch.randint(0, 3, (int(noisy.sum()), 2), generator=generator)
    preds[6:8, ..., 0] = torch.where(targets[6:8, ..., 0] > 0, 1, 0)  # every shape a circle
    preds[8:10, ..., 1] = torch.where(targets[8:10, ..., 0] > 0, 1, 0)  # instances merged
    blocks = torch.randint(0, NUM_CATEGORIES, (2, 4, 4), generator=generator)
    preds[10:12, ..., 0] = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # junk
    targets[[1, 4, 7, 9, 11], 20:, :12] = torch.tensor([VOID, 0])  # unlabelled corners
    return preds, targets


def test_equals_torchmetrics_run_on_each_image(shapes_fixture):
    preds, targets = shapes_fixture
    ours = panoptic_quality(preds, targets).double()
    theirs = _torchmetrics_per_image(preds, targets)
    assert (ours - theirs).abs().max() < 1e-6
    assert theirs.min() < 0.5 < theirs.max()  # the fixture spans good and bad predictions


def test_panoptic_metrics_in_percent(shapes_fixture):
    preds, targets = shapes_fixture
    # Whatever is predicted on void pixels costs nothing.
    perfect = torch.where(targets[..., :1] == VOID, 0, targets)
    metrics = panoptic_metrics(perfect, targets, num_categories=NUM_CATEGORIES)
    assert metrics == {"pq": 100.0, "sq": 100.0, "rq": 100.0}
    metrics = panoptic_metrics(preds, targets, num_categories=NUM_CATEGORIES)
    # Per category PQ = SQ x RQ <= min(SQ, RQ), and the averages are over the same categories.
    assert 0 < metrics["pq"] < min(metrics["sq"], metrics["rq"]) <= 100


def test_bad_inputs_are_rejected_with_a_message(scene_map):
    with pytest.raises(ValueError, match=r"\(B, H, W, 2\)"):
        panoptic_quality(scene_map[..., 0], scene_map[..., 0])
    with pytest.raises(ValueError, match="integers"):
        panoptic_quality(scene_map.float(), scene_map.float())
    with pytest.raises(ValueError, match=">= 0"):
        panoptic_quality(scene_map - 1, scene_map)
    with pytest.raises(ValueError, match="categories must lie"):
        panoptic_metrics(scene_map, scene_map, num_categories=2)
