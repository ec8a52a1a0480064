"""The panoptic model: the colorizer's convolutional network over an RGB image, one categorical
per patch over the task's panoptic tokens (a category and an instance slot, see
`trainer.tasks.panoptic`).

It is a `Colorizer` with two changes. Its input is three colour channels instead of grey, plus
two channels of normalised (y, x) coordinates: an instance's slot names the cell of the image its
box centre lies in, an absolute position, which convolutions alone (translation-equivariant)
could only infer near the borders. And a coarse path (see `__init__`) adds the view of whole
objects that telling shapes apart needs. Everything else is inherited unchanged: the per-patch
factorised distribution, hence exact `sample` and `log_prob` from one forward pass, and the
pieces `mle_step` and `reinforce_step` use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.models.colorizer import ColorGridSpec, Colorizer, ColorizerConfig, _ResidualBlock

IN_CHANNELS = 3 + 2  # RGB, then y and x in [-1, 1]


class PanopticNet(Colorizer):
    """RGB (B, 3, S, S) -> (B, P, bins) logits of the P patches, row-major."""

    def __init__(self, config: ColorizerConfig, spec: ColorGridSpec) -> None:
        super().__init__(config, spec)
        self.stem[0] = nn.Conv2d(IN_CHANNELS, config.width, 3, padding=1)
        axis = torch.linspace(-1.0, 1.0, config.image_size)
        coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"))[None]
        self.register_buffer("coords", coords, persistent=False)
        # A coarse path (1/4 and 1/16 of the patch grid's resolution, twice the width) whose
        # features join every patch: telling a star from a hexagon takes the whole object in
        # view, which the patch-resolution body's few dilated layers see only sparsely.
        width = config.width
        self.coarse = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            *(_ResidualBlock(2 * width, d) for d in (1, 2)),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            *(_ResidualBlock(2 * width, d) for d in (1, 2)),
            nn.GroupNorm(1, 2 * width),
            nn.Conv2d(2 * width, width, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        size = self.config.image_size
        if images.shape[1:] != (3, size, size):
            raise ValueError(f"expected (B, 3, {size}, {size}) RGB images, "
                             f"got {tuple(images.shape)}")
        inputs = torch.cat([images, self.coords.expand(images.shape[0], -1, -1, -1)], dim=1)
        x = self.stem(inputs)
        coarse = F.interpolate(self.coarse(x), size=x.shape[-2:], mode="bilinear")
        # Then the colorizer's body, context and head (its forward wants one grey channel).
        x = self.body(x + coarse)
        x = x + self.context(x.mean(dim=(2, 3)))[:, :, None, None]
        return self.head(x).flatten(2).transpose(1, 2)
