"""The queue under concurrent annotators on PostgreSQL: each thread is one annotator with its
own database connection, all asking for and answering tasks at once."""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from common.errors import ApplicationError
from common.permissions import ANNOTATORS
from labeling.models import (
    AnswerProgress,
    Assignment,
    AssignmentStatus,
    Comparison,
    Rating,
    Task,
)
from labeling.selectors import answer_target
from labeling.services.answers import answer_and_lease_next, answer_at_once, answer_submit
from labeling.services.leases import lease_next, next_task_for
from projects.models import RatingMode

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
]


def run_annotators(project, users, *, answer: bool) -> dict[int, list[int]]:
    served: dict[int, list[int]] = {user.pk: [] for user in users}

    def work(user) -> None:
        if not answer:
            # Hold leases without answering: one task, then a second one to preload.
            first = next_task_for(user=user, project=project)
            second = first and next_task_for(user=user, project=project, after=first.task_id)
            served[user.pk] = [a.task_id for a in (first, second) if a is not None]
            return
        while (assignment := next_task_for(user=user, project=project)) is not None:
            served[user.pk].append(assignment.task_id)
            task = Task.objects.select_related("project").get(pk=assignment.task_id)
            answer_submit(user=user, task=task, answer={"score": 3},
                          idempotency_key=f"{user.pk}-{assignment.task_id}")

    run_threads(work, list(users))
    return served


def test_concurrent_annotators_fill_every_task_to_its_overlap_exactly(make_project, make_user):
    users = [make_user() for _ in range(6)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=3, n_items=10, n_candidates=2,
                           annotators=users)
    served = run_annotators(project, users, answer=True)
    for tasks in served.values():
        assert len(tasks) == len(set(tasks)), "an annotator was served a task twice"
    per_task = Counter(task for tasks in served.values() for task in tasks)
    assert set(per_task.values()) == {3}
    assert len(per_task) == 20
    assert Rating.objects.count() == 60
    assert set(Task.objects.values_list("answer_count", flat=True)) == {3}


def test_concurrent_leases_never_exceed_the_overlap(make_project, make_user):
    users = [make_user() for _ in range(8)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=2, n_items=3, n_candidates=2,
                           annotators=users)
    served = run_annotators(project, users, answer=False)
    for tasks in served.values():
        assert len(tasks) == len(set(tasks))
    leases = Counter(
        Assignment.objects.filter(status=AssignmentStatus.LEASED).values_list("task_id",
                                                                            flat=True)
    )
    assert leases and max(leases.values()) <= 2
    # Six tasks, two slots each, eight annotators: every slot was taken, none twice.
    assert sum(leases.values()) == 12


def test_racing_retries_of_one_answer_store_it_once(make_project, make_user):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=1, n_candidates=1,
                           annotators=[user])
    task = Task.objects.select_related("project").get(pk=next_task_for(
        user=user, project=project).task_id)
    start = threading.Barrier(4)
    results: list[tuple[int, bool]] = []

    def retry() -> None:
        try:
            start.wait()
            stored, created = answer_submit(user=user, task=task, answer={"score": 2},
                                            idempotency_key="one-key")
            results.append((stored.pk, created))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert Rating.objects.count() == 1
    assert Task.objects.get(pk=task.pk).answer_count == 1


def run_threads(work: Callable, args: list) -> None:
    """Run `work(arg)` in one thread per arg, all released at once; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(args))

    def run(arg) -> None:
        try:
            start.wait()
            work(arg)
        except BaseException as error:  # re-raised in the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_answers_that_carry_the_next_lease_fill_every_task_exactly(make_project, make_user):
    """The HTTP path: each answer leases the next task in the same transaction."""
    users = [make_user() for _ in range(6)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=3, n_items=10, n_candidates=2,
                           annotators=users)
    served: dict[int, list[int]] = {user.pk: [] for user in users}

    def work(user) -> None:
        lease = lease_next(user_id=user.pk, project_id=project.pk)
        while lease is not None:
            served[user.pk].append(lease.task_id)
            target = answer_target(user_id=user.pk, task_id=lease.task_id, roles=ANNOTATORS)
            _, created, lease = answer_and_lease_next(
                user_id=user.pk, target=target, answer={"score": 4},
                idempotency_key=f"{user.pk}-{lease.task_id}",
            )
            assert created

    run_threads(work, users)
    for tasks in served.values():
        assert len(tasks) == len(set(tasks)), "an annotator was served a task twice"
    assert set(Counter(t for tasks in served.values() for t in tasks).values()) == {3}
    assert Rating.objects.count() == 60
    assert set(Task.objects.values_list("answer_count", flat=True)) == {3}


def test_lapsed_leases_racing_for_the_last_slot_store_one_answer(make_project, make_user):
    users = [make_user() for _ in range(4)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=1, n_items=1, n_candidates=1,
                           annotators=users)
    task = Task.objects.select_related("project").get(project=project)
    # Four annotators each still hold a lease that ran out; the task has one slot.
    Assignment.objects.bulk_create([
        Assignment(task=task, annotator=user, status=AssignmentStatus.LEASED,
                   lease_expires_at=timezone.now() - timedelta(seconds=1))
        for user in users
    ])
    outcomes: list[int] = []

    def work(user) -> None:
        try:
            answer_submit(user=user, task=task, answer={"score": 1},
                          idempotency_key=f"race-{user.pk}")
            outcomes.append(201)
        except ApplicationError as error:
            outcomes.append(error.status_code)

    run_threads(work, users)
    assert sorted(outcomes) == [201, 409, 409, 409]
    assert Rating.objects.count() == 1
    assert Task.objects.get(pk=task.pk).answer_count == 1
    assert Assignment.objects.filter(status=AssignmentStatus.ANSWERED).count() == 1


@pytest.mark.parametrize("mode, body", [(RatingMode.SCALE, {"score": 4}),
                                        (RatingMode.PAIRWISE, {"choice": "tie"})])
def test_answers_in_one_call_fill_every_task_exactly(make_project, make_user, mode, body):
    """answer_at_once (the answer endpoint's plain case): answer, next lease and screen in one
    database call per answer."""
    users = [make_user() for _ in range(6)]
    project = make_project(rating_mode=mode, overlap=3, n_items=4, n_candidates=3,
                           annotators=users)
    served: dict[int, list[int]] = {user.pk: [] for user in users}

    def work(user) -> None:
        lease = lease_next(user_id=user.pk, project_id=project.pk)
        task_id = None if lease is None else lease.task_id
        while task_id is not None:
            served[user.pk].append(task_id)
            at_once = answer_at_once(user_id=user.pk, task_id=task_id, roles=ANNOTATORS,
                                     answer=body, idempotency_key=f"{user.pk}-{task_id}")
            assert at_once is not None
            _, screen = at_once
            task_id = None if screen is None else screen.id

    run_threads(work, users)
    for tasks in served.values():
        assert len(tasks) == len(set(tasks)), "an annotator was served a task twice"
    tasks = Task.objects.filter(project=project)
    assert set(Counter(t for ts in served.values() for t in ts).values()) == {3}
    assert len({t for ts in served.values() for t in ts}) == tasks.count()
    assert set(tasks.values_list("answer_count", flat=True)) == {3}
    model = Rating if mode == RatingMode.SCALE else Comparison
    assert model.objects.count() == 3 * tasks.count()
    assert not Assignment.objects.filter(status=AssignmentStatus.LEASED).exists()
    # The progress rows the triggers keep match the answers.
    progress = {row.annotator_id: (row.done, row.done_day)
                for row in AnswerProgress.objects.filter(project=project)}
    assert progress == {user.pk: (len(served[user.pk]),) * 2 for user in users if served[user.pk]}


def test_racing_retries_over_http_store_one_answer(make_project, make_user, api_client_for):
    user = make_user()
    project = make_project(rating_mode=RatingMode.SCALE, n_items=2, n_candidates=1,
                           annotators=[user])
    clients = [api_client_for(user) for _ in range(4)]
    task_id = clients[0].get(f"/api/projects/{project.pk}/next-task/").json()["id"]
    replies: list[tuple[int, int, int | None]] = []

    def post(client) -> None:
        reply = client.post(f"/api/tasks/{task_id}/answer/",
                            {"answer": {"score": 2}, "idempotency_key": "same"}, format="json")
        data = reply.json()
        replies.append((reply.status_code, data["id"], (data["next_task"] or {}).get("id")))

    run_threads(post, clients)
    assert sorted(status for status, _, _ in replies) == [200, 200, 200, 201]
    assert len({answer_id for _, answer_id, _ in replies}) == 1
    # The replays carry the same next lease as the first answer.
    assert len({next_id for _, _, next_id in replies}) == 1
    assert Rating.objects.count() == 1
    assert Task.objects.get(pk=task_id).answer_count == 1


def test_lapsed_leases_racing_over_http_store_one_answer(make_project, make_user,
                                                        api_client_for):
    users = [make_user() for _ in range(4)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=1, n_items=1, n_candidates=1,
                           annotators=users)
    task = Task.objects.get(project=project)
    Assignment.objects.bulk_create([
        Assignment(task=task, annotator=user, status=AssignmentStatus.LEASED,
                   lease_expires_at=timezone.now() - timedelta(seconds=1))
        for user in users
    ])
    clients = [api_client_for(user) for user in users]
    outcomes: list[int] = []

    def post(client) -> None:
        reply = client.post(f"/api/tasks/{task.pk}/answer/",
                            {"answer": {"score": 1}, "idempotency_key": "k"}, format="json")
        outcomes.append(reply.status_code)

    run_threads(post, clients)
    assert sorted(outcomes) == [201, 409, 409, 409]
    assert Rating.objects.count() == 1
    assert Task.objects.get(pk=task.pk).answer_count == 1
