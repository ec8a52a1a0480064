"""Reads for the export: a project's answers (ratings and comparisons) as flat rows.

One row per answer: a tuple of the values of `EXPORT_FIELDS`, the same in every format. Ratings
come first, then comparisons, each in id order; `id` is unique within a `kind`. Rows are built
from `.values_list()` with lookups made once (model version names, usernames) rather than a model
instance or a join per row, and the database writes `created_at` as ISO 8601 text, so a million
rows stream at the speed of the database.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Exists, Func, OuterRef, Q, QuerySet
from django.db.models.sql.compiler import SQLCompiler

from labeling.models import Comparison, Rating, TaskCandidate
from projects.models import ModelVersion, Project

EXPORT_FIELDS = (
    "id", "kind", "project", "task", "item", "file_name", "candidates", "model_versions",
    "score", "choice", "ranking", "annotator", "time_spent_ms", "created_at",
)

# Rows fetched per round trip (and per server-side cursor fetch on PostgreSQL).
CHUNK_SIZE = 5000

_COMMON = ("id", "task_id", "task__item_id", "task__item__file_name", "annotator_id",
           "time_spent_ms", "created_iso")


class IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC ("2026-11-27T12:00:00.000000Z"), formatted by the
    database: parsing a datetime per row and formatting it again costs more than the rest of
    the row."""

    output_field = CharField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list]:
        return self.as_sql(compiler, connection, **extra, template=(
            "to_char(%(expressions)s AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        ))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list]:
        # Django stores SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return self.as_sql(compiler, connection, **extra,
                           template="(REPLACE(%(expressions)s, ' ', 'T') || 'Z')")


@dataclass(frozen=True)
class ExportFilters:
    """Which answers to export; None means no restriction. `since` is inclusive, `until`
    exclusive."""

    model_version: ModelVersion | None = None
    annotator: AbstractBaseUser | None = None
    since: datetime | None = None
    until: datetime | None = None


def project_annotator(*, project: Project, username: str) -> AbstractBaseUser | None:
    """The user named `username` if they belong to the project's answers: a member, or someone
    who answered in it and has since left. Anyone else is None, whether or not the name exists:
    a project admin learns nothing of the accounts outside their project."""
    answered = Q(Exists(Rating.objects.filter(task__project=project, annotator=OuterRef("pk"))))
    answered |= Q(Exists(
        Comparison.objects.filter(task__project=project, annotator=OuterRef("pk"))))
    return (get_user_model().objects.filter(username=username)
            .filter(Q(memberships__project=project) | answered).first())


def _filtered(queryset: QuerySet, project: Project, filters: ExportFilters) -> QuerySet:
    queryset = queryset.filter(task__project=project)
    if filters.annotator is not None:
        queryset = queryset.filter(annotator=filters.annotator)
    if filters.since is not None:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset.annotate(created_iso=IsoTimestamp("created_at")).order_by("id")


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


class _Usernames(dict):
    """Usernames by id, each loaded on first sight: a few queries per export instead of a join
    per answer (a dict subscript is the cheapest lookup Python has)."""

    def __missing__(self, user_id: int) -> str:
        name = get_user_model().objects.values_list("username", flat=True).get(pk=user_id)
        self[user_id] = name
        return name


class _Lookups:
    def __init__(self, project: Project) -> None:
        self.project_id = project.pk
        self.versions = dict(
            ModelVersion.objects.filter(project=project).values_list("id", "name")
        )
        self.usernames = _Usernames()


def _rating_rows(rows: Iterator[tuple], lookups: _Lookups) -> Iterator[tuple]:
    project_id, versions, usernames = lookups.project_id, lookups.versions, lookups.usernames
    for (pk, task, item, file_name, annotator, spent, created, candidate, version,
         score) in rows:
        yield (pk, "rating", project_id, task, item, file_name, [candidate], [versions[version]],
               score, None, None, usernames[annotator], spent, created)


def _comparison_rows(rows: Iterator[tuple], lookups: _Lookups) -> Iterator[tuple]:
    project_id, versions, usernames = lookups.project_id, lookups.versions, lookups.usernames
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
            yield (pk, "comparison", project_id, task, item, file_name,
                   [candidate for candidate, _ in slots], [versions[v] for _, v in slots],
                   None, choice, ranking, usernames[annotator], spent, created)


def answers_for_export(
    *, project: Project, filters: ExportFilters, offset: int = 0, limit: int | None = None
) -> Iterator[tuple]:
    """The export's rows (tuples of `EXPORT_FIELDS` values), ratings then comparisons.

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
