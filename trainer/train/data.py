"""Where runs get their examples: Synthetic Shapes (default) or a user's COCO folder.

Training draws batches from an endless stream (fresh scenes for Synthetic Shapes: a first probe
found that a fixed set of 4k scenes is memorised); evaluation uses a fixed, held-out source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from trainer.configs import DataConfig
from trainer.data.detection import (
    DetectionExample,
    DetectionSource,
    ShapesStream,
    collate,
)
from trainer.data.shapes import Scene, ShapesConfig, generate_scene, scene_seed
from trainer.data.sources import detection_source


def shapes_config(data: DataConfig) -> ShapesConfig:
    return ShapesConfig(min_objects=data.min_objects, max_objects=data.max_objects)


def load_folder(data_dir: str) -> DetectionSource:
    """A COCO folder as a source; raises ValueError with a readable reason."""
    from trainer.data.coco import load_coco_dir

    return load_coco_dir(data_dir)


Collate = Callable[[Sequence[Scene], int], Any]


class TrainStream:
    """Batches for training; `position` is saved in checkpoints to resume the stream.

    Detection batches unless `batches_with` gives another task's collate.
    """

    def __init__(self, data: DataConfig, split: str = "train", seed: int = 0, start: int = 0):
        self.source: DetectionSource | None = None
        self.shapes: ShapesStream | None = None
        self.collate: Collate | None = None
        if data.data_dir:
            self.source = load_folder(data.data_dir)
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
        self._position += batch_size
        return collate([next(self._examples) for _ in range(batch_size)], image_size)


def eval_source(data: DataConfig) -> DetectionSource:
    """The held-out examples: the whole COCO folder, or the first `eval_images` of a split."""
    if data.data_dir:
        return detection_source(data.data_dir)
    return detection_source(None, data.eval_split, data.eval_images, shapes_config(data))
