"""The queue's hot statements, written in SQL because they run on every next-task request.

Building these queries with the ORM (Exists, Subquery, annotations) cost more CPU than running
them; the SQL is the same the ORM produced, readable in one place, and runs on PostgreSQL and
SQLite. `FOR UPDATE ... SKIP LOCKED` is added where the database has it (PostgreSQL); SQLite's
IMMEDIATE transactions serialise writers instead.
"""

from datetime import datetime

from django.db import connection

from labeling.models import Assignment, AssignmentStatus, Task

TASK = Task._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
LEASED = AssignmentStatus.LEASED.value
ANSWERED = AssignmentStatus.ANSWERED.value


def _moment(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def pick_open_task(
    *, project_id: int, user_id: int, now: datetime, exclude: list[int], skip_locked: bool
) -> tuple[int, bool] | None:
    """Lock and return (task id, the user holds a lapsed lease on it) of the first task with a
    free slot that this user has not answered, skipped or leased; None when there is none.

    With `skip_locked`, rows locked by others are passed over (concurrent annotators take
    different tasks without waiting); without it, the statement waits for them.
    """
    moment = _moment(now)
    not_these = f"AND t.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    lock = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = "FOR UPDATE OF t SKIP LOCKED" if skip_locked else "FOR UPDATE OF t"
    sql = f"""
        SELECT t.id,
               EXISTS (SELECT 1 FROM {ASSIGNMENT} a
                       WHERE a.task_id = t.id AND a.annotator_id = %s) AS lapsed
        FROM {TASK} t
        WHERE t.project_id = %s
          AND t.answer_count < t.answers_needed
          AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a
                          WHERE a.task_id = t.id AND a.annotator_id = %s
                            AND (a.status <> %s OR a.lease_expires_at > %s))
          AND t.answer_count + (SELECT COUNT(*) FROM {ASSIGNMENT} l
                                WHERE l.task_id = t.id AND l.status = %s
                                  AND l.lease_expires_at > %s) < t.answers_needed
          {not_these}
        ORDER BY t.id
        LIMIT 1
        {lock}
    """
    params = [user_id, project_id, user_id, LEASED, moment, LEASED, moment, *exclude]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (row[0], bool(row[1]))


def free_slots(*, task_id: int, user_id: int, now: datetime) -> int:
    """Slots of the task not taken by answers or by other annotators' running leases."""
    sql = f"""
        SELECT t.answers_needed - t.answer_count
               - (SELECT COUNT(*) FROM {ASSIGNMENT} l
                  WHERE l.task_id = t.id AND l.status = %s AND l.lease_expires_at > %s
                    AND l.annotator_id <> %s)
        FROM {TASK} t WHERE t.id = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [LEASED, _moment(now), user_id, task_id])
        return cursor.fetchone()[0]


def progress_counts(*, project_id: int, user_id: int, since: datetime) -> tuple[int, int, int]:
    """(answered since `since`, answered in all, tasks in the project) for one annotator."""
    answered = f"""
        SELECT COUNT(*) FROM {ASSIGNMENT} a JOIN {TASK} t ON t.id = a.task_id
        WHERE a.annotator_id = %s AND t.project_id = %s AND a.status = %s"""
    sql = f"""
        SELECT ({answered} AND a.updated_at >= %s),
               ({answered}),
               (SELECT COUNT(*) FROM {TASK} WHERE project_id = %s)
    """
    params = [user_id, project_id, ANSWERED, _moment(since), user_id, project_id, ANSWERED,
              project_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        today, done, total = cursor.fetchone()
    return today, done, total
