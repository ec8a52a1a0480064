"""The uniform noise the models' Gumbel-max sampling draws, from one generator or one per image.

With one generator per image, an image's samples depend only on its own generator, not on which
other images share the batch: data-parallel tuning (`trainer.train.distributed`) splits a batch
over processes and still draws exactly the samples one process would.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# `generator` of the models' `sample`: None (torch's default), one, or one per image.
Generators = torch.Generator | Sequence[torch.Generator] | None


def uniform(shape: torch.Size | tuple[int, ...], generator: Generators,
            device: torch.device) -> Tensor:
    """U(0, 1) noise of `shape`, whose first dimension is images x samples, image-major; with a
    sequence of generators each image's rows come from its own."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(shape, generator=generator, device=device)
    rows = (shape[0] // len(generator), *shape[1:])  # the n samples of one image
    return torch.cat([torch.rand(rows, generator=g, device=device) for g in generator])
