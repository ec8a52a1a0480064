"""The queue: handing an annotator their next task under a lease.

The queue's rules, enforced here and backed by the database's unique constraints:
- a task wants `answers_needed` answers from different annotators (the project's overlap);
- an annotator is handed a task at most once (Assignment is unique per task and annotator);
- a lease holds a slot for `LABELING_LEASE_SECONDS` so two annotators are not handed the last
  slot at once; a lease that runs out frees its slot for others (and for its holder again).

Concurrency: every lease is taken while holding the task's row lock (`FOR UPDATE SKIP LOCKED`
in labeling/queue_sql.py, so annotators do not wait on each other), and the free slots are
counted again after the lock is held, in a fresh statement, so a lease committed meanwhile is
seen. An answer takes its slot with a conditional write (`answer_count < answers_needed`,
labeling.services.answers). On SQLite the IMMEDIATE transaction mode serialises writers instead.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Assignment
from labeling.queue_sql import held_or_open_task, lease_task
from labeling.selectors import Lease
from projects.models import Project


def lease_duration() -> timedelta:
    """How long a lease holds a task's slot (setting LABELING_LEASE_SECONDS, 10 min default)."""
    return timedelta(seconds=getattr(settings, "LABELING_LEASE_SECONDS", 600))


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
                outcome = lease_try(user_id=user_id, project_id=project_id, now=now,
                                    exclude=passed, skip_locked=skip_locked)
            if outcome is None:
                break
            if isinstance(outcome, Lease):
                return outcome
            passed.append(outcome)  # full meanwhile: the next one
    return None


def lease_try(
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
