"""Export of ratings and comparisons: what was answered comes out, in JSON, JSONL and CSV, with
filters, for project admins only."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from labeling.models import Comparison, Rating
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from labeling.services.task_creation import tasks_create
from projects.models import Membership, Project, RatingMode

pytestmark = pytest.mark.django_db

FORMATS = ("json", "jsonl", "csv")


def _answer_next(user, project: Project, answer: dict, *, spent: int, day: int):
    """Lease the user's next task and answer it through the real services, dated Nov `day`."""
    task = next_task_for(user=user, project=project).task
    if "ranking" in answer:  # rank the shown candidates in reverse screen order
        answer = {"ranking": list(task.slots.order_by("-position")
                                  .values_list("candidate_id", flat=True))}
    stored, created = answer_submit(user=user, task=task, answer=answer,
                                    idempotency_key=f"{user.pk}-{task.pk}", time_spent_ms=spent)
    assert created
    type(stored).objects.filter(pk=stored.pk).update(
        created_at=datetime(2026, 11, day, 12, 0, tzinfo=UTC)
    )
    return stored


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def scale_project(make_project, project_admin, annotator, bob, outsider, other_project):
    """Ratings: `annotator` rated three candidates on Nov 10, bob one on Nov 20."""
    project = make_project(rating_mode=RatingMode.SCALE, n_items=2, n_candidates=2,
                           admins=[project_admin], annotators=[annotator, bob], name="rated")
    for score in (4, 2, 3):
        _answer_next(annotator, project, {"score": score}, spent=1000 + score, day=10)
    _answer_next(bob, project, {"score": 5}, spent=3000, day=20)
    # An answer in another project must never leak into this export.
    _answer_next(outsider, other_project, {"score": 1}, spent=10, day=10)
    return project


def _rows(response) -> list[dict]:
    """The export's rows as dicts, whatever the format; CSV cells decoded back to values."""
    assert response.status_code == 200, getattr(response, "data", response)
    kind = response["Content-Type"].split(";")[0]
    if kind == "application/json":
        return response.json()["results"]
    body = b"".join(response.streaming_content).decode()
    if kind == "application/x-ndjson":
        return [json.loads(line) for line in body.splitlines()]
    assert kind == "text/csv"
    rows = []
    for cells in csv.DictReader(io.StringIO(body)):
        row: dict = dict(cells)
        for field in ("candidates", "model_versions", "ranking"):
            row[field] = json.loads(row[field]) if row[field] else None
        for field in ("id", "project", "task", "item", "time_spent_ms", "score"):
            row[field] = int(row[field]) if row[field] else None
        row["choice"] = row["choice"] or None
        rows.append(row)
    return rows


@pytest.fixture
def export(api_client_for):
    def get(user, project: Project, **params):
        return api_client_for(user).get(f"/api/projects/{project.pk}/export/", params)

    return get


@pytest.mark.parametrize("fmt", FORMATS)
def test_ratings_round_trip(project_admin, scale_project, export, fmt):
    rows = _rows(export(project_admin, scale_project, format=fmt))
    stored = list(Rating.objects.filter(task__project=scale_project).order_by("id"))
    assert len(stored) == 4
    assert [row["id"] for row in rows] == [r.pk for r in stored]
    for row, rating in zip(rows, stored, strict=True):
        assert row["kind"] == "rating"
        assert row["project"] == scale_project.pk
        assert row["task"] == rating.task_id
        assert row["item"] == rating.candidate.item_id
        assert row["file_name"] == rating.candidate.item.file_name
        assert row["candidates"] == [rating.candidate_id]
        assert row["model_versions"] == [rating.candidate.model_version.name]
        assert row["score"] == rating.score
        assert row["choice"] is None and row["ranking"] is None
        assert row["annotator"] == rating.annotator.username
        assert row["time_spent_ms"] == rating.time_spent_ms
        assert datetime.fromisoformat(row["created_at"]) == rating.created_at


def _kept(rating: Rating, params: dict) -> bool:
    """The filters' meaning, applied in Python to a stored rating."""
    since = datetime.fromisoformat(params.get("since", "2000-01-01")).replace(tzinfo=UTC)
    until = datetime.fromisoformat(params.get("until", "2100-01-01").replace("Z", ""))
    return (
        params.get("model_version", rating.candidate.model_version.name)
        == rating.candidate.model_version.name
        and params.get("annotator", rating.annotator.username) == rating.annotator.username
        and since <= rating.created_at < until.replace(tzinfo=UTC)
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "params",
    [
        {"model_version": "model-1"},
        {"annotator": "bob"},
        {"since": "2026-11-15"},
        {"until": "2026-11-15T00:00:00Z"},
        {"model_version": "model-0", "annotator": "annotator", "until": "2026-11-11"},
        {"since": "2026-11-21"},
    ],
)
def test_filters(project_admin, scale_project, export, fmt, params):
    rows = _rows(export(project_admin, scale_project, format=fmt, **params))
    stored = Rating.objects.filter(task__project=scale_project).order_by("id")
    expected = [r.pk for r in stored if _kept(r, params)]
    assert [row["id"] for row in rows] == expected
    if params.get("annotator") == "bob":
        assert len(expected) == 1
    if "until" in params and "annotator" not in params:
        assert len(expected) == 3  # the annotator's answers of Nov 10, not bob's


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("mode", "answers"),
    [
        (RatingMode.PAIRWISE, [{"choice": "B"}, {"choice": "tie"}]),
        (RatingMode.RANKING, [{"ranking": None}, {"ranking": None}]),
    ],
)
def test_comparisons_round_trip(make_project, project_admin, annotator, export, fmt, mode,
                                answers):
    project = make_project(rating_mode=mode, n_items=2, n_candidates=3 if mode == "ranking"
                           else 2, admins=[project_admin], annotators=[annotator])
    for spent, answer in enumerate(answers):
        _answer_next(annotator, project, answer, spent=700 + spent, day=12)
    rows = _rows(export(project_admin, project, format=fmt))
    stored = list(Comparison.objects.filter(task__project=project).order_by("id"))
    assert [(row["kind"], row["id"]) for row in rows] == [("comparison", c.pk) for c in stored]
    for row, comparison in zip(rows, stored, strict=True):
        slots = list(comparison.task.slots.order_by("position").select_related(
            "candidate__model_version"))
        assert row["candidates"] == [slot.candidate_id for slot in slots]
        assert row["model_versions"] == [slot.candidate.model_version.name for slot in slots]
        assert row["choice"] == comparison.choice and row["ranking"] == comparison.ranking
        assert row["score"] is None
        assert row["item"] == comparison.task.item_id
        assert row["time_spent_ms"] == comparison.time_spent_ms
    assert {row["choice"] for row in rows} == (
        {"B", "tie"} if mode == RatingMode.PAIRWISE else {None}
    )
    # A model version filter keeps comparisons where that version was shown (all of them here).
    assert len(_rows(export(project_admin, project, format=fmt, model_version="model-1"))) == 2


def test_json_is_paginated(project_admin, scale_project, api_client_for):
    client = api_client_for(project_admin)
    url = f"/api/projects/{scale_project.pk}/export/"
    first = client.get(url, {"format": "json", "page_size": 3}).json()
    assert first["count"] == 4 and len(first["results"]) == 3 and first["previous"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert second["previous"] is not None
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == list(Rating.objects.filter(task__project=scale_project)
                       .order_by("id").values_list("id", flat=True))


@pytest.mark.parametrize("size", [2, 4])
def test_pages_run_on_from_ratings_into_comparisons(project_admin, annotator, scale_project,
                                                   api_client_for, size):
    # A project that switched from scale to pairwise has both kinds of answer.
    Project.objects.filter(pk=scale_project.pk).update(rating_mode=RatingMode.PAIRWISE)
    scale_project.refresh_from_db()
    tasks_create(project=scale_project)
    for _ in range(2):
        _answer_next(annotator, scale_project, {"choice": "A"}, spent=1, day=12)
    client = api_client_for(project_admin)
    url, pages = f"/api/projects/{scale_project.pk}/export/?page_size={size}", []
    while url:
        page = client.get(url).json()
        assert page["count"] == 6
        pages.append([(row["kind"], row["id"]) for row in page["results"]])
        url = page["next"]
    ratings = [("rating", pk) for pk in Rating.objects.filter(task__project=scale_project)
               .order_by("id").values_list("id", flat=True)]
    comparisons = [("comparison", pk) for pk in Comparison.objects.filter(
        task__project=scale_project).order_by("id").values_list("id", flat=True)]
    rows = ratings + comparisons
    assert len(ratings) == 4 and len(comparisons) == 2
    assert pages == [rows[start:start + size] for start in range(0, len(rows), size)]


def test_csv_has_a_header_even_when_empty(project_admin, scale_project, export):
    response = export(project_admin, scale_project, format="csv", since="2030-01-01")
    body = b"".join(response.streaming_content).decode()
    assert body.strip().split(",")[:2] == ["id", "kind"]
    assert len(body.strip().splitlines()) == 1


def test_streams_name_their_file(project_admin, scale_project, export):
    response = export(project_admin, scale_project, format="jsonl")
    assert response.streaming
    assert f"project-{scale_project.pk}-answers.jsonl" in response["Content-Disposition"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"since": "2026-11-20", "until": "2026-11-10"}, "until"),
        ({"model_version": "nope"}, "model_version"),
        ({"annotator": "nobody"}, "annotator"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_bad_filters_answer_400_with_the_field(project_admin, scale_project, export, params,
                                               field):
    response = export(project_admin, scale_project, **params)
    assert response.status_code == 400
    body = response.json()
    assert field in body["errors"] and body["detail"]


def test_the_annotator_filter_tells_nothing_of_users_outside_the_project(
        project_admin, scale_project, export, make_user):
    """An unknown name and another project's member (`outsider`) answer alike: the export does
    not say who has an account elsewhere."""
    answers = {name: export(project_admin, scale_project, annotator=name)
               for name in ("nobody", "outsider")}
    bodies = {name: response.json() for name, response in answers.items()}
    assert {response.status_code for response in answers.values()} == {400}
    for name, body in bodies.items():
        assert body == {"detail": f"annotator: No annotator named {name!r} in this project.",
                        "errors": {"annotator": [f"No annotator named {name!r} in this project."]}}


def test_the_annotator_filter_keeps_the_answers_of_one_who_left_the_project(
        project_admin, scale_project, export, bob):
    Membership.objects.filter(project=scale_project, user=bob).delete()
    rows = _rows(export(project_admin, scale_project, annotator="bob"))
    assert [row["annotator"] for row in rows] == ["bob"]


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("annotator", 403), ("outsider", 404), ("project_admin", 200)],
)
def test_permissions(request, scale_project, export, who, status):
    user = request.getfixturevalue(who) if who else None
    response = export(user, scale_project, format="jsonl")
    assert response.status_code == status
    if status != 200:
        assert response.json()["detail"]
