"""PostgreSQL: labeling_answer_and_lease(), an answer, the next lease and its screen in one call.

The answer endpoint's plain case (labeling.services.answer_at_once) in one round trip instead of
six: the task's project and the caller's role, the answer (queue_sql.store_answer's statement),
the first try at the next lease (queue_sql.held_or_open_task then lease_task, each its own
statement, so each sees what was committed before it began, as in READ COMMITTED a volatile
function's statements do) and the leased task's screen rows (queue_sql.screen_rows), all in one
transaction. It returns no rows, having written nothing, when the case is not plain (no such
task, not a member, a role not in `p_roles`, another rating mode, or the answer not stored: a
replay or a conflict); the caller then takes the usual path, which tells which. Its next-lease
columns are NULL when the first try found no task (the caller tries again, as lease_next does).
SQLite has no stored functions and keeps the usual path.
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION labeling_answer_and_lease(
    p_user integer, p_task bigint, p_roles text[], p_mode text, p_score integer,
    p_choice text, p_idempotency_key text, p_spent integer, p_now timestamptz,
    p_until timestamptz, p_since timestamptz, p_after bigint)
RETURNS TABLE (r_answer bigint, r_candidate bigint, r_project bigint, r_task bigint,
               r_expires timestamptz, r_position integer, r_slot_candidate bigint,
               r_output jsonb, r_item bigint, r_image text, r_width integer, r_height integer,
               r_today bigint, r_done bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_project bigint;
    v_key text;
    v_mode text;
    v_role text;
    v_candidate bigint;
    v_answer bigint;
    v_task bigint;
    v_expires timestamptz;
BEGIN
    SELECT t.project_id, t.key, p.rating_mode, m.role INTO v_project, v_key, v_mode, v_role
    FROM labeling_task t JOIN projects_project p ON p.id = t.project_id
    LEFT JOIN projects_membership m ON m.project_id = t.project_id AND m.user_id = p_user
    WHERE t.id = p_task;
    IF v_role IS NULL OR NOT (v_role = ANY (p_roles)) OR v_mode IS DISTINCT FROM p_mode THEN
        RETURN;
    END IF;

    -- The answer: store_answer's statement (lease and task locked, room checked, all or
    -- nothing).
    IF p_mode = 'scale' THEN
        v_candidate := split_part(v_key, ',', 1)::bigint;
        WITH lease AS (
            SELECT a.id, a.task_id FROM labeling_assignment a
            JOIN labeling_task t ON t.id = a.task_id
            WHERE a.task_id = p_task AND a.annotator_id = p_user AND a.status = 'leased'
              AND t.answer_count < t.answers_needed
            FOR UPDATE OF a, t
        ), stored AS (
            INSERT INTO labeling_rating
                (task_id, annotator_id, idempotency_key, time_spent_ms, created_at,
                 candidate_id, score)
            SELECT lease.task_id, p_user, p_idempotency_key, p_spent, p_now, v_candidate,
                   p_score
            FROM lease
            ON CONFLICT DO NOTHING
            RETURNING id
        ), counted AS (
            UPDATE labeling_task SET answer_count = answer_count + 1
            WHERE id IN (SELECT task_id FROM lease) AND EXISTS (SELECT 1 FROM stored)
        ), taken AS (
            UPDATE labeling_assignment
            SET status = 'answered', lease_expires_at = NULL, updated_at = p_now
            WHERE id IN (SELECT id FROM lease) AND EXISTS (SELECT 1 FROM stored)
        )
        SELECT stored.id INTO v_answer FROM stored;
    ELSIF p_mode = 'pairwise' THEN
        WITH lease AS (
            SELECT a.id, a.task_id FROM labeling_assignment a
            JOIN labeling_task t ON t.id = a.task_id
            WHERE a.task_id = p_task AND a.annotator_id = p_user AND a.status = 'leased'
              AND t.answer_count < t.answers_needed
            FOR UPDATE OF a, t
        ), stored AS (
            INSERT INTO labeling_comparison
                (task_id, annotator_id, idempotency_key, time_spent_ms, created_at,
                 choice, ranking)
            SELECT lease.task_id, p_user, p_idempotency_key, p_spent, p_now, p_choice,
                   NULL::jsonb
            FROM lease
            ON CONFLICT DO NOTHING
            RETURNING id
        ), counted AS (
            UPDATE labeling_task SET answer_count = answer_count + 1
            WHERE id IN (SELECT task_id FROM lease) AND EXISTS (SELECT 1 FROM stored)
        ), taken AS (
            UPDATE labeling_assignment
            SET status = 'answered', lease_expires_at = NULL, updated_at = p_now
            WHERE id IN (SELECT id FROM lease) AND EXISTS (SELECT 1 FROM stored)
        )
        SELECT stored.id INTO v_answer FROM stored;
    END IF;
    IF v_answer IS NULL THEN
        RETURN;
    END IF;

    -- The first try at the next lease: a live lease of the caller's, else the first open task
    -- (locked, others' locked ones skipped), leased if it still has room, counted afresh.
    SELECT a.task_id, a.lease_expires_at INTO v_task, v_expires
    FROM labeling_assignment a JOIN labeling_task t ON t.id = a.task_id
    WHERE a.annotator_id = p_user AND t.project_id = v_project AND a.status = 'leased'
      AND a.lease_expires_at > p_now AND (p_after IS NULL OR a.task_id <> p_after)
    ORDER BY a.id
    LIMIT 1;
    IF v_task IS NULL THEN
        SELECT t.id INTO v_task
        FROM labeling_task t
        WHERE t.project_id = v_project
          AND t.answer_count < t.answers_needed
          AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                          WHERE a.task_id = t.id AND a.annotator_id = p_user
                            AND (a.status <> 'leased' OR a.lease_expires_at > p_now) OFFSET 0)
          AND t.answer_count + (SELECT COUNT(*) FROM labeling_assignment l
                                WHERE l.task_id = t.id AND l.status = 'leased'
                                  AND l.lease_expires_at > p_now) < t.answers_needed
          AND (p_after IS NULL OR t.id <> p_after)
        ORDER BY t.id
        LIMIT 1
        FOR UPDATE OF t SKIP LOCKED;
        IF v_task IS NOT NULL THEN
            INSERT INTO labeling_assignment
                (task_id, annotator_id, status, lease_expires_at, created_at, updated_at)
            SELECT t.id, p_user, 'leased', p_until, p_now, p_now FROM labeling_task t
            WHERE t.id = v_task
              AND t.answer_count + (SELECT COUNT(*) FROM labeling_assignment l
                                    WHERE l.task_id = t.id AND l.status = 'leased'
                                      AND l.lease_expires_at > p_now
                                      AND l.annotator_id <> p_user)
                  < t.answers_needed
            ON CONFLICT (task_id, annotator_id) DO UPDATE
                SET status = excluded.status, lease_expires_at = excluded.lease_expires_at,
                    updated_at = excluded.updated_at
                WHERE labeling_assignment.status = 'leased'
            RETURNING labeling_assignment.lease_expires_at INTO v_expires;
        END IF;
    END IF;
    IF v_expires IS NULL THEN
        RETURN QUERY SELECT v_answer, v_candidate, v_project, NULL::bigint, NULL::timestamptz,
            NULL::integer, NULL::bigint, NULL::jsonb, NULL::bigint, NULL::text, NULL::integer,
            NULL::integer, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- The leased task's screen (screen_rows), with the caller's answer counts.
    RETURN QUERY
        WITH done AS (
            SELECT COALESCE(SUM(CASE WHEN a.updated_at >= p_since THEN 1 ELSE 0 END), 0)::bigint
                       AS today,
                   COUNT(*)::bigint AS ever
            FROM labeling_assignment a JOIN labeling_task at ON at.id = a.task_id
            WHERE a.annotator_id = p_user AND at.project_id = v_project
              AND a.status = 'answered'
        )
        SELECT v_answer, v_candidate, v_project, v_task, v_expires, s.position::integer,
               s.candidate_id, c.output, i.id, i.image::text, i.width::integer,
               i.height::integer, done.today, done.ever
        FROM labeling_taskcandidate s JOIN projects_candidate c ON c.id = s.candidate_id
        JOIN labeling_task t ON t.id = s.task_id JOIN projects_item i ON i.id = t.item_id
        CROSS JOIN done
        WHERE s.task_id = v_task
        ORDER BY s.position;
END;
$fn$;
"""

DROP = """DROP FUNCTION IF EXISTS labeling_answer_and_lease(
    integer, bigint, text[], text, integer, text, text, integer, timestamptz, timestamptz,
    timestamptz, bigint)"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(FUNCTION), _on_postgresql(DROP))]
