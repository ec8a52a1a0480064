"""Where detection data comes from: a user's COCO folder (`--data DIR`) or Synthetic Shapes."""

from __future__ import annotations

from pathlib import Path

from trainer.data.coco import load_coco_dir
from trainer.data.detection import DetectionSource, shapes_source
from trainer.data.shapes import DEFAULT_CONFIG, SPLIT_SIZES, ShapesConfig


def detection_source(
    data: str | Path | None,
    split: str = "val",
    n: int | None = None,
    config: ShapesConfig = DEFAULT_CONFIG,
) -> DetectionSource:
    """The fixed examples a command works on.

    With `data` a COCO folder, all of its images (or the first `n`); `split` and `config` only
    concern Synthetic Shapes, used when `data` is None: the first `n` scenes of `split`
    (default: the split's size in SPLIT_SIZES).
    """
    if data is None:
        if n is None and split not in SPLIT_SIZES:
            raise ValueError(f"the {split!r} split of Synthetic Shapes is endless: give n")
        return shapes_source(split, SPLIT_SIZES[split] if n is None else n, config)
    source = load_coco_dir(data)
    if n is None or n >= len(source):
        return source
    return source.subset(n)
