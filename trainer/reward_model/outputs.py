"""Batches of model outputs as the reward model sees them, one container per task.

- `BoxOutputs` (detection): padded boxes, classes and a validity mask;
- `CaptionOutputs` (captioning): caption token rows of the captioning codec (PAD after EOS);
- `ColorOutputs` (colorization): the colorized images, uint8 RGB (what an annotator sees);
- `PanopticOutputs` (panoptic): panoptic maps, (category, instance) per pixel.

Every container has `len`, `select(rows)`, `to(device)` and `cat(parts)`, which is all the
feedback datasets, the training loop and the scoring need. Those whose output lives on the
image's pixel grid also have `transform(flip_x, flip_y, transpose)`: the 8 symmetries of the
square move the output with the image, so training can augment (a caption's "left of" and
"top" do not follow a mirrored image, so captions have none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def transform_grid(x: Tensor, flip_x: Tensor, flip_y: Tensor, transpose: Tensor,
                   rows: int = 2) -> Tensor:
    """(N, ...) per-row grids whose row axis is `rows` and column axis the next one: each
    transposed, then mirrored left-right, then top-bottom, where the (N,) bool flags say."""
    cols = rows + 1

    def per_row(flag: Tensor) -> Tensor:
        return flag.view(-1, *([1] * (x.ndim - 1)))

    x = torch.where(per_row(transpose), x.transpose(rows, cols), x)
    x = torch.where(per_row(flip_x), x.flip(cols), x)
    return torch.where(per_row(flip_y), x.flip(rows), x)


def _pad_cat(parts: list[Tensor], value: float | bool, dim: int = 1) -> Tensor:
    """Concatenate rows, padding axis `dim` of each part to the largest with `value`."""
    longest = max(part.shape[dim] for part in parts)

    def pad(x: Tensor) -> Tensor:
        extra = longest - x.shape[dim]
        if extra == 0:
            return x
        shape = list(x.shape)
        shape[dim] = extra
        return torch.cat([x, x.new_full(shape, value)], dim)

    return torch.cat([pad(part) for part in parts])


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
        return BoxOutputs(_pad_cat([p.boxes for p in parts], 0.0),
                          _pad_cat([p.classes for p in parts], 0),
                          _pad_cat([p.valid for p in parts], False))


@dataclass(frozen=True)
class CaptionOutputs:
    """N captions as token rows of the captioning codec (`trainer.tasks.captioning`): words,
    then EOS, then PAD (0); rows of different lengths are padded with PAD."""

    tokens: Tensor  # (N, L) int64

    def __post_init__(self) -> None:
        if self.tokens.ndim != 2 or self.tokens.dtype != torch.int64:
            raise ValueError(f"caption tokens must be (N, L) int64, got "
                             f"{tuple(self.tokens.shape)} {self.tokens.dtype}")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, rows: Tensor) -> CaptionOutputs:
        return CaptionOutputs(self.tokens[rows])

    def to(self, device: torch.device | str) -> CaptionOutputs:
        return CaptionOutputs(self.tokens.to(device))

    @staticmethod
    def cat(parts: list[CaptionOutputs]) -> CaptionOutputs:
        return CaptionOutputs(_pad_cat([p.tokens for p in parts], 0))


@dataclass(frozen=True)
class ColorOutputs:
    """N colorized images, uint8 RGB (N, 3, S, S): 8 bits, as an annotator sees them, and a
    quarter of the memory of floats."""

    pixels: Tensor  # (N, 3, S, S) uint8

    def __post_init__(self) -> None:
        if self.pixels.ndim != 4 or self.pixels.shape[1] != 3 or self.pixels.dtype != torch.uint8:
            raise ValueError(f"colorizations must be (N, 3, S, S) uint8, got "
                             f"{tuple(self.pixels.shape)} {self.pixels.dtype}")

    @staticmethod
    def from_rgb(rgb: Tensor) -> ColorOutputs:
        """From float RGB in [0, 1]."""
        return ColorOutputs((rgb.clamp(0, 1) * 255).round().to(torch.uint8))

    def rgb(self) -> Tensor:
        """(N, 3, S, S) float RGB in [0, 1]."""
        return self.pixels.float() / 255

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def select(self, rows: Tensor) -> ColorOutputs:
        return ColorOutputs(self.pixels[rows])

    def to(self, device: torch.device | str) -> ColorOutputs:
        return ColorOutputs(self.pixels.to(device))

    def transform(self, flip_x: Tensor, flip_y: Tensor, transpose: Tensor) -> ColorOutputs:
        return ColorOutputs(transform_grid(self.pixels, flip_x, flip_y, transpose))

    @staticmethod
    def cat(parts: list[ColorOutputs]) -> ColorOutputs:
        return ColorOutputs(torch.cat([p.pixels for p in parts]))


@dataclass(frozen=True)
class PanopticOutputs:
    """N panoptic maps (N, S, S, 2): (category, instance) per pixel, category 0 the background
    and k + 1 shape class k (`trainer.rewards.panoptic`); int16 to keep datasets small."""

    maps: Tensor  # (N, S, S, 2) int16

    def __post_init__(self) -> None:
        if self.maps.ndim != 4 or self.maps.shape[-1] != 2 or self.maps.is_floating_point():
            raise ValueError(f"panoptic maps must be (N, S, S, 2) integers, got "
                             f"{tuple(self.maps.shape)} {self.maps.dtype}")
        if self.maps.dtype != torch.int16:
            object.__setattr__(self, "maps", self.maps.to(torch.int16))

    def __len__(self) -> int:
        return self.maps.shape[0]

    def select(self, rows: Tensor) -> PanopticOutputs:
        return PanopticOutputs(self.maps[rows])

    def to(self, device: torch.device | str) -> PanopticOutputs:
        return PanopticOutputs(self.maps.to(device))

    def transform(self, flip_x: Tensor, flip_y: Tensor, transpose: Tensor) -> PanopticOutputs:
        return PanopticOutputs(transform_grid(self.maps, flip_x, flip_y, transpose, rows=1))

    @staticmethod
    def cat(parts: list[PanopticOutputs]) -> PanopticOutputs:
        return PanopticOutputs(torch.cat([p.maps for p in parts]))


Outputs = BoxOutputs | CaptionOutputs | ColorOutputs | PanopticOutputs
