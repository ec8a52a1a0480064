"""Storing an annotator's answer to a task leased to them, and handing them their next task.

An answer is parsed by labeling.answer_input.answer_parse and stored by
labeling.queue_sql.store_answer (on PostgreSQL the stored function labeling_answer_store()),
whichever entry point it comes through: `answer_store` (and `answer_and_lease_next`,
`answer_submit`), or `answer_at_once`, the answer endpoint's one-call path on PostgreSQL.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status

from common.errors import ApplicationError
from labeling.answer_input import ParsedAnswer, answer_parse, mode_named_by
from labeling.models import Assignment, AssignmentStatus, Comparison, Rating, Task, answer_model
from labeling.queue_sql import answer_and_lease, store_answer
from labeling.selectors import (
    AnswerTarget,
    Lease,
    TaskScreen,
    lease_screen,
    screen_of_rows,
    start_of_day,
)
from labeling.services.leases import lease_duration, lease_next, lease_try
from labeling.services.task_creation import key_candidate_ids
from projects.models import RatingMode

# The rating modes whose answers answer_at_once takes (a ranking needs the task's candidates).
AT_ONCE_MODES = (RatingMode.SCALE, RatingMode.PAIRWISE)


@dataclass(frozen=True)
class StoredAnswer:
    id: int
    task_id: int
    answer: dict  # scale: {"score", "candidate"}; else {"choice"} or {"ranking"}
    idempotency_key: str
    time_spent_ms: int
    created_at: datetime


def _shown(*, score: int | None = None, candidate_id: int | None = None,
           choice: str | None = None, ranking: list[int] | None = None) -> dict:
    """An answer as the API shows it: a score with the candidate it rates, a choice or a
    ranking."""
    if score is not None:
        return {"score": score, "candidate": candidate_id}
    if choice is not None:
        return {"choice": choice}
    return {"ranking": ranking}


def _stored(row: Rating | Comparison) -> StoredAnswer:
    shown = (_shown(score=row.score, candidate_id=row.candidate_id) if isinstance(row, Rating)
             else _shown(choice=row.choice, ranking=row.ranking))
    return StoredAnswer(id=row.pk, task_id=row.task_id, answer=shown,
                        idempotency_key=row.idempotency_key, time_spent_ms=row.time_spent_ms,
                        created_at=row.created_at)


def conflict(message: str) -> ApplicationError:
    return ApplicationError(message, status_code=status.HTTP_409_CONFLICT)


def _not_stored(*, rating_mode: str, target: AnswerTarget, user_id: int,
                idempotency_key: str) -> StoredAnswer:
    """Why nothing was stored: the first answer under this key (a retry), or a 409."""
    existing = (answer_model(rating_mode).objects
                .filter(annotator_id=user_id, idempotency_key=idempotency_key).first())
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
        raise conflict("You already answered this task.")
    if state == AssignmentStatus.SKIPPED:
        raise conflict("You skipped this task.")
    if state == AssignmentStatus.LEASED:
        raise conflict("Your lease ran out and this task has all its answers meanwhile.")
    raise conflict("This task was not handed to you; ask for your next task.")


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
    shown = key_candidate_ids(target.key)
    parsed = answer_parse(answer, rating_mode=target.rating_mode, shown=shown)
    candidate_id = shown[0] if parsed.rating_mode == RatingMode.SCALE else None
    now = timezone.now()
    # No look-up first: a retry is rare, and the lease (or a unique constraint) catches it.
    answer_id = store_answer(task_id=target.task_id, user_id=user_id, answer=parsed,
                             candidate_id=candidate_id, idempotency_key=idempotency_key,
                             time_spent_ms=time_spent_ms, now=now)
    if answer_id is None:
        return _not_stored(rating_mode=target.rating_mode, target=target, user_id=user_id,
                           idempotency_key=idempotency_key), False
    shown_answer = _shown(score=parsed.score, candidate_id=candidate_id, choice=parsed.choice,
                          ranking=parsed.ranking)
    return StoredAnswer(id=answer_id, task_id=target.task_id, answer=shown_answer,
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
        first = lease_try(user_id=user_id, project_id=target.project_id, now=timezone.now(),
                          exclude=[] if after is None else [after], skip_locked=True)
    if isinstance(first, Lease):
        return stored, created, first
    return stored, created, lease_next(user_id=user_id, project_id=target.project_id,
                                       after=after)


def _at_once_answer(answer: dict) -> ParsedAnswer | None:
    """The answer, parsed as the rating mode its field names, when answer_at_once takes it;
    None when it does not or the answer is wrong (the usual path then says what is wrong, after
    the task's own checks)."""
    rating_mode = mode_named_by(answer)
    if rating_mode not in AT_ONCE_MODES:
        return None
    try:
        return answer_parse(answer, rating_mode=rating_mode, shown=None)
    except ApplicationError:
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
    parsed = _at_once_answer(answer) if connection.vendor == "postgresql" else None
    if parsed is None:
        return None
    now = timezone.now()
    rows = answer_and_lease(
        user_id=user_id, task_id=task_id, roles=roles, answer=parsed,
        idempotency_key=idempotency_key, time_spent_ms=time_spent_ms, now=now,
        until=now + lease_duration(), since=start_of_day(), after=after,
    )
    if not rows:
        return None
    answer_id, candidate_id, project_id, next_id, expires = rows[0][:5]
    stored = StoredAnswer(id=answer_id, task_id=task_id,
                          answer=_shown(score=parsed.score, candidate_id=candidate_id,
                                        choice=parsed.choice),
                          idempotency_key=idempotency_key, time_spent_ms=time_spent_ms,
                          created_at=now)
    if next_id is not None:
        screen = screen_of_rows(lease=Lease(task_id=next_id, expires_at=expires),
                                rows=[row[5:] for row in rows], project_id=project_id,
                                rating_mode=parsed.rating_mode)
        return stored, screen
    lease = lease_next(user_id=user_id, project_id=project_id, after=after)
    if lease is None:
        return stored, None
    return stored, lease_screen(lease=lease, user_id=user_id, project_id=project_id,
                                rating_mode=parsed.rating_mode)


def answer_submit(
    *,
    user: AbstractBaseUser,
    task: Task,
    answer: dict,
    idempotency_key: str,
    time_spent_ms: int = 0,
) -> tuple[Rating | Comparison, bool]:
    """`answer_store` for a user and a Task (with its project): (the stored row, created)."""
    target = AnswerTarget(task_id=task.pk, project_id=task.project_id, key=task.key,
                          rating_mode=task.project.rating_mode)
    stored, created = answer_store(user_id=user.pk, target=target, answer=answer,
                                   idempotency_key=idempotency_key, time_spent_ms=time_spent_ms)
    return answer_model(target.rating_mode).objects.get(pk=stored.id), created
