"""Reads for the export: a project's answers (ratings and comparisons) as flat rows.

One row per answer, the same fields in every format (`EXPORT_FIELDS`). Ratings come first, then
comparisons, each in id order; `id` is unique within a `kind`. Rows are built from
`.values_list()` with precomputed lookups (model version names, usernames) rather than a model
instance per row, so a million rows stream at the speed of the database.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Comparison, Rating, TaskCandidate
from projects.models import ModelVersion, Project

EXPORT_FIELDS = (
    "id", "kind", "project", "task", "item", "file_name", "candidates", "model_versions",
    "score", "choice", "ranking", "annotator", "time_spent_ms", "created_at",
)

# Rows fetched per round trip (and per server-side cursor fetch on PostgreSQL).
CHUNK_SIZE = 5000

_COMMON = ("id", "task_id", "task__item_id", "task__item__file_name", "annotator_id",
           "time_spent_ms", "created_at")


@dataclass(frozen=True)
class ExportFilters:
    """Which answers to export; None means no restriction. `since` is inclusive, `until`
    exclusive."""

    model_version: ModelVersion | None = None
    annotator: AbstractBaseUser | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(queryset: QuerySet, project: Project, filters: ExportFilters) -> QuerySet:
    queryset = queryset.filter(task__project=project)
    if filters.annotator is not None:
        queryset = queryset.filter(annotator=filters.annotator)
    if filters.since is not None:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset.order_by("id")


def ratings_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """The project's ratings as tuples: `_COMMON` fields, candidate id, its model version id,
    score."""
    queryset = _filtered(Rating.objects.all(), project, filters)
    if filters.model_version is not None:
        queryset = queryset.filter(candidate__model_version=filters.model_version)
    return queryset.values_list(*_COMMON, "candidate_id", "candidate__model_version_id", "score")


def comparisons_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """The project's comparisons as tuples: `_COMMON` fields, choice, ranking. A model version
    filter keeps comparisons where any shown candidate came from that version."""
    queryset = _filtered(Comparison.objects.all(), project, filters)
    if filters.model_version is not None:
        queryset = queryset.filter(
            Exists(TaskCandidate.objects.filter(
                task=OuterRef("task_id"), candidate__model_version=filters.model_version
            ))
        )
    return queryset.values_list(*_COMMON, "choice", "ranking")


def answer_count(*, project: Project, filters: ExportFilters) -> int:
    """How many rows the export has."""
    return (ratings_for_export(project=project, filters=filters).count()
            + comparisons_for_export(project=project, filters=filters).count())


class _Lookups:
    """Names by id, loaded once per export (model versions) or on first sight (usernames):
    a handful of rows instead of a join per answer."""

    def __init__(self, project: Project) -> None:
        self.project_id = project.pk
        self.versions = dict(
            ModelVersion.objects.filter(project=project).values_list("id", "name")
        )
        self._users: dict[int, str] = {}

    def username(self, user_id: int) -> str:
        name = self._users.get(user_id)
        if name is None:
            name = get_user_model().objects.values_list("username", flat=True).get(pk=user_id)
            self._users[user_id] = name
        return name


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _rating_rows(rows: Iterator[tuple], lookups: _Lookups) -> Iterator[dict]:
    project_id, versions, username = lookups.project_id, lookups.versions, lookups.username
    for (pk, task, item, file_name, annotator, spent, created, candidate, version,
         score) in rows:
        yield {
            "id": pk, "kind": "rating", "project": project_id, "task": task, "item": item,
            "file_name": file_name, "candidates": [candidate],
            "model_versions": [versions[version]], "score": score, "choice": None,
            "ranking": None, "annotator": username(annotator), "time_spent_ms": spent,
            "created_at": _iso(created),
        }


def _comparison_rows(rows: Iterator[tuple], lookups: _Lookups) -> Iterator[dict]:
    project_id, versions, username = lookups.project_id, lookups.versions, lookups.username
    while chunk := list(islice(rows, CHUNK_SIZE)):
        # The candidates shown on each task, in screen order: one query per chunk.
        shown: dict[int, list[tuple[int, int]]] = {}
        for task, candidate, version in (
            TaskCandidate.objects.filter(task_id__in={row[1] for row in chunk})
            .order_by("task_id", "position")
            .values_list("task_id", "candidate_id", "candidate__model_version_id")
        ):
            shown.setdefault(task, []).append((candidate, version))
        for pk, task, item, file_name, annotator, spent, created, choice, ranking in chunk:
            slots = shown.get(task, [])
            yield {
                "id": pk, "kind": "comparison", "project": project_id, "task": task,
                "item": item, "file_name": file_name,
                "candidates": [candidate for candidate, _ in slots],
                "model_versions": [versions[version] for _, version in slots],
                "score": None, "choice": choice, "ranking": ranking,
                "annotator": username(annotator), "time_spent_ms": spent,
                "created_at": _iso(created),
            }


def answers_for_export(
    *, project: Project, filters: ExportFilters, offset: int = 0, limit: int | None = None
) -> Iterator[dict]:
    """The export's rows (dicts with `EXPORT_FIELDS`), ratings then comparisons.

    Without `limit` the rows stream from the database in chunks (constant memory); with it,
    rows `offset` to `offset + limit` of the whole export (a page).
    """
    lookups = _Lookups(project)
    ratings = ratings_for_export(project=project, filters=filters)
    comparisons = comparisons_for_export(project=project, filters=filters)
    if limit is None:
        yield from _rating_rows(ratings.iterator(chunk_size=CHUNK_SIZE), lookups)
        yield from _comparison_rows(comparisons.iterator(chunk_size=CHUNK_SIZE), lookups)
        return
    page = list(ratings[offset:offset + limit])
    yield from _rating_rows(iter(page), lookups)
    if len(page) < limit:
        skip = max(0, offset - ratings.count()) if not page else 0
        rest = comparisons[skip:skip + limit - len(page)]
        yield from _comparison_rows(iter(list(rest)), lookups)
