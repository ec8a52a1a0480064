"""A small convolutional colorizer: a greyscale image in, one categorical per patch out.

The output is a grid of patches (`patch` pixels a side); each patch gets a distribution over
`bins` colour classes (the task's quantised ab bins), independent given the image. Because the
distribution factorises, sampling and log-probability are exact and cheap: one forward pass per
image, whatever the number of samples.

The model speaks the same verbs as `Pix2SeqModel`, so `mle_step` and `reinforce_step` train it
unchanged: `sample(images, n) -> (tokens, logprobs)`, `log_prob(images, tokens)`, and the pieces
the loops use (`logits`, `token_logprobs`, `scored_mask`, `trim`, `greedy`). Its "tokens" are
the (B*n, P) bin indices of the P patches, row-major; every one is scored (no EOS, no padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.configs import ColorizerConfig
from trainer.models.sampling import Generators, uniform


@dataclass(frozen=True)
class ColorGridSpec:
    """What the task's outputs look like: `bins` classes per patch of `patch` pixels a side."""

    bins: int
    patch: int


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.gelu(self.conv1(self.norm(x))))


class Colorizer(nn.Module):
    """Greyscale (B, 1, S, S) -> per-patch colour logits; see the module docstring."""

    def __init__(self, config: ColorizerConfig, spec: ColorGridSpec) -> None:
        super().__init__()
        self.config, self.spec = config, spec
        downsamples = int(math.log2(spec.patch)) if spec.patch > 0 else -1
        if spec.patch < 1 or 2**downsamples != spec.patch:
            raise ValueError(f"patch must be a power of two, got {spec.patch}")
        if config.image_size % spec.patch:
            raise ValueError(f"image_size {config.image_size} is not a multiple of {spec.patch}")
        self.grid = config.image_size // spec.patch
        width = config.width
        stem: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1)]
        for _ in range(downsamples):  # each halves the resolution, down to one cell per patch
            stem += [nn.GELU(), nn.Conv2d(width, width, 3, stride=2, padding=1)]
        self.stem = nn.Sequential(*stem)
        self.body = nn.Sequential(
            *(_ResidualBlock(width, 2 ** (i % 4)) for i in range(config.blocks))
        )
        # The image's mean feature joins every cell: a patch's colour depends on the scene
        # (which colours are present) beyond what its dilated neighbourhood sees.
        self.context = nn.Linear(width, width)
        self.head = nn.Sequential(nn.GroupNorm(1, width), nn.Conv2d(width, spec.bins, 1))

    @property
    def device(self) -> torch.device:
        return self.context.weight.device

    def forward(self, images: Tensor) -> Tensor:
        """(B, P, bins) logits of the P = grid * grid patches, row-major."""
        if images.shape[1:] != (1, self.config.image_size, self.config.image_size):
            raise ValueError(
                f"expected (B, 1, {self.config.image_size}, {self.config.image_size}) greyscale "
                f"images, got {tuple(images.shape)}"
            )
        x = self.body(self.stem(images))
        x = x + self.context(x.mean(dim=(2, 3)))[:, :, None, None]
        return self.head(x).flatten(2).transpose(1, 2)

    # --- the pieces the training steps use ---

    def logits(self, images: Tensor, tokens: Tensor) -> Tensor:
        """(B*n, P, bins) logits for the n outputs of each image (rows image-major)."""
        n = tokens.shape[0] // images.shape[0]
        return self(images).repeat_interleave(n, dim=0)

    def trim(self, tokens: Tensor) -> Tensor:
        """Every patch is part of the output: nothing to cut."""
        return tokens

    def scored_mask(self, tokens: Tensor) -> Tensor:
        return torch.ones_like(tokens, dtype=torch.bool)

    def token_logprobs(self, logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
        """(B*n, P) log-probability of each patch's bin."""
        logp = torch.log_softmax(logits / temperature, dim=-1)
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    # --- the verbs ---

    def log_prob(self, images: Tensor, tokens: Tensor, temperature: float = 1.0) -> Tensor:
        """(B*n,) log p(tokens | image) under the policy at `temperature`."""
        return self.token_logprobs(self.logits(images, tokens), tokens, temperature).sum(dim=1)

    @torch.no_grad()
    def sample(
        self,
        images: Tensor,
        n: int = 1,
        *,
        temperature: float = 1.0,
        generator: Generators = None,
    ) -> tuple[Tensor, Tensor]:
        """n outputs per image, image-major: bins (B*n, P) and their log-probabilities (B*n,)
        at `temperature`; `temperature=0` takes each patch's arg-max (log-probabilities then at
        temperature 1). `generator`: one, or one per image (`trainer.models.sampling`)."""
        logits = self(images).repeat_interleave(n, dim=0)
        temp = temperature if temperature > 0 else 1.0
        logp = torch.log_softmax(logits / temp, dim=-1)
        if temperature == 0:
            tokens = logp.argmax(dim=-1)
        else:
            # Gumbel-max, as Pix2SeqModel samples: one uniform per class and patch.
            u = uniform(logp.shape, generator, logp.device)
            tokens = (logp - torch.log(-torch.log(u.clamp_min(1e-20)))).argmax(dim=-1)
        return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(dim=1)

    def greedy(self, images: Tensor) -> Tensor:
        """(B, P) arg-max bins, for evaluation."""
        return self.sample(images, 1, temperature=0)[0]
