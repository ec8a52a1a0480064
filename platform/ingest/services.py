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

`dataset_archive_import` takes a dataset archive (the export's `format=dataset`) into a new,
empty project: its items, candidates and answers, the answers as imported feedback
(`Answer.imported_annotator`: reward models train from them; the queue's overlap and the
agreement of the project's own annotators leave them out).
"""

import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from common.errors import ApplicationError
from ingest.dataset_archive import ArchiveFiles, ArchivePlan, archive_plan
from ingest.planning import ImportFiles, ImportPlan, Store, import_plan
from labeling.models import Comparison, Rating, Task, TaskCandidate, answer_model
from labeling.services.task_creation import task_key, tasks_create
from projects.models import Candidate, Item, Project, RatingMode
from projects.services import candidate_create, item_create, model_version_get_or_create

_BATCH = 1000


@dataclass
class ImportSummary:
    items_created: int = 0
    ground_truth_set: int = 0
    model_version: str | None = None
    candidates_created: int = 0
    tasks_created: int = 0
    answers_imported: int = 0


@contextmanager
def _storing(project: Project) -> Iterator[tuple[Store, list[str]]]:
    """A Store under the project's media folder, and the list of names written under
    MEDIA_ROOT (the caller adds the files it stores otherwise), all deleted again when the
    block fails."""
    stored: list[str] = []

    def store(relative: str, data: bytes) -> str:
        name = default_storage.save(f"projects/{project.pk}/{relative}", ContentFile(data))
        stored.append(name)
        return default_storage.url(name)

    try:
        yield store, stored
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


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
    with _storing(project) as (store, stored), transaction.atomic():
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


def _stored_output(output: dict, archive: ArchiveFiles, store: Store) -> dict:
    """A planned output with each archive member (the `*_url` keys) stored in a folder of the
    output's own, whose random name tells annotators nothing of the model that made it."""
    folder = f"outputs/{secrets.token_hex(8)}"
    return {
        key: store(f"{folder}/{key.removesuffix('_url')}{PurePosixPath(value).suffix}",
                   archive.read(value)) if key.endswith("_url") else value
        for key, value in output.items()
    }


def _write_archive(project: Project, archive: ArchiveFiles, plan: ArchivePlan
                   ) -> ImportSummary:
    summary = ImportSummary()
    with _storing(project) as (store, stored), transaction.atomic():
        if plan.new_categories:
            project.categories = plan.new_categories
            project.save(update_fields=["categories"])
        items: dict[int, Item] = {}
        for source, planned in plan.items.items():
            items[source] = item_create(project=project, file_name=planned.file_name,
                                        image=archive.read(planned.image))
            stored.append(items[source].image.name)
        versions = {name: model_version_get_or_create(project=project, name=name)
                    for name in sorted({c.model_version for c in plan.candidates.values()})}
        samples: Counter[tuple[int, str]] = Counter()
        candidates: dict[int, Candidate] = {}
        for source, planned in plan.candidates.items():
            index = samples[planned.item, planned.model_version]
            samples[planned.item, planned.model_version] += 1
            candidates[source] = Candidate(
                item=items[planned.item], model_version=versions[planned.model_version],
                sample_index=index, output=_stored_output(planned.output, archive, store),
            )
        Candidate.objects.bulk_create(candidates.values(), batch_size=_BATCH)
        # The tasks the answers were given on, in the archive's screen order.
        orders = {tuple(sorted(a.candidates)): a.candidates for a in plan.answers}
        tasks = {
            key: Task(project=project, item=candidates[order[0]].item,
                      key=task_key([candidates[c].pk for c in order]),
                      answers_needed=project.overlap)
            for key, order in orders.items()
        }
        Task.objects.bulk_create(tasks.values(), batch_size=_BATCH)
        TaskCandidate.objects.bulk_create(
            [TaskCandidate(task=tasks[key], candidate=candidates[c], position=position)
             for key, order in orders.items() for position, c in enumerate(order)],
            batch_size=_BATCH,
        )
        answers = _imported_answers(project, plan, candidates, tasks)
        # created_at is the archive's: bulk_create stamps now() on every row (auto_now_add).
        model = answer_model(project.rating_mode)
        model.objects.bulk_create(answers, batch_size=_BATCH)
        for answer, planned in zip(answers, plan.answers, strict=True):
            answer.created_at = planned.created_at
        model.objects.bulk_update(answers, ["created_at"], batch_size=_BATCH)
        summary.items_created = len(items)
        summary.candidates_created = len(candidates)
        summary.answers_imported = len(answers)
        # Tasks for the candidates' other sets, as any import makes them.
        summary.tasks_created = len(tasks) + tasks_create(project=project)
    return summary


def _imported_answers(project: Project, plan: ArchivePlan, candidates: dict[int, Candidate],
                      tasks: dict[tuple[int, ...], Task]) -> list[Rating | Comparison]:
    """The archive's answers as imported feedback: each of its annotators gets a user of their
    own (inactive, no member of the project: they are in no queue and cannot sign in), the
    name the archive gives them stays on their answers."""
    users = {}
    for name in sorted({a.annotator for a in plan.answers}):
        user = get_user_model()(username=f"imported-{project.pk}-{secrets.token_hex(6)}",
                                is_active=False)
        user.set_unusable_password()
        users[name] = user
    get_user_model().objects.bulk_create(users.values(), batch_size=_BATCH)
    answers: list[Rating | Comparison] = []
    for number, planned in enumerate(plan.answers):
        common = {"task": tasks[tuple(sorted(planned.candidates))],
                  "annotator": users[planned.annotator],
                  "idempotency_key": f"imported-{number}",
                  "time_spent_ms": planned.time_spent_ms,
                  "imported_annotator": planned.annotator}
        if project.rating_mode == RatingMode.SCALE:
            answers.append(Rating(candidate=candidates[planned.candidates[0]],
                                  score=planned.score, **common))
        else:
            ranking = ([candidates[c].pk for c in planned.ranking] if planned.ranking
                       else None)
            answers.append(Comparison(choice=planned.choice, ranking=ranking, **common))
    return answers


def dataset_archive_import(*, project: Project, archive: ArchiveFiles) -> ImportSummary:
    """Import a dataset archive (the export's `format=dataset`) into a new, empty project:
    items, candidates and the answers as imported feedback, all or nothing.

    Raises ApplicationError with `errors` by file (data.jsonl by line and field) listing every
    problem, and imports nothing, when anything is wrong.
    """
    plan, problems = archive_plan(project=project, archive=archive)
    if problems:
        raise ApplicationError(problems.summary(), errors=problems.by_file)
    return _write_archive(project, archive, plan)
