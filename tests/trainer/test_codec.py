"""The detection sequence codec: boxes -> tokens -> boxes, grammar, order, EOS."""

from __future__ import annotations

import torch

from trainer.configs import DetectionTaskConfig
from trainer.tasks.detection import EOS, PAD, DetectionCodec


def random_targets(b: int = 6, m: int = 5, classes: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(b, m, 2, generator=g) * 0.6
    hi = lo + 0.05 + torch.rand(b, m, 2, generator=g) * 0.35
    boxes = torch.cat([lo, hi], -1)
    labels = torch.randint(0, classes, (b, m), generator=g)
    counts = torch.arange(b) % (m + 1)
    valid = torch.arange(m)[None] < counts[:, None]
    return boxes, torch.where(valid, labels, -1), valid


def test_round_trip_within_half_a_bin() -> None:
    codec = DetectionCodec(DetectionTaskConfig(coord_bins=32, max_boxes=5), num_classes=8)
    boxes, classes, valid = random_targets()
    decoded = codec.decode(codec.encode(boxes, classes, valid, generator=None))
    assert torch.equal(decoded.valid, valid)
    assert torch.equal(decoded.classes[valid], classes[valid])
    error = (decoded.boxes[valid] - boxes[valid]).abs().max()
    assert error <= 0.5 / 31 + 1e-6


def test_random_order_keeps_the_same_objects() -> None:
    codec = DetectionCodec(DetectionTaskConfig(max_boxes=5), num_classes=8)
    boxes, classes, valid = random_targets()
    fixed = codec.decode(codec.encode(boxes, classes, valid, None))
    shuffled = codec.decode(codec.encode(boxes, classes, valid, torch.Generator().manual_seed(1)))
    changed = False
    for row in range(len(valid)):
        a = sorted(map(tuple, torch.cat([fixed.boxes[row], fixed.classes[row, :, None]], 1)
                       [fixed.valid[row]].tolist()))
        b = sorted(map(tuple, torch.cat([shuffled.boxes[row], shuffled.classes[row, :, None]], 1)
                       [shuffled.valid[row]].tolist()))
        assert a == b
        changed |= not torch.equal(fixed.boxes[row], shuffled.boxes[row])
    assert changed


def test_layout_eos_padding_and_grammar() -> None:
    codec = DetectionCodec(DetectionTaskConfig(max_boxes=3), num_classes=4)
    boxes, classes, valid = random_targets(b=4, m=5, classes=4)
    tokens = codec.encode(boxes, classes, valid, None)
    assert tokens.shape == (4, 3 * 6 + 1)
    for row, count in enumerate(valid.sum(1).clamp(max=3).tolist()):
        assert tokens[row, 6 * count] == EOS
        assert (tokens[row, 6 * count + 1:] == PAD).all()
        # Every target token up to EOS is one the grammar allows at its position.
        allowed = codec.spec.allowed[torch.arange(6 * count + 1), tokens[row, : 6 * count + 1]]
        assert allowed.all()
    # More objects than max_boxes: the first max_boxes of the order are kept.
    assert codec.decode(tokens).valid.sum(1).max() == 3


def test_decode_ignores_boxes_after_eos() -> None:
    codec = DetectionCodec(DetectionTaskConfig(max_boxes=3), num_classes=4)
    boxes, classes, valid = random_targets(b=1, m=3, classes=4)
    tokens = codec.encode(boxes, classes, valid | True, None)
    tokens[0, 6] = EOS
    assert codec.decode(tokens).valid.tolist() == [[True, False, False]]
