"""How a model output is shown to the reward model: one small encoder function per task.

The reward model sees the image and the output together: an output encoder turns a batch of
outputs into extra input channels at image resolution, which the network's first convolution
reads alongside the RGB channels. Adding a task (panoptic masks, a colorized image) is adding
one `OutputEncoder` to `OUTPUT_ENCODERS`; a captioning encoder would need a token branch in the
network as well, since words have no pixel layout.

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


@dataclass(frozen=True)
class BoxOutputs:
    """N detection outputs, padded to P boxes each (the trainer's coordinates)."""

    boxes: Tensor  # (N, P, 4) float32 [ymin, xmin, ymax, xmax] in [0, 1] of the image
    classes: Tensor  # (N, P) int64 contiguous class indices
    valid: Tensor  # (N, P) bool, False for padding

    def __post_init__(self) -> None:
        if self.boxes.ndim != 3 or self.boxes.shape[-1] != 4:
            raise ValueError(f"boxes must have shape (N, P, 4), got {tuple(self.boxes.shape)}")
        if self.classes.shape != self.boxes.shape[:2] or self.valid.shape != self.boxes.shape[:2]:
            raise ValueError(
                f"classes {tuple(self.classes.shape)} and valid {tuple(self.valid.shape)} must "
                f"have the shape {tuple(self.boxes.shape[:2])} of boxes' first two axes"
            )
        if self.valid.dtype != torch.bool:
            raise ValueError(f"valid must be bool, got {self.valid.dtype}")

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def select(self, rows: Tensor) -> BoxOutputs:
        """The outputs of `rows` (an index tensor or a bool mask)."""
        return BoxOutputs(self.boxes[rows], self.classes[rows], self.valid[rows])

    def to(self, device: torch.device | str) -> BoxOutputs:
        return BoxOutputs(self.boxes.to(device), self.classes.to(device), self.valid.to(device))

    def transform(self, flip_x: Tensor, flip_y: Tensor, transpose: Tensor) -> BoxOutputs:
        """The boxes of each row in its image transposed, then mirrored; (N,) bool per op."""
        y0, x0, y1, x1 = self.boxes.unbind(-1)
        swap = transpose[:, None]
        y0, x0, y1, x1 = (torch.where(swap, x0, y0), torch.where(swap, y0, x0),
                          torch.where(swap, x1, y1), torch.where(swap, y1, x1))
        fx, fy = flip_x[:, None], flip_y[:, None]
        x0, x1 = torch.where(fx, 1 - x1, x0), torch.where(fx, 1 - x0, x1)
        y0, y1 = torch.where(fy, 1 - y1, y0), torch.where(fy, 1 - y0, y1)
        return BoxOutputs(torch.stack([y0, x0, y1, x1], -1), self.classes, self.valid)

    @staticmethod
    def cat(parts: list[BoxOutputs]) -> BoxOutputs:
        """Rows of all parts, padded to the largest P."""
        slots = max(part.boxes.shape[1] for part in parts)

        def pad(x: Tensor, value: float | bool) -> Tensor:
            extra = slots - x.shape[1]
            if extra == 0:
                return x
            tail = x.new_full((x.shape[0], extra, *x.shape[2:]), value)
            return torch.cat([x, tail], 1)

        return BoxOutputs(
            torch.cat([pad(p.boxes, 0.0) for p in parts]),
            torch.cat([pad(p.classes, 0) for p in parts]),
            torch.cat([pad(p.valid, False) for p in parts]),
        )


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


@dataclass(frozen=True)
class OutputEncoder:
    """A task's output drawn as extra image channels."""

    channels: Callable[[int], int]  # number of channels, given the number of classes
    encode: Callable[[Any, int, int], Tensor]  # (outputs, size, num_classes) -> (N, K, S, S)


OUTPUT_ENCODERS: dict[str, OutputEncoder] = {
    "detection": OutputEncoder(channels=lambda num_classes: 2 * num_classes,
                               encode=rasterise_boxes),
}


def output_encoder(task: str) -> OutputEncoder:
    """The encoder of `task`; a clear error for a task without one."""
    if task not in OUTPUT_ENCODERS:
        raise ValueError(f"no output encoder for task {task!r} (known: {sorted(OUTPUT_ENCODERS)})")
    return OUTPUT_ENCODERS[task]
