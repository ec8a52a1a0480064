"""The queue's hot statements, in SQL because they run for every answer.

Building these queries with the ORM (Exists, Subquery, annotations) cost more CPU than running
them. Each runs on PostgreSQL and SQLite; `FOR UPDATE ... SKIP LOCKED` is added where the
database has it (PostgreSQL), SQLite's IMMEDIATE transactions serialise writers instead. On
PostgreSQL an answer is stored by a stored function (labeling/sql/answer.sql), and the answer
endpoint's plain case runs the answer, the next lease and its screen in one call of another
(`answer_and_lease`); the statements here are its path for everything else.

On PostgreSQL these statements bind their parameters server-side, so each connection prepares
them once it has run them a few times (psycopg's `prepare_threshold`, config/settings_database.py)
and PostgreSQL stops planning them again: planning cost it 3 to 5 times the CPU of running them.
The ORM's statements bind client-side and are never prepared.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils.dateparse import parse_datetime

from labeling.answer_input import ParsedAnswer
from labeling.models import (
    AnswerProgress,
    Assignment,
    AssignmentStatus,
    Task,
    TaskCandidate,
    answer_model,
)
from projects.models import Candidate, Item, Membership, Project, RatingMode

TASK = Task._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
SLOT = TaskCandidate._meta.db_table
CANDIDATE = Candidate._meta.db_table
ITEM = Item._meta.db_table
PROJECT = Project._meta.db_table
MEMBERSHIP = Membership._meta.db_table
PROGRESS = AnswerProgress._meta.db_table
LEASED = AssignmentStatus.LEASED.value
ANSWERED = AssignmentStatus.ANSWERED.value


def _moment(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _datetime(value) -> datetime | None:
    """A timestamp as the driver returns it (SQLite: text in UTC) as an aware datetime."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    parsed = parse_datetime(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC)


def _cursor() -> CursorWrapper:
    """Django's cursor; on PostgreSQL one that binds server-side (so it may prepare)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def _fetchone(sql: str, params: Sequence) -> tuple | None:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _fetchall(sql: str, params: Sequence) -> list[tuple]:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _none_of(column: str, ids: list[int]) -> str:
    return f"AND {column} NOT IN ({', '.join(['%s'] * len(ids))})" if ids else ""


# --- Look-ups -------------------------------------------------------------------------------


def task_with_role(*, task_id: int, user_id: int) -> tuple[int, str, str, str | None] | None:
    """(project id, task key, project rating mode, the user's role or None) of a task."""
    return _fetchone(
        f"""SELECT t.project_id, t.key, p.rating_mode, m.role
            FROM {TASK} t JOIN {PROJECT} p ON p.id = t.project_id
            LEFT JOIN {MEMBERSHIP} m ON m.project_id = t.project_id AND m.user_id = %s
            WHERE t.id = %s""",
        [user_id, task_id],
    )


def project_mode_and_role(*, project_id: int, user_id: int) -> tuple[str, str] | None:
    """(rating mode, role) of a project the user is a member of; None for non-members."""
    return _fetchone(
        f"""SELECT p.rating_mode, m.role FROM {MEMBERSHIP} m JOIN {PROJECT} p ON p.id = m.project_id
            WHERE m.project_id = %s AND m.user_id = %s""",
        [project_id, user_id],
    )


# --- Leases ---------------------------------------------------------------------------------


def _open_task(direction: str, fence: str, lock: str, exclude: list[int]) -> str:
    """The first open task of the project in id `direction` (ASC, DESC) that the user has not
    answered, skipped or leased, locked by `lock`. Its parameters: project id, user id, leased,
    now, leased, now, then `exclude`."""
    return f"""
            SELECT t.id
            FROM {TASK} t
            WHERE t.project_id = %s
              AND t.answer_count < t.answers_needed
              AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a
                              WHERE a.task_id = t.id AND a.annotator_id = %s
                                AND (a.status <> %s OR a.lease_expires_at > %s) {fence})
              AND t.answer_count + (SELECT COUNT(*) FROM {ASSIGNMENT} l
                                    WHERE l.task_id = t.id AND l.status = %s
                                      AND l.lease_expires_at > %s) < t.answers_needed
              {_none_of("t.id", exclude)}
            ORDER BY t.id {direction}
            LIMIT 1
            {lock}"""


def held_or_open_task(
    *, project_id: int, user_id: int, now: datetime, exclude: list[int], skip_locked: bool
) -> tuple[int, datetime | None] | None:
    """The user's live lease in the project, as (task id, expiry), when they hold one not in
    `exclude`; else the first task with a free slot that they have not answered, skipped or
    leased, locked, as (task id, None); None when there is neither.

    "First" is the newest task when the project serves newest first (its
    `serve_newest_first`), else the oldest: tasks are made as candidates arrive, so their ids
    follow the rounds. A lease of theirs that ran out does not keep them from the task if it
    still has room. With `skip_locked`, tasks locked by others are passed over (concurrent
    annotators take different tasks without waiting); without it, the statement waits for
    them. The open task is only looked for (and locked) when no lease is held.
    """
    moment = _moment(now)
    lock = fence = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = "FOR UPDATE OF t SKIP LOCKED" if skip_locked else "FOR UPDATE OF t"
    if connection.vendor == "postgresql":
        # Checked task by task (an index probe each) as the open tasks are walked in id order:
        # as an anti-join, PostgreSQL would read all of the user's assignments every time.
        fence = "OFFSET 0"
    # One walk per direction, each an index scan of the open tasks; the project's setting is
    # a constant of the statement, so the walk it does not ask for stops before its first row.
    sql = f"""
        WITH held AS (
            SELECT a.task_id, a.lease_expires_at
            FROM {ASSIGNMENT} a JOIN {TASK} t ON t.id = a.task_id
            WHERE a.annotator_id = %s AND t.project_id = %s AND a.status = %s
              AND a.lease_expires_at > %s {_none_of("a.task_id", exclude)}
            ORDER BY a.id
            LIMIT 1
        ), newest_first AS (
            SELECT p.serve_newest_first AS yes FROM {PROJECT} p WHERE p.id = %s
        ), newest AS ({_open_task("DESC", fence, lock, exclude)}
        ), oldest AS ({_open_task("ASC", fence, lock, exclude)}
        )
        SELECT task_id, lease_expires_at FROM held
        UNION ALL
        SELECT id, NULL FROM newest
        WHERE (SELECT yes FROM newest_first) AND NOT EXISTS (SELECT 1 FROM held)
        UNION ALL
        SELECT id, NULL FROM oldest
        WHERE NOT (SELECT yes FROM newest_first) AND NOT EXISTS (SELECT 1 FROM held)
    """
    walk = [project_id, user_id, LEASED, moment, LEASED, moment, *exclude]
    params = [user_id, project_id, LEASED, moment, *exclude, project_id, *walk, *walk]
    row = _fetchone(sql, params)
    return None if row is None else (row[0], _datetime(row[1]))


def lease_task(*, task_id: int, user_id: int, now: datetime, until: datetime) -> datetime | None:
    """Lease a task the caller holds the row lock of, if a slot is still free: the expiry, or
    None when the task is full. A lapsed lease of the user's is renewed.

    The free slots are counted in this statement, so a lease another annotator committed while
    this transaction waited for the lock is seen (a statement sees what was committed before it
    began).
    """
    moment = _moment(now)
    row = _fetchone(
        f"""INSERT INTO {ASSIGNMENT}
                (task_id, annotator_id, status, lease_expires_at, created_at, updated_at)
            SELECT t.id, %s, %s, %s, %s, %s FROM {TASK} t
            WHERE t.id = %s
              AND t.answer_count + (SELECT COUNT(*) FROM {ASSIGNMENT} l
                                    WHERE l.task_id = t.id AND l.status = %s
                                      AND l.lease_expires_at > %s AND l.annotator_id <> %s)
                  < t.answers_needed
            ON CONFLICT (task_id, annotator_id) DO UPDATE
                SET status = excluded.status, lease_expires_at = excluded.lease_expires_at,
                    updated_at = excluded.updated_at
                WHERE {ASSIGNMENT}.status = %s
            RETURNING lease_expires_at""",
        [user_id, LEASED, _moment(until), moment, moment, task_id, LEASED, moment, user_id,
         LEASED],
    )
    return None if row is None else _datetime(row[0])


# --- Answers --------------------------------------------------------------------------------


def store_answer(
    *, task_id: int, user_id: int, answer: ParsedAnswer, candidate_id: int | None,
    idempotency_key: str, time_spent_ms: int, now: datetime,
) -> int | None:
    """Insert the answer (a scale answer rates `candidate_id`), turn the user's lease on the
    task into an answer and count it on the task, all or nothing: the new answer's id, or None,
    with nothing written, when the task is not leased to the user, has all its answers already,
    or the answer meets a unique constraint (its idempotency key was used). Never raises for
    those, so it may run inside the caller's transaction.

    On PostgreSQL this is labeling_answer_store() (labeling/sql/answer.sql), which the answer
    endpoint's one-call path runs too: it locks the lease and the task first and checks the
    task's room on its latest version, so two requests of one annotator take the lease once
    and a lease that ran out cannot push a task past its overlap. SQLite, whose IMMEDIATE
    transactions serialise writers, runs the same steps as statements here.
    """
    ranking = None if answer.ranking is None else json.dumps(answer.ranking)
    if connection.vendor == "postgresql":
        return _fetchone(
            """SELECT labeling_answer_store(
                   %s::integer, %s::bigint, %s::text, %s::bigint, %s::integer, %s::text,
                   %s::jsonb, %s::text, %s::integer, %s::timestamptz)""",
            [user_id, task_id, answer.rating_mode, candidate_id, answer.score, answer.choice,
             ranking, idempotency_key, time_spent_ms, now],
        )[0]
    model = answer_model(answer.rating_mode)
    fields = ({"candidate_id": candidate_id, "score": answer.score}
              if answer.rating_mode == RatingMode.SCALE
              else {"choice": answer.choice, "ranking": ranking})
    moment = _moment(now)
    with transaction.atomic(), _cursor() as cursor:
        cursor.execute(
            f"""SELECT 1 FROM {ASSIGNMENT} a JOIN {TASK} t ON t.id = a.task_id
                WHERE a.task_id = %s AND a.annotator_id = %s AND a.status = %s
                  AND t.answer_count < t.answers_needed""",
            [task_id, user_id, LEASED],
        )
        if cursor.fetchone() is None:
            return None
        cursor.execute(
            f"""INSERT INTO {model._meta.db_table}
                    (task_id, annotator_id, idempotency_key, time_spent_ms, created_at,
                     {", ".join(fields)})
                VALUES ({", ".join(["%s"] * (5 + len(fields)))})
                ON CONFLICT DO NOTHING RETURNING id""",
            [task_id, user_id, idempotency_key, time_spent_ms, moment, *fields.values()],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(f"UPDATE {TASK} SET answer_count = answer_count + 1 WHERE id = %s",
                       [task_id])
        cursor.execute(
            f"""UPDATE {ASSIGNMENT} SET status = %s, lease_expires_at = NULL, updated_at = %s
                WHERE task_id = %s AND annotator_id = %s""",
            [ANSWERED, moment, task_id, user_id],
        )
        return row[0]


def answer_and_lease(
    *, user_id: int, task_id: int, roles: Sequence[str], answer: ParsedAnswer,
    idempotency_key: str, time_spent_ms: int, now: datetime, until: datetime, since: datetime,
    after: int | None,
) -> list[tuple]:
    """PostgreSQL only: a scale or pairwise answer, the first try at the user's next lease and
    that task's screen rows, in one call of labeling_answer_and_lease() (labeling/sql/answer.sql,
    which says what it does). Rows (answer id, the scale answer's
    candidate id, project id, next task id, its lease's expiry, then screen_rows' columns); the
    next task's columns NULL when the try found none; no rows, with nothing written, when the
    case is not plain."""
    return _fetchall(
        """SELECT * FROM labeling_answer_and_lease(
               %s::integer, %s::bigint, %s::text[], %s::text, %s::integer, %s::text, %s::text,
               %s::integer, %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::bigint)""",
        [user_id, task_id, list(roles), answer.rating_mode, answer.score, answer.choice,
         idempotency_key, time_spent_ms, now, until, since, after],
    )


# --- The screen -----------------------------------------------------------------------------


def _done_sql(since: datetime) -> tuple[str, list]:
    """A one-row query (today, ever) of one annotator's answered tasks in a project, taking
    (user id, project id) after the returned parameters: on PostgreSQL their AnswerProgress
    row (kept by triggers), elsewhere counted."""
    if connection.vendor == "postgresql":
        return (
            f"""SELECT COALESCE(MAX(CASE WHEN p.day = %s THEN p.done_day END), 0) AS today,
                       COALESCE(MAX(p.done), 0) AS ever
                FROM {PROGRESS} p WHERE p.annotator_id = %s AND p.project_id = %s""",
            [since.date()],
        )
    return (
        f"""SELECT COALESCE(SUM(CASE WHEN a.updated_at >= %s THEN 1 ELSE 0 END), 0) AS today,
                   COUNT(*) AS ever
            FROM {ASSIGNMENT} a JOIN {TASK} at ON at.id = a.task_id
            WHERE a.annotator_id = %s AND at.project_id = %s AND a.status = '{ANSWERED}'""",
        [_moment(since)],
    )


def screen_rows(*, task_id: int, user_id: int, project_id: int, since: datetime) -> list[tuple]:
    """A task's candidates in screen order, each row (position, candidate id, candidate output,
    item id, image, width, height, answered since `since` (midnight UTC), answered in all) with
    the user's answer counts in the project."""
    done, params = _done_sql(since)
    return _fetchall(
        f"""WITH done AS ({done})
            SELECT s.position, s.candidate_id, c.output, i.id, i.image, i.width, i.height,
                   done.today, done.ever
            FROM {SLOT} s JOIN {CANDIDATE} c ON c.id = s.candidate_id
            JOIN {TASK} t ON t.id = s.task_id JOIN {ITEM} i ON i.id = t.item_id
            CROSS JOIN done
            WHERE s.task_id = %s
            ORDER BY s.position""",
        [*params, user_id, project_id, task_id],
    )


def task_count(*, project_id: int) -> int:
    return _fetchone(f"SELECT COUNT(*) FROM {TASK} WHERE project_id = %s", [project_id])[0]


def done_counts(*, user_id: int, project_id: int, since: datetime) -> tuple[int, int]:
    """(answered since `since`, answered in all): one annotator's answered tasks in a project,
    counted as screen_rows counts them."""
    done, params = _done_sql(since)
    return _fetchone(done, [*params, user_id, project_id])
