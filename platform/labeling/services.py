"""Writes for labeling: making tasks from candidates, the queue's leases, answers, skip and undo.

The queue's rules, enforced here and backed by the database's unique constraints:
- a task wants `answers_needed` answers from different annotators (the project's overlap);
- an annotator is handed a task at most once (Assignment is unique per task and annotator);
- a lease holds a slot for `LABELING_LEASE_SECONDS` so two annotators are not handed the last
  slot at once; a lease that runs out frees its slot for others (and for its holder again).

Concurrency: every lease is taken while holding the task's row lock (`FOR UPDATE SKIP LOCKED`
in labeling/queue_sql.py, so annotators do not wait on each other), and the free slots are
counted again after the lock is held, in a fresh statement, so a lease committed meanwhile is
seen. An answer takes its slot with a conditional UPDATE (`answer_count < answers_needed`). On
SQLite the IMMEDIATE transaction mode serialises writers instead.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Rating,
    Task,
    TaskCandidate,
)
from labeling.queue_sql import answer_and_lease, held_or_open_task, lease_task, store_answer
from labeling.selectors import (
    AnswerTarget,
    Lease,
    TaskScreen,
    forget_task_total,
    lease_screen,
    screen_of_rows,
    start_of_day,
)
from projects.models import Candidate, Project, RatingMode

Answer = Rating | Comparison
LEASED = AssignmentStatus.LEASED


def lease_duration() -> timedelta:
    """How long a lease holds a task's slot (setting LABELING_LEASE_SECONDS, 10 min default)."""
    return timedelta(seconds=getattr(settings, "LABELING_LEASE_SECONDS", 600))


# --- Task creation -------------------------------------------------------------------------


def task_key(candidate_ids: list[int]) -> str:
    """A task's identity: its sorted candidate ids, so one set of candidates is one task."""
    return ",".join(str(i) for i in sorted(candidate_ids))


def key_candidate_ids(key: str) -> list[int]:
    return [int(part) for part in key.split(",")]


def _candidate_groups(mode: str, ids: list[int], k: int) -> Iterator[list[int]]:
    """The candidate sets one item's candidates make into tasks, for the rating mode."""
    if mode == RatingMode.SCALE:
        yield from ([i] for i in ids)
    elif mode == RatingMode.PAIRWISE:
        # Candidates of one item differ in model version or sample (the candidate_unique key).
        yield from (list(pair) for pair in combinations(ids, 2))
    elif len(ids) >= 2:
        if len(ids) <= k:
            yield list(ids)
            return
        # Groups of k; the last one reaches back so every candidate is ranked at least once.
        for start in range(0, len(ids), k):
            yield list(ids[start:start + k]) if start + k <= len(ids) else list(ids[-k:])


@transaction.atomic
def tasks_create(*, project: Project) -> int:
    """Make the tasks the project's candidates call for; tasks that exist are kept (idempotent).

    Returns how many tasks were created. Screen order (A/B, ...) is shuffled per task, seeded by
    the task's key, so no model always sits on the same side.
    """
    # The project's row lock serialises two imports of one project; the unique key backs it.
    Project.objects.select_for_update().filter(pk=project.pk).exists()
    by_item: dict[int, list[int]] = {}
    for candidate_id, item_id in (
        Candidate.objects.filter(item__project=project)
        .order_by("item_id", "id")
        .values_list("id", "item_id")
    ):
        by_item.setdefault(item_id, []).append(candidate_id)
    existing = set(Task.objects.filter(project=project).values_list("key", flat=True))
    planned: list[tuple[Task, list[int]]] = []
    for item_id, ids in by_item.items():
        for group in _candidate_groups(project.rating_mode, ids, project.ranking_k):
            key = task_key(group)
            if key in existing:
                continue
            existing.add(key)
            order = sorted(group)
            random.Random(f"{project.pk}:{key}").shuffle(order)
            task = Task(project=project, item_id=item_id, key=key,
                        answers_needed=project.overlap)
            planned.append((task, order))
    Task.objects.bulk_create([task for task, _ in planned], batch_size=500)
    forget_task_total(project.pk)
    transaction.on_commit(lambda: forget_task_total(project.pk))
    TaskCandidate.objects.bulk_create(
        [
            TaskCandidate(task=task, candidate_id=candidate_id, position=position)
            for task, order in planned
            for position, candidate_id in enumerate(order)
        ],
        batch_size=1000,
    )
    return len(planned)


# --- The queue ------------------------------------------------------------------------------


def lease_next(*, user_id: int, project_id: int, after: int | None = None) -> Lease | None:
    """Lease the annotator's next task in the project, or None when none is left for them.

    A live lease of theirs is handed back again first (a reload shows the same task). `after` is
    a task id the caller already shows: the answer is another task, for preloading.

    Each try is its own transaction, so nobody holds a task's lock while waiting for another's.
    The first pass skips locked tasks; only when that finds nothing, a second pass waits for
    them, so the last free slots are not reported empty just because a lease is being taken.
    """
    now = timezone.now()
    passes = (True, False) if connection.features.has_select_for_update_skip_locked else (True,)
    passed = [] if after is None else [after]
    for skip_locked in passes:
        while True:
            with transaction.atomic():
                outcome = _lease_try(user_id=user_id, project_id=project_id, now=now,
                                     exclude=passed, skip_locked=skip_locked)
            if outcome is None:
                break
            if isinstance(outcome, Lease):
                return outcome
            passed.append(outcome)  # full meanwhile: the next one
    return None


def _lease_try(
    *, user_id: int, project_id: int, now: datetime, exclude: list[int], skip_locked: bool
) -> Lease | int | None:
    """One try, in the caller's transaction: the user's live lease or a new one, the id of the
    task picked but found full meanwhile, or None when no task is open for them."""
    found = held_or_open_task(project_id=project_id, user_id=user_id, now=now, exclude=exclude,
                              skip_locked=skip_locked)
    if found is None:
        return None
    task_id, held_until = found
    if held_until is not None:
        return Lease(task_id=task_id, expires_at=held_until)
    # Counted again now that the row is ours, in a fresh statement.
    expires = lease_task(task_id=task_id, user_id=user_id, now=now,
                         until=now + lease_duration())
    return task_id if expires is None else Lease(task_id=task_id, expires_at=expires)


def next_task_for(
    *, user: AbstractBaseUser, project: Project, after: int | None = None
) -> Assignment | None:
    """`lease_next` for a user and project, as the lease's Assignment row."""
    lease = lease_next(user_id=user.pk, project_id=project.pk, after=after)
    if lease is None:
        return None
    return Assignment.objects.get(task_id=lease.task_id, annotator_id=user.pk)


# --- Answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    id: int
    task_id: int
    answer: dict  # scale: {"score", "candidate"}; else {"choice"} or {"ranking"}
    idempotency_key: str
    time_spent_ms: int
    created_at: datetime


def _answer_fields(*, key: str, mode: str, answer: dict) -> dict:
    """The answer's model fields, or ApplicationError naming the field that is wrong."""
    expected = {
        RatingMode.SCALE: ("score", 'This project rates on a 1-5 scale: send {"score": 1..5}.'),
        RatingMode.PAIRWISE: (
            "choice", 'This project compares two outputs: send {"choice": "A" | "B" | "tie"}.'
        ),
        RatingMode.RANKING: (
            "ranking", 'This project ranks outputs: send {"ranking": [candidate ids, best first]}.'
        ),
    }
    name, help_text = expected[RatingMode(mode)]
    if set(answer) != {name}:
        raise ApplicationError(help_text, field=f"answer.{name}")
    value = answer[name]
    if mode == RatingMode.SCALE:
        # bool is an int in Python; true is not a score.
        if type(value) is not int or not 1 <= value <= 5:
            raise ApplicationError(
                f"A score is a whole number from 1 to 5, got {value!r}.", field="answer.score"
            )
        return {"candidate_id": key_candidate_ids(key)[0], "score": value}
    if mode == RatingMode.PAIRWISE:
        if value not in Choice.values:
            raise ApplicationError(
                f'A choice is "A", "B" or "tie", got {value!r}.', field="answer.choice"
            )
        return {"choice": value, "ranking": None}
    shown = key_candidate_ids(key)
    if (
        not isinstance(value, list)
        or any(type(v) is not int for v in value)
        or sorted(value) != shown
    ):
        raise ApplicationError(
            f"A ranking lists each shown candidate id exactly once, best first: {shown} in "
            f"some order, got {value!r}.",
            field="answer.ranking",
        )
    return {"choice": None, "ranking": value}


def answer_model(project: Project) -> type[Answer]:
    return model_for_mode(project.rating_mode)


def model_for_mode(mode: str) -> type[Answer]:
    return Rating if mode == RatingMode.SCALE else Comparison


def _shown_answer(fields: dict) -> dict:
    if "score" in fields:
        return {"score": fields["score"], "candidate": fields["candidate_id"]}
    if fields["choice"] is not None:
        return {"choice": fields["choice"]}
    return {"ranking": fields["ranking"]}


def _stored(answer: Answer) -> StoredAnswer:
    fields = (
        {"score": answer.score, "candidate_id": answer.candidate_id}
        if isinstance(answer, Rating) else {"choice": answer.choice, "ranking": answer.ranking}
    )
    return StoredAnswer(id=answer.pk, task_id=answer.task_id, answer=_shown_answer(fields),
                        idempotency_key=answer.idempotency_key,
                        time_spent_ms=answer.time_spent_ms, created_at=answer.created_at)


def _conflict(message: str) -> ApplicationError:
    return ApplicationError(message, status_code=status.HTTP_409_CONFLICT)


def _not_stored(*, model: type[Answer], target: AnswerTarget, user_id: int,
                idempotency_key: str) -> StoredAnswer:
    """Why nothing was stored: the first answer under this key (a retry), or a 409."""
    existing = model.objects.filter(annotator_id=user_id, idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.task_id != target.task_id:
            raise ApplicationError(
                f"This idempotency key was used for task {existing.task_id}; use a new key.",
                field="idempotency_key", status_code=status.HTTP_409_CONFLICT,
            )
        return _stored(existing)
    state = (
        Assignment.objects.filter(task_id=target.task_id, annotator_id=user_id)
        .values_list("status", flat=True)
        .first()
    )
    if state == AssignmentStatus.ANSWERED:
        raise _conflict("You already answered this task.")
    if state == AssignmentStatus.SKIPPED:
        raise _conflict("You skipped this task.")
    if state == AssignmentStatus.LEASED:
        raise _conflict("Your lease ran out and this task has all its answers meanwhile.")
    raise _conflict("This task was not handed to you; ask for your next task.")


def answer_store(
    *,
    user_id: int,
    target: AnswerTarget,
    answer: dict,
    idempotency_key: str,
    time_spent_ms: int = 0,
) -> tuple[StoredAnswer, bool]:
    """Store the annotator's answer to a task leased to them; (answer, created).

    The same idempotency key again returns the stored answer with created False and stores
    nothing: the insert finds the lease already answered or meets the unique constraint on
    (annotator, key), also when two requests race, and the stored answer is looked up and
    returned. Runs in the caller's transaction when there is one.
    """
    fields = _answer_fields(key=target.key, mode=target.rating_mode, answer=answer)
    model = model_for_mode(target.rating_mode)
    now = timezone.now()
    values = dict(fields)
    if values.get("ranking") is not None:
        values["ranking"] = model._meta.get_field("ranking").get_db_prep_save(
            values["ranking"], connection
        )
    # No look-up first: a retry is rare, and the lease (or a unique constraint) catches it.
    answer_id = store_answer(
        model=model, task_id=target.task_id, user_id=user_id, now=now,
        idempotency_key=idempotency_key, time_spent_ms=time_spent_ms, fields=values,
    )
    if answer_id is None:
        return _not_stored(model=model, target=target, user_id=user_id,
                           idempotency_key=idempotency_key), False
    return StoredAnswer(id=answer_id, task_id=target.task_id, answer=_shown_answer(fields),
                        idempotency_key=idempotency_key, time_spent_ms=time_spent_ms,
                        created_at=now), True


def answer_and_lease_next(
    *,
    user_id: int,
    target: AnswerTarget,
    answer: dict,
    idempotency_key: str,
    time_spent_ms: int = 0,
    after: int | None = None,
) -> tuple[StoredAnswer, bool, Lease | None]:
    """Store the answer (`answer_store`) and lease the annotator's next task in the project
    (`lease_next`; `after`: a task they hold already, for preloading), so one request per
    answer keeps an annotator going. A replayed answer comes with the next task too.

    The answer and the first try at the next lease share one transaction (one commit); the
    rare further tries are lease_next's own.
    """
    with transaction.atomic():
        stored, created = answer_store(user_id=user_id, target=target, answer=answer,
                                       idempotency_key=idempotency_key,
                                       time_spent_ms=time_spent_ms)
        first = _lease_try(user_id=user_id, project_id=target.project_id, now=timezone.now(),
                           exclude=[] if after is None else [after], skip_locked=True)
    if isinstance(first, Lease):
        return stored, created, first
    return stored, created, lease_next(user_id=user_id, project_id=target.project_id,
                                       after=after)


def _plain_answer(answer: dict) -> tuple[str, int | None, str | None] | None:
    """(rating mode, score, choice) of a valid scale or pairwise answer; None otherwise."""
    if len(answer) != 1:
        return None
    score = answer.get("score")
    if type(score) is int and 1 <= score <= 5:
        return RatingMode.SCALE.value, score, None
    choice = answer.get("choice")
    if type(choice) is str and choice in Choice.values:
        return RatingMode.PAIRWISE.value, None, choice
    return None


def answer_at_once(
    *,
    user_id: int,
    task_id: int,
    roles: tuple[str, ...],
    answer: dict,
    idempotency_key: str,
    time_spent_ms: int = 0,
    after: int | None = None,
) -> tuple[StoredAnswer, TaskScreen | None] | None:
    """`answer_target` + `answer_and_lease_next` + the next task's screen for the plain case
    (PostgreSQL; a new scale or pairwise answer that fits the project, by a member with one of
    `roles`, to a task leased to them), in one database call: (the stored answer, the next
    task's screen or None). None, with nothing written, when the case is not plain: the
    caller then takes the usual path, which gives the outcome (a replay, 400, 403, 404, 409).
    """
    plain = _plain_answer(answer) if connection.vendor == "postgresql" else None
    if plain is None:
        return None
    mode, score, choice = plain
    now = timezone.now()
    rows = answer_and_lease(
        user_id=user_id, task_id=task_id, roles=roles, mode=mode, score=score, choice=choice,
        idempotency_key=idempotency_key, time_spent_ms=time_spent_ms, now=now,
        until=now + lease_duration(), since=start_of_day(), after=after,
    )
    if not rows:
        return None
    answer_id, candidate_id, project_id, next_id, expires = rows[0][:5]
    fields = ({"score": score, "candidate_id": candidate_id} if mode == RatingMode.SCALE
              else {"choice": choice, "ranking": None})
    stored = StoredAnswer(id=answer_id, task_id=task_id, answer=_shown_answer(fields),
                          idempotency_key=idempotency_key, time_spent_ms=time_spent_ms,
                          created_at=now)
    if next_id is not None:
        screen = screen_of_rows(lease=Lease(task_id=next_id, expires_at=expires),
                                rows=[row[5:] for row in rows], project_id=project_id,
                                rating_mode=mode)
        return stored, screen
    lease = lease_next(user_id=user_id, project_id=project_id, after=after)
    if lease is None:
        return stored, None
    return stored, lease_screen(lease=lease, user_id=user_id, project_id=project_id,
                                rating_mode=mode)


def answer_submit(
    *,
    user: AbstractBaseUser,
    task: Task,
    answer: dict,
    idempotency_key: str,
    time_spent_ms: int = 0,
) -> tuple[Answer, bool]:
    """`answer_store` for a user and a Task (with its project): (the stored row, created)."""
    target = AnswerTarget(task_id=task.pk, project_id=task.project_id, key=task.key,
                          rating_mode=task.project.rating_mode)
    stored, created = answer_store(user_id=user.pk, target=target, answer=answer,
                                   idempotency_key=idempotency_key, time_spent_ms=time_spent_ms)
    return model_for_mode(target.rating_mode).objects.get(pk=stored.id), created


@transaction.atomic
def task_skip(*, user: AbstractBaseUser, task: Task) -> None:
    """Give the task back unanswered; it is not served to this annotator again."""
    now = timezone.now()
    released = Assignment.objects.filter(task=task, annotator=user, status=LEASED).update(
        status=AssignmentStatus.SKIPPED, lease_expires_at=None, updated_at=now
    )
    if released:
        return
    state = (
        Assignment.objects.filter(task=task, annotator=user)
        .values_list("status", flat=True)
        .first()
    )
    if state == AssignmentStatus.ANSWERED:
        raise _conflict("You answered this task; undo the answer instead.")
    if state is None:
        # Skipping a task never handed out (e.g. a preloaded one dropped) still keeps it away.
        Assignment.objects.create(
            task=task, annotator=user, status=AssignmentStatus.SKIPPED, lease_expires_at=None
        )


@transaction.atomic
def answer_undo(*, user: AbstractBaseUser, project: Project) -> Assignment:
    """Withdraw the annotator's last answer in the project; its task is leased to them again."""
    model = answer_model(project)
    last = (
        model.objects.select_for_update()
        .filter(annotator=user, task__project=project)
        .order_by("-id")
        .first()
    )
    if last is None:
        raise ApplicationError(
            "You have no answer to undo in this project.", status_code=status.HTTP_404_NOT_FOUND
        )
    task_id = last.task_id
    last.delete()
    # The answer's slot becomes the lease's: the task's count of taken slots is unchanged.
    Task.objects.filter(pk=task_id).update(answer_count=F("answer_count") - 1)
    now = timezone.now()
    Assignment.objects.filter(task_id=task_id, annotator=user).update(
        status=LEASED, lease_expires_at=now + lease_duration(), updated_at=now
    )
    return Assignment.objects.get(task_id=task_id, annotator=user)
