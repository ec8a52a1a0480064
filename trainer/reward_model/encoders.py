"""How a model output is shown to the reward model: one small encoder function per task.

The reward model sees the image and the output together: an output encoder turns a batch of
outputs (`outputs.py`) into extra input channels at image resolution, which the network's first
convolution reads alongside the image's channels (RGB; the greyscale input for colorization).
Adding a task whose output lives on the pixels is adding one `OutputEncoder` to
`OUTPUT_ENCODERS`. Captions have no pixel layout: the reward model reads their tokens in a
branch of its own (the 'tokens' readout, `model.py`).

Colorization: `draw_colorization` gives the colorized image as RGB in [-1, 1] and its two
opponent channels rg = R - G and yb = (R + G) / 2 - B, the quantities colourfulness is made of
(Hasler and Suesstrunk), so a first convolution reads them without having to learn them.

Panoptic: `draw_panoptic` gives a one-hot channel per category (background, then each thing
class) and one channel of instance boundaries (a pixel whose right or lower neighbour belongs
to another segment), since PQ matches segments, not pixels: two touching instances of one class
show as two only by the boundary between them.

Detection: `rasterise_boxes` draws normalised `[ymin, xmin, ymax, xmax]` boxes into one *fill*
and one *outline* channel per class. Drawing is anti-aliased (each pixel holds the fraction of
it a box covers), so sub-pixel box positions, hence small IoU differences, stay visible; boxes
add up, so a duplicate shows as coverage 2. It is vectorised over batch and boxes: a box's
coverage is the outer product of its coverage of the pixel rows and of the pixel columns, and
summing boxes per class is one batched matrix product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.reward_model.outputs import BoxOutputs, ColorOutputs, PanopticOutputs


def pixel_coverage(lo: Tensor, hi: Tensor, size: int) -> Tensor:
    """(...,) interval ends in [0, 1] -> (..., size): share of each of `size` pixels inside.

    Pixel i spans [i / size, (i + 1) / size]; an empty or inverted interval covers nothing.
    """
    edges = torch.arange(size + 1, device=lo.device, dtype=lo.dtype) / size
    inside = torch.minimum(hi[..., None], edges[1:]) - torch.maximum(lo[..., None], edges[:-1])
    return inside.clamp(min=0) * size


def rasterise_boxes(outputs: BoxOutputs, size: int, num_classes: int) -> Tensor:
    """(N, 2 * num_classes, size, size): per-class box fill, then per-class box outline.

    The outline is the fill minus the fill of the box shrunk by one pixel on every side. Padding
    boxes draw nothing; classes outside [0, num_classes) are refused.
    """
    boxes, classes, valid = outputs.boxes.float(), outputs.classes, outputs.valid
    if valid.any() and (classes[valid].min() < 0 or classes[valid].max() >= num_classes):
        raise ValueError(f"box classes must lie in [0, {num_classes})")
    one_hot = F.one_hot(classes.clamp(0, num_classes - 1), num_classes).float()
    one_hot = one_hot * valid[..., None]  # (N, P, C)
    y0, x0, y1, x1 = boxes.unbind(-1)
    pixel = 1.0 / size

    def draw(top: Tensor, left: Tensor, bottom: Tensor, right: Tensor) -> Tensor:
        rows = pixel_coverage(top, bottom, size)  # (N, P, S)
        cols = pixel_coverage(left, right, size)  # (N, P, S)
        # sum_p one_hot[n,p,c] * rows[n,p,y] * cols[n,p,x]: a batched matrix product over p.
        per_class_rows = (one_hot[..., None] * rows[:, :, None, :]).flatten(2)  # (N, P, C*S)
        drawn = per_class_rows.transpose(1, 2) @ cols  # (N, C*S, S)
        return drawn.view(-1, num_classes, size, size)

    fill = draw(y0, x0, y1, x1)
    inner = draw(y0 + pixel, x0 + pixel, y1 - pixel, x1 - pixel)
    return torch.cat([fill, fill - inner], 1)


def box_windows(planes: Tensor, boxes: Tensor, window: int, margin: float) -> Tensor:
    """(N, K, S, S) planes, (N, P, 4) boxes -> (N, P, K, window, window): each box's window.

    A window spans the box grown by `margin` times its side on every side (at least two pixels
    across), resampled by area averaging (anti-aliased; zeros outside the image). Every box sits
    at the same place in its window, so judging whether a box fits its object is the same task
    wherever the object is. Separable: a (window x S) weight matrix per axis, two products.
    """
    size = planes.shape[-1]
    lo, hi = boxes[..., :2], boxes[..., 2:]  # (N, P, 2): (y, x)
    centre = (lo + hi) / 2
    side = (hi - lo).clamp(min=2.0 / size) * (1 + 2 * margin)
    start = centre - side / 2
    steps = torch.arange(window + 1, device=boxes.device, dtype=boxes.dtype) / window
    edges = start[..., None] + side[..., None] * steps  # (N, P, 2, window + 1)
    weights = pixel_coverage(edges[..., :-1], edges[..., 1:], size)  # (N, P, 2, window, S)
    weights = weights / (side[..., None, None] * size / window)  # averages, not sums
    rows, cols = weights[:, :, 0], weights[:, :, 1]
    # rows @ planes @ cols^T for every box: (N, P, window, S) x (N, K, S, S) x (N, P, window, S)
    by_rows = torch.einsum("npiy,nkyx->npkix", rows, planes)
    return torch.einsum("npkix,npjx->npkij", by_rows, cols)


def draw_colorization(outputs: ColorOutputs, size: int, num_classes: int) -> Tensor:
    """(N, 5, size, size): RGB in [-1, 1], then rg and yb (see the module docstring);
    `num_classes` is unused (colours have no classes)."""
    rgb = outputs.rgb()
    if rgb.shape[-1] != size or rgb.shape[-2] != size:
        rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)
    red, green, blue = rgb.unbind(1)
    opponents = torch.stack([red - green, (red + green) / 2 - blue], 1)
    return torch.cat([2 * rgb - 1, opponents], 1)


def draw_panoptic(outputs: PanopticOutputs, size: int, num_classes: int) -> Tensor:
    """(N, num_classes + 2, size, size): one-hot category (0 background, k + 1 class k), then
    instance boundaries; maps of another size are resampled by nearest neighbour."""
    maps = outputs.maps.long()
    side = maps.shape[1]
    if side != size:
        pick = torch.arange(size, device=maps.device) * side // size
        maps = maps[:, pick][:, :, pick]
    category = maps[..., 0].clamp(0, num_classes)
    one_hot = F.one_hot(category, num_classes + 1).permute(0, 3, 1, 2).float()
    segment = category * (maps[..., 1].max() + 1) + maps[..., 1]  # (N, S, S) segment key
    edge = torch.zeros_like(segment, dtype=torch.bool)
    edge[:, :, :-1] |= segment[:, :, 1:] != segment[:, :, :-1]
    edge[:, :-1, :] |= segment[:, 1:, :] != segment[:, :-1, :]
    return torch.cat([one_hot, edge[:, None].float()], 1)


@dataclass(frozen=True)
class OutputEncoder:
    """A task's output drawn as extra image channels."""

    channels: Callable[[int], int]  # number of channels, given the number of classes
    encode: Callable[[Any, int, int], Tensor]  # (outputs, size, num_classes) -> (N, K, S, S)


OUTPUT_ENCODERS: dict[str, OutputEncoder] = {
    "detection": OutputEncoder(channels=lambda num_classes: 2 * num_classes,
                               encode=rasterise_boxes),
    "colorization": OutputEncoder(channels=lambda num_classes: 5, encode=draw_colorization),
    "panoptic": OutputEncoder(channels=lambda num_classes: num_classes + 2,
                              encode=draw_panoptic),
}


def output_encoder(task: str) -> OutputEncoder:
    """The encoder of `task`; a clear error for a task without one."""
    if task not in OUTPUT_ENCODERS:
        raise ValueError(f"no output encoder for task {task!r} (known: {sorted(OUTPUT_ENCODERS)})")
    return OUTPUT_ENCODERS[task]


def image_channels(task: str) -> int:
    """Channels of the image the task's policy sees, which the reward model sees too: the
    greyscale input for colorization (its colours are the output), RGB otherwise."""
    return 1 if task == "colorization" else 3
