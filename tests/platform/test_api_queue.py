"""The queue's endpoints over HTTP: next task, answer, skip, undo, and their bad input."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Assignment, AssignmentStatus, Comparison, Rating, Task
from projects.models import RatingMode


def next_task(client, project) -> dict:
    response = client.get(f"/api/projects/{project.pk}/next-task/")
    assert response.status_code == 200, response.content
    return response.json()


def answer(client, task_id: int, body: dict, key: str | None = None, *, query: str = "",
           **extra):
    return client.post(
        f"/api/tasks/{task_id}/answer/{query}",
        {"answer": body, "idempotency_key": key or str(uuid.uuid4()), **extra},
        format="json",
    )


def test_next_task_shows_the_item_candidates_and_progress(annotator_api, project):
    task = next_task(annotator_api, project)
    assert task["rating_mode"] == "pairwise"
    assert [c["label"] for c in task["candidates"]] == ["A", "B"]
    assert all("objects" in c["output"] for c in task["candidates"])
    assert task["item"]["image_url"].startswith("/media/projects/")
    assert (task["item"]["width"], task["item"]["height"]) == (32, 24)
    assert task["lease_expires_at"]
    assert task["progress"] == {"done_today": 0, "done": 0, "total": 9}
    again = next_task(annotator_api, project)
    assert again["id"] == task["id"]
    preload = annotator_api.get(f"/api/projects/{project.pk}/next-task/?after={task['id']}")
    assert preload.json()["id"] != task["id"]


def test_answering_stores_it_once_and_counts_progress(annotator_api, project, annotator):
    task = next_task(annotator_api, project)
    key = str(uuid.uuid4())
    first = answer(annotator_api, task["id"], {"choice": "tie"}, key, time_spent_ms=1500)
    assert first.status_code == 201
    assert first.json()["answer"] == {"choice": "tie"}
    retry = answer(annotator_api, task["id"], {"choice": "tie"}, key, time_spent_ms=1500)
    assert retry.status_code == 200
    assert retry.json()["id"] == first.json()["id"]
    stored = Comparison.objects.get()
    assert (stored.annotator, stored.choice, stored.time_spent_ms) == (annotator, "tie", 1500)
    assert next_task(annotator_api, project)["progress"]["done"] == 1
    again = answer(annotator_api, task["id"], {"choice": "A"})
    assert again.status_code == 409
    assert Comparison.objects.count() == 1


def test_the_queue_runs_dry_with_204(make_project, make_user, api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=1, n_candidates=2,
                           annotators=[user])
    client = api_client_for(user)
    for _ in range(2):
        task = next_task(client, project)
        assert answer(client, task["id"], {"score": 5}).status_code == 201
    assert client.get(f"/api/projects/{project.pk}/next-task/").status_code == 204
    assert [r.score for r in Rating.objects.all()] == [5, 5]


def test_ranking_answers_list_each_shown_candidate_once(make_project, make_user,
                                                        api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.RANKING, n_items=1, n_candidates=3,
                           annotators=[user])
    client = api_client_for(user)
    task = next_task(client, project)
    ids = [c["id"] for c in task["candidates"]]
    bad = answer(client, task["id"], {"ranking": ids[:2]})
    assert bad.status_code == 400 and "answer.ranking" in bad.json()["errors"]
    good = answer(client, task["id"], {"ranking": ids[::-1]})
    assert good.status_code == 201
    assert Comparison.objects.get().ranking == ids[::-1]


@pytest.mark.parametrize(
    ("mode", "body", "field"),
    [
        (RatingMode.SCALE, {"score": 6}, "answer.score"),
        (RatingMode.SCALE, {"score": 0}, "answer.score"),
        (RatingMode.SCALE, {"score": "4"}, "answer.score"),
        (RatingMode.SCALE, {"score": True}, "answer.score"),
        (RatingMode.SCALE, {"choice": "A"}, "answer.score"),
        (RatingMode.PAIRWISE, {"choice": "C"}, "answer.choice"),
        (RatingMode.PAIRWISE, {"score": 3}, "answer.choice"),
        (RatingMode.RANKING, {"choice": "A"}, "answer.ranking"),
    ],
)
def test_a_wrong_answer_is_400_with_the_field(make_project, make_user, api_client_for, mode,
                                              body, field):
    user = make_user()
    project = make_project(rating_mode=mode, n_items=1, n_candidates=3, annotators=[user])
    client = api_client_for(user)
    task = next_task(client, project)
    response = answer(client, task["id"], body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Rating.objects.exists() and not Comparison.objects.exists()


def test_malformed_or_incomplete_bodies_are_400(annotator_api, project):
    task = next_task(annotator_api, project)
    url = f"/api/tasks/{task['id']}/answer/"
    malformed = annotator_api.post(url, "{not json", content_type="application/json")
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    no_key = annotator_api.post(url, {"answer": {"choice": "A"}}, format="json")
    assert no_key.status_code == 400 and "idempotency_key" in no_key.json()["errors"]
    not_object = annotator_api.post(url, {"answer": "A", "idempotency_key": "k"}, format="json")
    assert not_object.status_code == 400 and "answer" in not_object.json()["errors"]
    negative = answer(annotator_api, task["id"], {"choice": "A"}, time_spent_ms=-5)
    assert negative.status_code == 400 and "time_spent_ms" in negative.json()["errors"]
    bad_after = annotator_api.get(f"/api/projects/{project.pk}/next-task/?after=x")
    assert bad_after.status_code == 400 and "after" in bad_after.json()["errors"]


def test_unknown_ids_are_404(annotator_api, project):
    assert annotator_api.get("/api/projects/999999/next-task/").status_code == 404
    assert answer(annotator_api, 999999, {"choice": "A"}).status_code == 404
    assert annotator_api.post("/api/tasks/999999/skip/").status_code == 404
    assert annotator_api.post("/api/projects/999999/undo/").status_code == 404


def test_a_task_not_leased_to_you_cannot_be_answered(annotator_api, project):
    task = Task.objects.filter(project=project).first()
    response = answer(annotator_api, task.pk, {"choice": "A"})
    assert response.status_code == 409
    assert not Comparison.objects.exists()


def test_an_idempotency_key_belongs_to_one_task(annotator_api, project):
    first = next_task(annotator_api, project)
    assert answer(annotator_api, first["id"], {"choice": "A"}, "same").status_code == 201
    second = next_task(annotator_api, project)
    reused = answer(annotator_api, second["id"], {"choice": "B"}, "same")
    assert reused.status_code == 409 and "idempotency_key" in reused.json()["errors"]


def test_skip_then_undo_over_http(annotator_api, project):
    skipped = next_task(annotator_api, project)
    response = annotator_api.post(f"/api/tasks/{skipped['id']}/skip/")
    assert response.status_code == 200 and response.json()["status"] == "skipped"
    answered = next_task(annotator_api, project)
    assert answered["id"] != skipped["id"]
    assert answer(annotator_api, answered["id"], {"choice": "B"}).status_code == 201
    undo = annotator_api.post(f"/api/projects/{project.pk}/undo/")
    assert undo.status_code == 200
    assert undo.json()["id"] == answered["id"]
    assert undo.json()["progress"]["done"] == 0
    assert not Comparison.objects.exists()
    assert answer(annotator_api, answered["id"], {"choice": "A"}).status_code == 201
    assert annotator_api.post(f"/api/tasks/{answered['id']}/skip/").status_code == 409
    assert Comparison.objects.get().choice == "A"
    assert annotator_api.post(f"/api/projects/{project.pk}/undo/").json()["undone"] == "answer"
    # The skip before the answers is the next step back: its task comes back.
    undo_skip = annotator_api.post(f"/api/projects/{project.pk}/undo/")
    assert undo_skip.status_code == 200
    assert (undo_skip.json()["id"], undo_skip.json()["undone"]) == (skipped["id"], "skip")
    assert annotator_api.post(f"/api/projects/{project.pk}/undo/").status_code == 404


def test_undo_right_after_a_skip_brings_the_skipped_task_back(annotator_api, project):
    first = next_task(annotator_api, project)
    assert answer(annotator_api, first["id"], {"choice": "A"}).status_code == 201
    skipped = next_task(annotator_api, project)
    assert annotator_api.post(f"/api/tasks/{skipped['id']}/skip/").status_code == 200
    undo = annotator_api.post(f"/api/projects/{project.pk}/undo/")
    assert undo.status_code == 200
    body = undo.json()
    assert (body["id"], body["undone"]) == (skipped["id"], "skip")
    assert [c["label"] for c in body["candidates"]] == ["A", "B"]
    assert body["progress"]["done"] == 1
    # The answer before the skip is untouched, and the skipped task can be answered.
    assert Comparison.objects.get().task_id == first["id"]
    assert answer(annotator_api, skipped["id"], {"choice": "tie"}).status_code == 201
    assert Comparison.objects.count() == 2


def test_lease_expiry_over_http(settings, make_project, make_user, api_client_for):
    settings.LABELING_LEASE_SECONDS = 0
    alice, bob = make_user(), make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=1, n_candidates=1,
                           annotators=[alice, bob])
    held = next_task(api_client_for(alice), project)
    # A zero-second lease has run out at once: the task is back in the pool for Bob.
    assert next_task(api_client_for(bob), project)["id"] == held["id"]


@pytest.mark.parametrize("n_items", [1, 6])
def test_the_hot_path_takes_a_fixed_number_of_queries(make_project, make_user, api_client_for,
                                                      n_items):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = make_user()
    project = make_project(rating_mode=RatingMode.PAIRWISE, n_items=n_items, n_candidates=3,
                           annotators=[user])
    client = api_client_for(user)
    with CaptureQueriesContext(connection) as leasing:
        task = next_task(client, project)
    for round_ in range(2):
        with CaptureQueriesContext(connection) as answering:
            response = answer(client, task["id"], {"choice": "B"}, f"q{round_}")
        assert response.status_code == 201
        task = response.json()["next_task"]
        if connection.vendor == "postgresql":
            # The answer, the next lease and its screen: one call (labeling_answer_and_lease).
            assert len(answering) == 1, [q["sql"] for q in answering]
        else:
            # With the savepoints the test's transaction adds (BEGIN/COMMIT in production).
            assert len(answering) <= 14
    assert len(leasing) <= 9


def test_an_answer_carries_the_next_task(make_project, make_user, api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=2, n_candidates=2,
                           annotators=[user])
    client = api_client_for(user)
    first = next_task(client, project)
    preload = client.get(f"/api/projects/{project.pk}/next-task/?after={first['id']}").json()
    reply = answer(client, first["id"], {"score": 2}, "carry",
                   query=f"?after={preload['id']}")
    assert reply.status_code == 201
    carried = reply.json()["next_task"]
    # Leased like next-task's tasks, and not the one the caller holds already.
    assert set(carried) == set(first)
    assert carried["id"] not in (first["id"], preload["id"])
    assert carried["progress"]["done"] == 1
    held = client.get(f"/api/projects/{project.pk}/next-task/?after={preload['id']}").json()
    assert held["id"] == carried["id"]
    # A retry of the answer stores nothing and hands back the same lease.
    again = answer(client, first["id"], {"score": 2}, "carry",
                   query=f"?after={preload['id']}")
    assert again.status_code == 200 and again.json()["next_task"]["id"] == carried["id"]
    assert Rating.objects.count() == 1


def test_the_last_answer_carries_no_task(make_project, make_user, api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=1, n_candidates=1,
                           annotators=[user])
    client = api_client_for(user)
    task = next_task(client, project)
    reply = answer(client, task["id"], {"score": 5})
    assert reply.status_code == 201 and reply.json()["next_task"] is None
    assert reply.json()["answer"]["score"] == 5


def test_answer_input_is_checked_like_the_schema_says(annotator_api, project):
    task = next_task(annotator_api, project)
    url = f"/api/tasks/{task['id']}/answer/"
    body = {"answer": {"choice": "A"}, "idempotency_key": "k"}
    bad_after = annotator_api.post(f"{url}?after=0", body, format="json")
    assert bad_after.status_code == 400 and "after" in bad_after.json()["errors"]
    not_json = annotator_api.post(url, "answer=A", content_type="text/plain")
    assert not_json.status_code == 415
    too_long = annotator_api.post(url, {**body, "idempotency_key": "k" * 65}, format="json")
    assert too_long.status_code == 400 and "idempotency_key" in too_long.json()["errors"]
    as_text = annotator_api.post(url, {**body, "time_spent_ms": "1500"}, format="json")
    assert as_text.status_code == 201 and as_text.json()["time_spent_ms"] == 1500
    assert annotator_api.get(url).status_code == 405
    assert Comparison.objects.count() == 1


def test_progress_counts_answers_undos_and_days(make_project, make_user, api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=3, n_candidates=2,
                           annotators=[user])
    client = api_client_for(user)
    task = next_task(client, project)
    for score in (1, 2, 3):
        task = answer(client, task["id"], {"score": score}).json()["next_task"]
    assert task["progress"] == {"done_today": 3, "done": 3, "total": 6}
    assert client.post(f"/api/projects/{project.pk}/undo/").status_code == 200
    assert next_task(client, project)["progress"] == {"done_today": 2, "done": 2, "total": 6}
    # An answer given yesterday counts in all, not today.
    first = Assignment.objects.filter(annotator=user, status=AssignmentStatus.ANSWERED).first()
    Assignment.objects.filter(pk=first.pk).update(
        updated_at=timezone.now() - timedelta(days=1))
    assert next_task(client, project)["progress"] == {"done_today": 1, "done": 2, "total": 6}
    undone = next_task(client, project)
    reply = answer(client, undone["id"], {"score": 4})
    assert reply.json()["next_task"]["progress"] == {"done_today": 2, "done": 3, "total": 6}
    # A deleted assignment no longer counts (its answer withdrawn first, as undo does).
    Rating.objects.filter(task_id=first.task_id, annotator=user).delete()
    Assignment.objects.filter(pk=first.pk).delete()
    assert next_task(client, project)["progress"] == {"done_today": 2, "done": 2, "total": 6}
