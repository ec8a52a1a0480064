"""The import: images, ground truth and model outputs into a project, all or nothing.

`dataset_import` first checks everything (`ingest.planning`: every image decoded, every JSON
record checked, every reference resolved) and reports all problems at once, by file; only then
does it write, in one transaction. Files it stored under MEDIA_ROOT are deleted again if the
transaction fails, so a failed import leaves nothing behind.

What lands where (docs/api.md has the candidate outputs):
- images -> Items (`file_name` is the name in the folder or archive);
- ground truth -> `Item.ground_truth`: detection `{"objects": [{"bbox", "category_id"}]}`,
  captioning `{"captions": [...]}`, panoptic `{"png_url", "overlay_url", "segments"}`;
- model outputs -> a new ModelVersion and one Candidate per image, then the queue's tasks
  (`labeling.services.task_creation.tasks_create`). Detection: every image of the instances
  file gets a candidate (an image without results has no objects, as in COCO evaluation).
"""

import secrets
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from common.errors import ApplicationError
from ingest.planning import ImportFiles, ImportPlan, import_plan
from labeling.services.task_creation import tasks_create
from projects.models import Item, Project
from projects.services import candidate_create, item_create, model_version_get_or_create


@dataclass
class ImportSummary:
    items_created: int = 0
    ground_truth_set: int = 0
    model_version: str | None = None
    candidates_created: int = 0
    tasks_created: int = 0


def _items_named(project: Project, names: set[str]) -> dict[str, Item]:
    """The project's items with these names, in batches (SQLite caps query parameters)."""
    ordered = sorted(names)
    return {
        item.file_name: item
        for start in range(0, len(ordered), 500)
        for item in Item.objects.filter(project=project,
                                        file_name__in=ordered[start:start + 500])
    }


def _write(project: Project, files: ImportFiles, plan: ImportPlan) -> ImportSummary:
    summary = ImportSummary()
    stored: list[str] = []  # files written under MEDIA_ROOT, deleted again on failure

    def store(relative: str, data: bytes) -> str:
        name = default_storage.save(f"projects/{project.pk}/{relative}", ContentFile(data))
        stored.append(name)
        return default_storage.url(name)

    try:
        with transaction.atomic():
            if plan.new_categories:
                # Only a project without categories gets new ones (checked in the plan).
                project.categories = [
                    {"id": i, "name": n} for i, n in sorted(plan.new_categories.items())
                ]
                project.save(update_fields=["categories"])
            ground_truth = {
                name: value("ground_truth", store) if callable(value) else value
                for name, value in plan.ground_truth.items()
            }
            items: dict[str, Item] = {}
            for name in plan.new_images:
                item = item_create(project=project, file_name=name,
                                   image=files.images.read(name),
                                   ground_truth=ground_truth.pop(name, None))
                stored.append(item.image.name)
                items[name] = item
            summary.items_created = len(items)
            existing = _items_named(
                project,
                (set(ground_truth) | set(plan.outputs) | set(plan.file_outputs)) - set(items),
            )
            for name, value in ground_truth.items():
                existing[name].ground_truth = value
            Item.objects.bulk_update([existing[name] for name in ground_truth],
                                     ["ground_truth"], batch_size=500)
            summary.ground_truth_set = len(ground_truth) + sum(
                item.ground_truth is not None for item in items.values()
            )
            items |= existing
            if plan.outputs or plan.file_outputs:
                version = model_version_get_or_create(project=project, name=plan.model_version)
                summary.model_version = version.name
                # Each output's files in a folder of their own, whose random name tells
                # annotators nothing of the model that made them.
                outputs = plan.outputs | {name: write(f"outputs/{secrets.token_hex(8)}", store)
                                          for name, write in plan.file_outputs.items()}
                for name, output in outputs.items():
                    candidate_create(item=items[name], model_version=version, output=output)
                summary.candidates_created = len(outputs)
                summary.tasks_created = tasks_create(project=project)
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    return summary


def dataset_import(
    *, project: Project, files: ImportFiles, model_version: str | None = None
) -> ImportSummary:
    """Import images, ground truth and model outputs into `project`, all or nothing.

    Raises ApplicationError with `errors` by file name (or argument name) listing every
    problem, and imports nothing, when anything is wrong.
    """
    plan, problems = import_plan(project=project, files=files, model_version=model_version)
    if problems:
        raise ApplicationError(problems.summary(), errors=problems.by_file)
    return _write(project, files, plan)
