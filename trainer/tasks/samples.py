"""`python -m trainer sample` for the tasks that learn from Synthetic Shapes scenes: n sampled
outputs per held-out scene, written in the formats the platform imports.

- captioning: COCO caption results `[{"image_id", "caption"}]`;
- panoptic: a COCO panoptic JSON and its folder of PNGs (`trainer.data.coco_panoptic`);
- colorization: one PNG per image in a folder, `<image_id>.png`.

With n > 1, sample k goes to its own file (`out-k.json`, `out-k/`, `<image_id>-k.png`), since
each of these formats holds one output per image. Image ids are the scenes' seeds, as in the
evaluation. `temperature=0` takes the most likely output (greedy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainer.data.coco_captions import write_coco_caption_results
from trainer.data.coco_panoptic import (
    SHAPES_PANOPTIC_CATEGORIES,
    PanopticImage,
    write_coco_panoptic,
)
from trainer.data.shapes import Scene
from trainer.render import colorized_png


@torch.no_grad()
def sample_batches(
    model: nn.Module, task: Any, scenes: Sequence[Scene], *, n: int, temperature: float,
    seed: int, batch_size: int = 100,
) -> Iterator[tuple[Any, Tensor]]:
    """Each batch of `scenes` (the task's collate) with n sampled outputs per image, (B*n, ...)
    image-major, on the model's device."""
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    for start in range(0, len(scenes), batch_size):
        batch = task.collate(scenes[start : start + batch_size], model.config.image_size)
        batch = batch.to(model.device)
        tokens, _ = model.sample(batch.images, n, temperature=temperature, generator=generator)
        yield batch, tokens


def sample_path(out: Path, k: int, n: int) -> Path:
    """Where sample k of n goes: `out` itself when n is 1, else `out` with `-k` in its stem."""
    return out if n == 1 else out.with_name(f"{out.stem}-{k}{out.suffix}")


def _per_sample(batch: Any, tokens: Tensor, n: int) -> Iterator[tuple[int, int, Tensor]]:
    """(k, image id, tokens) of each row of image-major samples."""
    for row, image_id in enumerate(batch.image_ids.repeat_interleave(n).tolist()):
        yield row % n, image_id, tokens[row]


def write_caption_samples(model: nn.Module, task: Any, scenes: Sequence[Scene], out: Path, *,
                          n: int, temperature: float, seed: int) -> list[Path]:
    captions: list[dict[int, str]] = [{} for _ in range(n)]
    for batch, tokens in sample_batches(model, task, scenes, n=n, temperature=temperature,
                                        seed=seed):
        texts = task.codec.decode(tokens)
        for row, (k, image_id, _) in enumerate(_per_sample(batch, tokens, n)):
            captions[k][image_id] = texts[row]
    paths = [sample_path(out, k, n) for k in range(n)]
    for path, chosen in zip(paths, captions, strict=True):
        write_coco_caption_results(path, chosen)
    return paths


def write_panoptic_samples(model: nn.Module, task: Any, scenes: Sequence[Scene], out: Path, *,
                           n: int, temperature: float, seed: int) -> list[Path]:
    images: list[list[PanopticImage]] = [[] for _ in range(n)]
    for batch, tokens in sample_batches(model, task, scenes, n=n, temperature=temperature,
                                        seed=seed):
        maps = task.codec.decode(tokens, model.config.image_size).cpu().numpy()
        for row, (k, image_id, _) in enumerate(_per_sample(batch, tokens, n)):
            images[k].append(PanopticImage(image_id, maps[row]))
    paths = [sample_path(out, k, n) for k in range(n)]
    for path, chosen in zip(paths, images, strict=True):
        write_coco_panoptic(path, chosen, SHAPES_PANOPTIC_CATEGORIES)
    return paths


def write_colorization_samples(model: nn.Module, task: Any, scenes: Sequence[Scene],
                               out: Path, *, n: int, temperature: float,
                               seed: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for batch, tokens in sample_batches(model, task, scenes, n=n, temperature=temperature,
                                        seed=seed):
        rgb = task.codec.decode(tokens, batch.gray.repeat_interleave(n, dim=0))
        for row, (k, image_id, _) in enumerate(_per_sample(batch, tokens, n)):
            path = sample_path(out / f"{image_id}.png", k, n)
            path.write_bytes(colorized_png(rgb[row]))
            paths.append(path)
    return paths


SampleWriter = Callable[..., list[Path]]
WRITERS: dict[str, SampleWriter] = {
    "captioning": write_caption_samples,
    "panoptic": write_panoptic_samples,
    "colorization": write_colorization_samples,
}
