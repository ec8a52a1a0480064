"""The queue's rules through its services: overlap, one answer per annotator, leases, skip, undo."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.errors import ApplicationError
from labeling.models import Assignment, AssignmentStatus, Comparison, Rating, Task
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from labeling.services.skip_and_undo import answer_undo, last_step_undo, task_skip
from labeling.services.task_creation import tasks_create
from projects.models import RatingMode


def answer_next(user, project, key: str):
    assignment = next_task_for(user=user, project=project)
    assert assignment is not None
    task = Task.objects.select_related("project").get(pk=assignment.task_id)
    answer = {"score": 3} if project.rating_mode == RatingMode.SCALE else {"choice": "A"}
    return answer_submit(user=user, task=task, answer=answer, idempotency_key=key)


@pytest.mark.parametrize(
    ("mode", "n_candidates", "expected_tasks"),
    [(RatingMode.SCALE, 3, 3 * 2), (RatingMode.PAIRWISE, 3, 3 * 2), (RatingMode.RANKING, 4, 2 * 2)],
)
def test_tasks_follow_the_rating_mode_and_are_made_once(make_project, mode, n_candidates,
                                                        expected_tasks):
    project = make_project(rating_mode=mode, n_items=2, n_candidates=n_candidates, ranking_k=3)
    assert project.tasks.count() == expected_tasks
    assert tasks_create(project=project) == 0
    for task in project.tasks.prefetch_related("slots__candidate"):
        shown = [slot.candidate for slot in task.slots.all()]
        assert {c.item_id for c in shown} == {task.item_id}
        assert len({c.model_version_id for c in shown}) == len(shown)


def test_each_annotator_gets_each_task_once_and_overlap_is_respected(make_project, make_user):
    users = [make_user() for _ in range(3)]
    project = make_project(rating_mode=RatingMode.SCALE, overlap=2, n_items=2, n_candidates=2,
                           annotators=users)
    answered = {user.pk: [] for user in users}
    for round_ in range(10):
        for user in users:
            assignment = next_task_for(user=user, project=project)
            if assignment is None:
                continue
            task = Task.objects.select_related("project").get(pk=assignment.task_id)
            answer_submit(user=user, task=task, answer={"score": 3},
                          idempotency_key=f"{user.pk}-{round_}")
            answered[user.pk].append(task.pk)
    for tasks in answered.values():
        assert len(tasks) == len(set(tasks))
    assert Rating.objects.count() == 4 * 2
    assert all(t.answer_count == 2 for t in Task.objects.filter(project=project))


def test_a_live_lease_is_served_again_and_after_gives_another(project, annotator):
    first = next_task_for(user=annotator, project=project)
    assert next_task_for(user=annotator, project=project).task_id == first.task_id
    second = next_task_for(user=annotator, project=project, after=first.task_id)
    assert second.task_id != first.task_id


def test_a_full_lease_keeps_others_out_until_it_expires(make_project, make_user):
    alice, bob = make_user(), make_user()
    project = make_project(rating_mode=RatingMode.SCALE, overlap=1, n_items=1, n_candidates=1,
                           annotators=[alice, bob])
    lease = next_task_for(user=alice, project=project)
    assert next_task_for(user=bob, project=project) is None
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert next_task_for(user=bob, project=project).task_id == lease.task_id
    # Alice's lapsed lease no longer holds a slot: her answer would exceed the overlap.
    task = Task.objects.select_related("project").get(pk=lease.task_id)
    answer_submit(user=bob, task=task, answer={"score": 2}, idempotency_key="bob")
    with pytest.raises(ApplicationError) as error:
        answer_submit(user=alice, task=task, answer={"score": 5}, idempotency_key="alice")
    assert error.value.status_code == 409
    assert Rating.objects.count() == 1


def test_a_lapsed_lease_returns_to_its_holder_when_there_is_room(project, annotator):
    lease = next_task_for(user=annotator, project=project)
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = next_task_for(user=annotator, project=project)
    assert again.task_id == lease.task_id
    assert again.lease_expires_at > timezone.now()


def test_the_same_idempotency_key_stores_one_answer(project, annotator):
    first, created = answer_next(annotator, project, "key-1")
    task = first.task
    again, created_again = answer_submit(user=annotator, task=task, answer={"choice": "A"},
                                         idempotency_key="key-1")
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Comparison.objects.count() == 1


def test_skip_keeps_the_task_away_and_undo_brings_the_last_answer_back(project, annotator):
    skipped = next_task_for(user=annotator, project=project)
    task_skip(user=annotator, task=skipped.task)
    answered, _ = answer_next(annotator, project, "k1")
    assert answered.task_id != skipped.task_id
    served = set()
    while (a := next_task_for(user=annotator, project=project)) is not None:
        served.add(a.task_id)
        task_skip(user=annotator, task=a.task)
    assert skipped.task_id not in served and answered.task_id not in served

    back = answer_undo(user=annotator, project=project)
    assert back.task_id == answered.task_id
    assert not Comparison.objects.exists()
    assert Task.objects.get(pk=answered.task_id).answer_count == 0
    assert next_task_for(user=annotator, project=project).task_id == answered.task_id
    with pytest.raises(ApplicationError) as error:
        answer_undo(user=annotator, project=project)
    assert error.value.status_code == 404


def test_undo_takes_back_the_last_step_whether_answer_or_skip(project, annotator):
    first, _ = answer_next(annotator, project, "k1")
    skipped = next_task_for(user=annotator, project=project)
    task_skip(user=annotator, task=skipped.task)
    third, _ = answer_next(annotator, project, "k3")

    steps = [last_step_undo(user=annotator, project=project) for _ in range(3)]
    assert [(s.step, s.assignment.task_id) for s in steps] == [
        ("answer", third.task_id), ("skip", skipped.task_id), ("answer", first.task_id)]
    assert not Comparison.objects.exists()
    # Each task is leased to the annotator again, the skipped one included.
    held = Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.LEASED)
    assert set(held.values_list("task_id", flat=True)) == {
        first.task_id, skipped.task_id, third.task_id}
    assert all(a.lease_expires_at > timezone.now() for a in held)
    with pytest.raises(ApplicationError) as error:
        last_step_undo(user=annotator, project=project)
    assert error.value.status_code == 404


def test_undoing_a_skip_serves_the_task_again_and_it_can_be_answered(project, annotator):
    skipped = next_task_for(user=annotator, project=project)
    task_skip(user=annotator, task=skipped.task)
    after = next_task_for(user=annotator, project=project)
    assert after.task_id != skipped.task_id
    undone = last_step_undo(user=annotator, project=project)
    assert (undone.step, undone.assignment.task_id) == ("skip", skipped.task_id)
    task = Task.objects.select_related("project").get(pk=skipped.task_id)
    answer_submit(user=annotator, task=task, answer={"choice": "B"}, idempotency_key="back")
    assert Comparison.objects.get().task_id == skipped.task_id
    assert Task.objects.get(pk=skipped.task_id).answer_count == 1


def test_a_skipped_task_filled_by_others_cannot_come_back(make_project, make_user):
    alice, bob = make_user(), make_user()
    project = make_project(rating_mode=RatingMode.SCALE, overlap=1, n_items=2, n_candidates=1,
                           annotators=[alice, bob])
    answered, _ = answer_next(alice, project, "a1")
    skipped = next_task_for(user=alice, project=project)
    task_skip(user=alice, task=skipped.task)
    bobs, _ = answer_next(bob, project, "b1")
    assert bobs.task_id == skipped.task_id
    with pytest.raises(ApplicationError) as error:
        last_step_undo(user=alice, project=project)
    assert error.value.status_code == 409
    assert Task.objects.get(pk=skipped.task_id).answer_count == 1
    # The skip is forgotten, so the next undo walks back to the answer before it.
    assert last_step_undo(user=alice, project=project).assignment.task_id == answered.task_id
