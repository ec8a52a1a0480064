"""Which images of a data folder are held out of training, for tuning to select its best step.

A folder may name them itself in `heldout.json`: `{"image_ids": [...], "ground_truth": bool}`.
The platform's export of a project's images does, so the split is fixed when the folder is
written and a resumed run holds out the same images; `ground_truth` false says they have no
annotations to be scored against (a learned reward's run on unannotated images), so selection
scores them with the learned reward. Without the file, a seeded `val_fraction` of the folder's
images is held out (`DataConfig.val_fraction`, `split_seed`): the same folder and seed hold out
the same images on every run, and they are never trained on, by MLE or by tuning.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.data.detection import DetectionSource

HELDOUT_FILE = "heldout.json"


def heldout_count(candidates: int, total: int, fraction: float) -> int:
    """How many of `candidates` images (of `total`) to hold out: `fraction` of them, at least
    one, and at most all but one of `total`, so something is left to train on; 0 when
    `fraction` is 0 or there is nothing to spare."""
    if fraction <= 0 or candidates < 1 or total < 2:
        return 0
    return min(candidates, total - 1, max(1, round(candidates * fraction)))


def choose_heldout(image_ids: Collection[int], count: int, seed: int) -> list[int]:
    """`count` of `image_ids` picked by `seed` (the same ids and seed pick the same), sorted."""
    order = np.random.default_rng(seed).permutation(sorted(int(i) for i in image_ids))
    return sorted(int(i) for i in order[:count])


@dataclass(frozen=True)
class FolderSplit:
    """The held-out images of a folder, and whether their annotations are ground truth."""

    heldout: frozenset[int]
    ground_truth: bool


def write_heldout(folder: str | Path, image_ids: Sequence[int], *, ground_truth: bool) -> Path:
    """Name a folder's held-out images (`HELDOUT_FILE`)."""
    path = Path(folder) / HELDOUT_FILE
    path.write_text(json.dumps({"image_ids": sorted(int(i) for i in image_ids),
                                "ground_truth": bool(ground_truth)}), encoding="utf-8")
    return path


def folder_split(source: DetectionSource, folder: str | Path, fraction: float, seed: int
                 ) -> FolderSplit:
    """The held-out images of the folder `source` was read from (see the module docstring);
    ValueError naming the file when its `heldout.json` cannot be used."""
    path = Path(folder) / HELDOUT_FILE
    ids = {example.image_id for example in source.examples}
    if not path.is_file():
        count = heldout_count(len(ids), len(ids), fraction)
        return FolderSplit(frozenset(choose_heldout(ids, count, seed)), ground_truth=True)
    try:
        named = json.loads(path.read_text(encoding="utf-8"))
        heldout = frozenset(int(i) for i in named["image_ids"])
        ground_truth = named["ground_truth"]
    except (ValueError, TypeError, KeyError):
        raise ValueError(f'{path}: expected {{"image_ids": [ids], "ground_truth": true|false}}'
                         ) from None
    if not isinstance(ground_truth, bool):
        raise ValueError(f'{path}: "ground_truth" must be true or false')
    if heldout - ids:
        raise ValueError(f"{path}: image ids {sorted(heldout - ids)[:5]} are not in the folder")
    return FolderSplit(heldout, ground_truth)
