"""Reads for the export: a project's answers (ratings and comparisons) as flat rows.

One row per answer: a tuple of the values of `EXPORT_FIELDS`, the same in every format, and with
outputs inline those of `OUTPUT_FIELDS` after them. An imported answer names its annotator as
the archive it came from did. Ratings
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
from django.db.models import CharField, Count, Exists, Func, Max, Min, OuterRef, Q, QuerySet
from django.db.models.sql.compiler import SQLCompiler

from exports.outputs import OutputForms
from labeling.models import Comparison, Rating, TaskCandidate
from projects.models import Candidate, Item, ModelVersion, Project

EXPORT_FIELDS = (
    "id", "kind", "project", "task", "item", "file_name", "candidates", "model_versions",
    "score", "choice", "ranking", "annotator", "time_spent_ms", "created_at",
)
# What `include=outputs` adds to each row: the item's image and the shown candidates' outputs
# (in the order of `candidates`), as `exports.outputs` writes them.
OUTPUT_FIELDS = ("image", "outputs")
_ITEM_AT = EXPORT_FIELDS.index("item")
_CANDIDATES_AT = EXPORT_FIELDS.index("candidates")

# Rows fetched per round trip (and per server-side cursor fetch on PostgreSQL).
CHUNK_SIZE = 5000

_COMMON = ("id", "task_id", "task__item_id", "task__item__file_name", "annotator_id",
           "time_spent_ms", "created_iso", "imported_annotator")


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

    def described(self) -> dict[str, str]:
        """The filters in use, as the query gave them (names, ISO 8601 moments)."""
        values = {
            "model_version": self.model_version.name if self.model_version else None,
            "annotator": self.annotator.get_username() if self.annotator else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {name: value for name, value in values.items() if value is not None}


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


def _selected_ratings(project: Project, filters: ExportFilters) -> QuerySet:
    queryset = _filtered(Rating.objects.all(), project, filters)
    if filters.model_version is not None:
        queryset = queryset.filter(candidate__model_version=filters.model_version)
    return queryset


def _selected_comparisons(project: Project, filters: ExportFilters) -> QuerySet:
    queryset = _filtered(Comparison.objects.all(), project, filters)
    if filters.model_version is not None:
        queryset = queryset.filter(
            Exists(TaskCandidate.objects.filter(
                task=OuterRef("task_id"), candidate__model_version=filters.model_version
            ))
        )
    return queryset


def ratings_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """The project's ratings as tuples: `_COMMON` fields, candidate id, its model version id,
    score."""
    return _selected_ratings(project, filters).values_list(
        *_COMMON, "candidate_id", "candidate__model_version_id", "score")


def comparisons_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """The project's comparisons as tuples: `_COMMON` fields, choice, ranking. A model version
    filter keeps comparisons where any shown candidate came from that version."""
    return _selected_comparisons(project, filters).values_list(*_COMMON, "choice", "ranking")


def items_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """(id, file_name, stored image name) of the items the export's rows name, in id order."""
    ratings = _selected_ratings(project, filters).filter(task__item_id=OuterRef("pk"))
    comparisons = _selected_comparisons(project, filters).filter(task__item_id=OuterRef("pk"))
    return (Item.objects.filter(project=project)
            .filter(Q(Exists(ratings)) | Q(Exists(comparisons)))
            .order_by("id").values_list("id", "file_name", "image"))


def candidates_for_export(*, project: Project, filters: ExportFilters) -> QuerySet:
    """(id, output) of the candidates the export's rows show, in id order."""
    rated = _selected_ratings(project, filters).filter(candidate_id=OuterRef("pk"))
    compared = TaskCandidate.objects.filter(
        candidate_id=OuterRef("pk"),
        task_id__in=_selected_comparisons(project, filters).values("task_id"),
    )
    return (Candidate.objects.filter(item__project=project)
            .filter(Q(Exists(rated)) | Q(Exists(compared)))
            .order_by("id").values_list("id", "output"))


@dataclass(frozen=True)
class ExportSummary:
    """What a dataset card says of the export's rows."""

    answers: int
    annotators: int  # the project's own annotators who gave any of the rows
    imported_annotators: int  # annotators of imported feedback among the rows
    first: datetime | None
    last: datetime | None


def export_summary(*, project: Project, filters: ExportFilters) -> ExportSummary:
    """Counts and the date range of the export's rows, in a few aggregate queries."""
    answers, own, imported, moments = 0, set(), set(), []
    for queryset in (_selected_ratings(project, filters), _selected_comparisons(project, filters)):
        figures = queryset.order_by().aggregate(n=Count("id"), first=Min("created_at"),
                                                last=Max("created_at"))
        answers += figures["n"]
        moments += [moment for moment in (figures["first"], figures["last"]) if moment]
        for annotator, name in (queryset.order_by().values_list("annotator_id",
                                                                "imported_annotator")
                                .distinct()):
            (imported if name else own).add(annotator)
    return ExportSummary(answers=answers, annotators=len(own), imported_annotators=len(imported),
                         first=min(moments, default=None), last=max(moments, default=None))


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
    for (pk, task, item, file_name, annotator, spent, created, imported, candidate, version,
         score) in rows:
        yield (pk, "rating", project_id, task, item, file_name, [candidate], [versions[version]],
               score, None, None, imported or usernames[annotator], spent, created)


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
        for (pk, task, item, file_name, annotator, spent, created, imported, choice,
             ranking) in chunk:
            slots = shown.get(task, [])
            yield (pk, "comparison", project_id, task, item, file_name,
                   [candidate for candidate, _ in slots], [versions[v] for _, v in slots],
                   None, choice, ranking, imported or usernames[annotator], spent, created)


def _with_outputs(rows: Iterator[tuple], forms: OutputForms) -> Iterator[tuple]:
    """Rows with `OUTPUT_FIELDS` added: the outputs and images of a chunk's rows are read in
    two queries per chunk, each candidate's output put in its export form once per chunk."""
    while chunk := list(islice(rows, CHUNK_SIZE)):
        outputs = {
            pk: forms.of(pk, output) for pk, output in Candidate.objects.filter(
                pk__in={pk for row in chunk for pk in row[_CANDIDATES_AT]}
            ).values_list("id", "output")
        }
        images = {
            pk: forms.refs.image(pk, file_name, name) for pk, file_name, name in
            Item.objects.filter(pk__in={row[_ITEM_AT] for row in chunk})
            .values_list("id", "file_name", "image")
        }
        for row in chunk:
            yield (*row, images[row[_ITEM_AT]], [outputs[pk] for pk in row[_CANDIDATES_AT]])


def answers_for_export(
    *, project: Project, filters: ExportFilters, offset: int = 0, limit: int | None = None,
    outputs: OutputForms | None = None,
) -> Iterator[tuple]:
    """The export's rows (tuples of `EXPORT_FIELDS` values, then `OUTPUT_FIELDS` values when
    `outputs` says how to write them), ratings then comparisons."""
    rows = _answers(project, filters, offset, limit)
    return rows if outputs is None else _with_outputs(rows, outputs)


def _answers(
    project: Project, filters: ExportFilters, offset: int, limit: int | None
) -> Iterator[tuple]:
    """Without `limit` the rows stream from the database in chunks (constant memory); with it,
    rows `offset` to `offset + limit` of the whole export (a page)."""
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
