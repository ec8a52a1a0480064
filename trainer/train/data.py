"""Where runs get their examples: Synthetic Shapes (default) or a user's COCO folder.

Training draws batches from an endless stream (fresh scenes for Synthetic Shapes: a first probe
found that a fixed set of 4k scenes is memorised); evaluation uses a fixed, held-out source.
A folder trains on all of its images but its held-out share (`trainer.data.splits`), on which
tuning selects its best step, each drawn image flipped and scale-jittered (`DataConfig.augment`,
`trainer.data.augment`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.configs import DataConfig
from trainer.data.augment import augment
from trainer.data.detection import (
    DetectionExample,
    DetectionSource,
    ShapesStream,
    collate,
)
from trainer.data.shapes import Scene, ShapesConfig, generate_scene, scene_seed
from trainer.data.sources import detection_source
from trainer.data.splits import folder_split


def shapes_config(data: DataConfig) -> ShapesConfig:
    return ShapesConfig(min_objects=data.min_objects, max_objects=data.max_objects)


def load_folder(data_dir: str) -> DetectionSource:
    """A COCO folder as a source; raises ValueError with a readable reason."""
    from trainer.data.coco import load_coco_dir

    return load_coco_dir(data_dir)


@dataclass(frozen=True)
class FolderShares:
    """A data folder's images split: those trained on, and those held out."""

    train: DetectionSource
    heldout: DetectionSource
    ground_truth: bool  # the held-out images' annotations are ground truth


def folder_shares(data: DataConfig) -> FolderShares:
    """The data folder's training and held-out images (`trainer.data.splits`); ValueError when
    no image is left to train on."""
    source = load_folder(data.data_dir)
    split = folder_split(source, data.data_dir, data.val_fraction, data.split_seed)
    train = source.with_images({e.image_id for e in source.examples} - split.heldout)
    if not len(train):
        raise ValueError(f"{data.data_dir}: every image is held out, none is left to train on")
    return FolderShares(train, source.with_images(split.heldout), split.ground_truth)


Collate = Callable[[Sequence[Scene], int], Any]


class TrainStream:
    """Batches for training; `position` is saved in checkpoints to resume the stream.

    Detection batches unless `batches_with` gives another task's collate. On a data folder it
    draws from the folder's training share (`shares.train`), augmented when `data.augment`.
    """

    def __init__(self, data: DataConfig, split: str = "train", seed: int = 0, start: int = 0):
        self.source: DetectionSource | None = None
        self.shares: FolderShares | None = None
        self.shapes: ShapesStream | None = None
        self.collate: Collate | None = None
        self.data, self.seed = data, seed
        if data.data_dir:
            self.shares = folder_shares(data)
            self.source = self.shares.train
            self.categories = self.source.categories
            self._examples: Iterator[DetectionExample] = self.source.endless(seed)
            for _ in range(start):
                next(self._examples)
            self._position = start
        else:
            # Each seed reads its own stretch of the unbounded train split.
            self.shapes = ShapesStream(shapes_config(data), split, start + seed * 10**8)
            self.categories = self.shapes.categories

    def batches_with(self, collate: Collate) -> None:
        """Build batches with a task's `collate(scenes, image_size)` from the same Synthetic
        Shapes scenes (captioning, colorization: their targets come from the scenes)."""
        if self.shapes is None:
            raise ValueError("only detection trains on a data folder; captioning and "
                             "colorization train on Synthetic Shapes (leave out --data)")
        self.collate = collate

    @property
    def position(self) -> int:
        return self.shapes.index % 10**8 if self.shapes else self._position

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(str(c["name"]) for c in self.categories)

    def next_batch(self, batch_size: int, image_size: int, shard: tuple[int, int] = (0, 1)
                   ) -> Any:
        """The next `batch_size` examples; with `shard=(k, count)` only the k-th of `count`
        equal parts of them (a data-parallel process's), the stream moving past them all."""
        part, parts = shard
        size = batch_size // parts
        self._skip(part * size)
        batch = self._take(size, image_size)
        self._skip(batch_size - (part + 1) * size)
        return batch

    def _skip(self, count: int) -> None:
        if self.shapes is not None:
            self.shapes.index += count
            return
        for _ in range(count):
            next(self._examples)
        self._position += count

    def _take(self, batch_size: int, image_size: int) -> Any:
        if self.shapes is not None and self.collate is not None:
            stream = self.shapes
            scenes = [generate_scene(scene_seed(stream.split, stream.index + k), stream.config)
                      for k in range(batch_size)]
            stream.index += batch_size
            return self.collate(scenes, image_size)
        if self.shapes is not None:
            return self.shapes.next_batch(batch_size, image_size)
        examples = [self._drawn(next(self._examples), self._position + k)
                    for k in range(batch_size)]
        self._position += batch_size
        return collate(examples, image_size)

    def _drawn(self, example: DetectionExample, position: int) -> DetectionExample:
        """The example as trained on at `position` of the stream: augmented by a generator of
        (seed, position), so a resumed or sharded stream sees the same images."""
        if not self.data.augment:
            return example
        rng = np.random.default_rng((self.seed, position))
        return augment(example, rng, self.data.scale_min, self.data.scale_max)


def eval_source(data: DataConfig) -> DetectionSource:
    """The held-out examples: the whole COCO folder, or the first `eval_images` of a split."""
    if data.data_dir:
        return detection_source(data.data_dir)
    return detection_source(None, data.eval_split, data.eval_images, shapes_config(data))
