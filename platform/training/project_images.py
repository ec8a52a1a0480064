"""A run's data from its project's own images: the worker's export.

A learned reward scores outputs without ground truth, so a run can tune on the images its
project rates (`"data": {"source": "project"}`), which usually have none. The worker exports the
project's items once per run to a COCO folder under the run's media folder, which the trainer
reads as any user's folder (it never imports Django): `instances.json` lists every item's image
(named by item id) with the ground truth of the items that have one, `annotated.json` the ids
of those images, since COCO cannot tell "no objects" from "not annotated", and `heldout.json`
the images held out of training, on which the run selects its best step
(`trainer.data.splits`): a seeded share (the run's `val_fraction`, `split_seed`) of the items
with ground truth, or of all items where none has any (scored then by the learned reward). A
resumed run finds the folder and trains on the same images, and holds out the same.

Ground truth is an item's `ground_truth` (`{"objects": [{"bbox", "category_id"}]}`) or null.
The metric reward scores outputs against it, so it needs it on every image; COCO mAP is
computed on the images that have it (`annotated_ids`).
"""

import json
import os
import shutil
from pathlib import Path

from django.conf import settings

from projects.models import Item
from projects.selectors import items_of
from trainer.data.coco import INSTANCES_FILE
from trainer.data.splits import choose_heldout, heldout_count, write_heldout
from tuning.configs import data_config_from
from tuning.models import TuningRun

ANNOTATED_FILE = "annotated.json"


def project_images_folder(run: TuningRun) -> Path:
    """The run's export of its project's images as a COCO folder, made on the first call."""
    folder = Path(settings.MEDIA_ROOT) / f"tuning/runs/{run.pk}/images"
    if (folder / INSTANCES_FILE).is_file():
        return folder
    # Written aside and renamed at the end: a worker that dies midway leaves no half folder.
    partial = folder.with_name("images.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    images, annotations, annotated = [], [], []
    for item in items_of(run.project).iterator(chunk_size=500):
        name = f"{item.pk}{Path(item.image.name).suffix}"
        _place(Path(item.image.path), partial / name)
        images.append({"id": item.pk, "file_name": name})
        if item.ground_truth is not None:
            annotated.append(item.pk)
            annotations += [{**obj, "image_id": item.pk} for obj in _matchable(item)]
    instances = {"images": images, "annotations": annotations,
                 "categories": run.project.categories}
    (partial / INSTANCES_FILE).write_text(json.dumps(instances), encoding="utf-8")
    (partial / ANNOTATED_FILE).write_text(json.dumps(annotated), encoding="utf-8")
    write_heldout(partial, _heldout(run, annotated, [image["id"] for image in images]),
                  ground_truth=bool(annotated))
    partial.rename(folder)
    return folder


def _heldout(run: TuningRun, annotated: list[int], every: list[int]) -> list[int]:
    """The items held out of training: a seeded share of those with ground truth, or of all
    where none has it, leaving at least one to train on."""
    data = data_config_from(run.data_config)
    candidates = annotated or every
    count = heldout_count(len(candidates), len(every), data.val_fraction)
    return choose_heldout(candidates, count, data.split_seed)


def annotated_ids(folder: Path) -> set[int]:
    """Ids of the exported images whose items have ground truth."""
    return set(json.loads((folder / ANNOTATED_FILE).read_text(encoding="utf-8")))


def _place(source: Path, target: Path) -> None:
    """A hard link to the item's image (no second copy of the data), or a copy where the run's
    folder lies on another file system."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _matchable(item: Item) -> list[dict]:
    """The item's ground-truth objects that a prediction can overlap: an import accepts empty
    boxes and boxes off the image, which the trainer's COCO reader refuses."""
    objects = item.ground_truth.get("objects", []) if isinstance(item.ground_truth, dict) else []
    return [obj for obj in objects if _overlaps(obj["bbox"], item.width, item.height)]


def _overlaps(bbox: list[float], width: int, height: int) -> bool:
    x, y, w, h = bbox
    return w > 0 and h > 0 and x < width and y < height and x + w > 0 and y + h > 0
