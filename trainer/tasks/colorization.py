"""Colorization: greyscale in, colour out as quantised ab bins (CIE Lab) per patch.

Codec. Colour lives in the a and b channels of CIE Lab (sRGB, D65). Each axis is cut into
`ab_bins` values spaced evenly over [-ab_max, ab_max] (an odd count keeps 0, so grey is
reachable), and a patch's class is the pair (a bin, b bin): `ab_bins**2` classes. The target of
a patch is the bin nearest its mean true ab. Decoding paints each patch's ab over its pixels and
picks every pixel's lightness L so that the RGB's ITU-R 601 luma equals the input grey (a
bisection on L): the output keeps the greyscale image's brightness exactly where the colour
allows and only adds colour, which also makes the true bins decode close to the true image.

Reward: `colorization_reward` (colourfulness plus a PSNR fidelity term) of the decoded image
against the true colour image; MLE: cross-entropy of each patch to its true bin (`mle_step`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.configs import ColorizationTaskConfig
from trainer.data.shapes import Scene
from trainer.models.colorizer import ColorGridSpec, Colorizer
from trainer.rewards.colorization import (
    colorfulness,
    colorization_reward,
    psnr,
)

# sRGB (D65) linear RGB -> XYZ, and the D65 white point.
_RGB_TO_XYZ = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375],
     [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as the Synthetic Shapes grey image
_DELTA = 6.0 / 29.0
_BISECTION_STEPS = 12  # L to 100 / 2**12 = 0.02: below one grey level




def _channels(images: Tensor, matrix: Tensor) -> Tensor:
    """Apply a 3x3 colour matrix to (N, 3, H, W)."""
    return torch.einsum("ij,njhw->nihw", matrix.to(images), images)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> (N, 3, H, W) CIE Lab (L in [0, 100])."""
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = _channels(linear, _RGB_TO_XYZ) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _DELTA**3, xyz.clamp_min(1e-12) ** (1 / 3),
                    xyz / (3 * _DELTA**2) + 4 / 29)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """(N, 3, H, W) CIE Lab -> sRGB in [0, 1] (out-of-gamut colours clipped)."""
    lightness, a, b = lab.unbind(dim=1)
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))
    xyz = xyz * _WHITE.to(lab).view(1, 3, 1, 1)
    linear = _channels(xyz, _XYZ_TO_RGB).clamp(0, 1)
    return torch.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055
    ).clamp(0, 1)


def _luma(rgb: Tensor) -> Tensor:
    return sum(w * c for w, c in zip(_LUMA, rgb.unbind(dim=1), strict=True))[:, None]


class ColorCodec:
    """True colours -> bins per patch, and bins + grey -> RGB (see the module docstring)."""

    def __init__(self, config: ColorizationTaskConfig) -> None:
        if config.ab_bins < 2 or config.ab_max <= 0:
            raise ValueError("need ab_bins >= 2 and ab_max > 0")
        self.config = config
        self.bins = config.ab_bins**2
        self.spec = ColorGridSpec(bins=self.bins, patch=config.patch)
        self.centres = torch.linspace(-config.ab_max, config.ab_max, config.ab_bins)

    def encode(self, rgb: Tensor) -> Tensor:
        """(N, 3, H, W) true colours in [0, 1] -> (N, P) bin of each patch's mean ab."""
        ab = F.avg_pool2d(rgb_to_lab(rgb)[:, 1:], self.config.patch)  # (N, 2, h, w)
        step = 2 * self.config.ab_max / (self.config.ab_bins - 1)
        index = ((ab + self.config.ab_max) / step).round().clamp(0, self.config.ab_bins - 1)
        index = index.long()
        return (index[:, 0] * self.config.ab_bins + index[:, 1]).flatten(1)

    def ab(self, tokens: Tensor, size: int) -> Tensor:
        """(N, P) bins -> (N, 2, size, size) ab, each patch's value over its pixels."""
        grid = size // self.config.patch
        centres = self.centres.to(tokens.device)
        a = centres[tokens // self.config.ab_bins]
        b = centres[tokens % self.config.ab_bins]
        ab = torch.stack([a, b], dim=1).view(-1, 2, grid, grid)
        return F.interpolate(ab, size=(size, size), mode="nearest")

    def decode(self, tokens: Tensor, gray: Tensor) -> Tensor:
        """(N, P) bins and (N, 1, S, S) grey in [0, 1] -> (N, 3, S, S) RGB in [0, 1] whose luma
        matches the grey (by bisection on L; the luma grows with L at fixed ab)."""
        ab = self.ab(tokens, gray.shape[-1]).to(gray.dtype)
        low, high = torch.zeros_like(gray), torch.full_like(gray, 100.0)
        for _ in range(_BISECTION_STEPS):
            mid = (low + high) / 2
            darker = _luma(lab_to_rgb(torch.cat([mid, ab], dim=1))) < gray
            low, high = torch.where(darker, mid, low), torch.where(darker, high, mid)
        return lab_to_rgb(torch.cat([(low + high) / 2, ab], dim=1))


@dataclass
class ColorBatch:
    """Greyscale model inputs and the true colours of B images."""

    images: Tensor  # (B, 1, S, S) model input: grey scaled to [-1, 1]
    gray: Tensor  # (B, 1, S, S) grey in [0, 1] (the decoder keeps its luma)
    rgb: Tensor  # (B, 3, S, S) true colours in [0, 1]
    image_ids: Tensor  # (B,) int64 (a Synthetic Shapes scene's seed)

    def to(self, device: torch.device | str) -> ColorBatch:
        return ColorBatch(self.images.to(device), self.gray.to(device), self.rgb.to(device),
                          self.image_ids.to(device))

    def __len__(self) -> int:
        return self.images.shape[0]


def color_batch(scenes: Sequence[Scene], image_size: int) -> ColorBatch:
    """Scenes as a batch at `image_size` (resized with antialiasing when they differ)."""
    if not scenes:
        raise ValueError("color_batch needs at least one scene")
    stacked = np.stack([np.dstack([scene.image, scene.gray]) for scene in scenes])
    pixels = torch.from_numpy(stacked).permute(0, 3, 1, 2).float() / 255.0  # (B, 4, H, W)
    if pixels.shape[-1] != image_size or pixels.shape[-2] != image_size:
        pixels = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear",
                               antialias=True, align_corners=False).clamp(0, 1)
    gray = pixels[:, 3:]
    return ColorBatch(
        images=2 * gray - 1,
        gray=gray,
        rgb=pixels[:, :3],
        image_ids=torch.tensor([scene.seed for scene in scenes], dtype=torch.int64),
    )


@dataclass(frozen=True)
class ScoredColors:
    """The task's verdict on sampled colorizations: the reward and its two parts."""

    reward: Tensor  # (N,)
    colorfulness: Tensor  # (N,) Hasler and Suesstrunk's M
    psnr: Tensor  # (N,) dB to the true colours

    def select(self, rows: Tensor) -> ScoredColors:
        return ScoredColors(self.reward[rows], self.colorfulness[rows], self.psnr[rows])

    def metrics(self) -> dict[str, float]:
        return {"colorfulness": self.colorfulness.mean().item(), "psnr": self.psnr.mean().item()}


class ColorizationTask:
    """What the training loops need from colorization: targets, rewards, no auxiliary loss."""

    def __init__(self, config: ColorizationTaskConfig) -> None:
        self.config = config
        self.codec = ColorCodec(config)

    @property
    def spec(self) -> ColorGridSpec:
        return self.codec.spec

    def collate(self, scenes: Sequence[Scene], image_size: int) -> ColorBatch:
        return color_batch(scenes, image_size)

    def targets(self, batch: ColorBatch, generator: torch.Generator | None) -> Tensor:
        """MLE targets: the true bin of every patch (`generator` unused: nothing to order)."""
        return self.codec.encode(batch.rgb)

    def score(self, pred_rgb: Tensor, true_rgb: Tensor) -> ScoredColors:
        """Reward and its parts of decoded colorizations against the true colours."""
        return ScoredColors(
            reward=colorization_reward(pred_rgb, true_rgb,
                                       fidelity_weight=self.config.fidelity_weight),
            colorfulness=colorfulness(pred_rgb),
            psnr=psnr(pred_rgb, true_rgb),
        )

    def reward(self, tokens: Tensor, batch: ColorBatch, n: int) -> ScoredColors:
        """Score n samples per image (image-major rows) against the image's true colours."""
        pred = self.codec.decode(tokens, batch.gray.repeat_interleave(n, dim=0))
        return self.score(pred, batch.rgb.repeat_interleave(n, dim=0))

    def aux_loss(self, logits: Tensor, scored: ScoredColors) -> Tensor:
        """Colorization has no auxiliary loss."""
        return logits.new_zeros(())


@torch.no_grad()
def colorize(model: Colorizer, codec: ColorCodec, batch: ColorBatch) -> Tensor:
    """(B, 3, S, S) greedy colorization (each patch's most likely bin) in [0, 1]."""
    device = model.device
    return codec.decode(model.greedy(batch.images.to(device)), batch.gray.to(device))


@torch.no_grad()
def evaluate_colorization(
    model: Colorizer, task: ColorizationTask, scenes: Sequence[Scene], *, batch_size: int = 100
) -> dict[str, float]:
    """Mean colourfulness, PSNR (the fidelity figure) and reward of greedy colorizations."""
    parts: list[ScoredColors] = []
    for start in range(0, len(scenes), batch_size):
        batch = color_batch(scenes[start : start + batch_size], model.config.image_size)
        parts.append(task.score(colorize(model, task.codec, batch), batch.rgb.to(model.device)))
    return {
        name: torch.cat([getattr(part, name) for part in parts]).mean().item()
        for name in ("colorfulness", "psnr", "reward")
    }
