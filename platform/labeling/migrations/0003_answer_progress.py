"""PostgreSQL: an annotator's progress in a project kept in a row (AnswerProgress) by triggers
on the assignments, instead of counted on every answer (a count that grew with every answer the
annotator gave: 0.5 ms of PostgreSQL per answer at 200 answers, 5 ms at 2000).

The triggers fire only when an assignment is or was answered (an answer, an undo, an admin's
edit, a delete), whatever writes it; the rows are filled from the assignments here.
labeling_answer_and_lease() (0002) reads the row. SQLite keeps counting.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PREVIOUS_FUNCTION = importlib.import_module("labeling.migrations.0002_answer_function").FUNCTION

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

    -- The leased task's screen (screen_rows), with the caller's progress row.
    RETURN QUERY
        WITH done AS (
            SELECT COALESCE(MAX(CASE WHEN p.day = (p_since AT TIME ZONE 'UTC')::date
                                     THEN p.done_day END), 0)::bigint AS today,
                   COALESCE(MAX(p.done), 0)::bigint AS ever
            FROM labeling_answerprogress p
            WHERE p.annotator_id = p_user AND p.project_id = v_project
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

TRIGGERS = r"""
CREATE OR REPLACE FUNCTION labeling_progress_count() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_project bigint;
    v_day date;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'answered' THEN
        SELECT project_id INTO v_project FROM labeling_task WHERE id = OLD.task_id;
        v_day := (OLD.updated_at AT TIME ZONE 'UTC')::date;
        UPDATE labeling_answerprogress
        SET done = done - 1, done_day = done_day - CASE WHEN day = v_day THEN 1 ELSE 0 END
        WHERE annotator_id = OLD.annotator_id AND project_id = v_project;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'answered' THEN
        SELECT project_id INTO v_project FROM labeling_task WHERE id = NEW.task_id;
        v_day := (NEW.updated_at AT TIME ZONE 'UTC')::date;
        INSERT INTO labeling_answerprogress AS p (annotator_id, project_id, done, day, done_day)
        VALUES (NEW.annotator_id, v_project, 1, v_day, 1)
        ON CONFLICT (annotator_id, project_id) DO UPDATE SET
            done = p.done + 1,
            done_day = CASE WHEN p.day = v_day THEN p.done_day + 1
                            WHEN p.day > v_day THEN p.done_day ELSE 1 END,
            day = GREATEST(p.day, v_day);
    END IF;
    RETURN NULL;
END;
$fn$;
CREATE TRIGGER labeling_progress_insert AFTER INSERT ON labeling_assignment
    FOR EACH ROW WHEN (NEW.status = 'answered') EXECUTE FUNCTION labeling_progress_count();
CREATE TRIGGER labeling_progress_update AFTER UPDATE ON labeling_assignment
    FOR EACH ROW WHEN (OLD.status = 'answered' OR NEW.status = 'answered')
    EXECUTE FUNCTION labeling_progress_count();
CREATE TRIGGER labeling_progress_delete AFTER DELETE ON labeling_assignment
    FOR EACH ROW WHEN (OLD.status = 'answered') EXECUTE FUNCTION labeling_progress_count();
INSERT INTO labeling_answerprogress (annotator_id, project_id, done, day, done_day)
SELECT a.annotator_id, t.project_id, COUNT(*), (now() AT TIME ZONE 'UTC')::date,
       COUNT(*) FILTER (WHERE (a.updated_at AT TIME ZONE 'UTC')::date
                              = (now() AT TIME ZONE 'UTC')::date)
FROM labeling_assignment a JOIN labeling_task t ON t.id = a.task_id
WHERE a.status = 'answered'
GROUP BY a.annotator_id, t.project_id;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS labeling_progress_insert ON labeling_assignment;
DROP TRIGGER IF EXISTS labeling_progress_update ON labeling_assignment;
DROP TRIGGER IF EXISTS labeling_progress_delete ON labeling_assignment;
DROP FUNCTION IF EXISTS labeling_progress_count();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0002_answer_function'),
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AnswerProgress',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('done', models.IntegerField(default=0)),
                ('day', models.DateField(null=True)),
                ('done_day', models.IntegerField(default=0)),
                ('annotator', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.project')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('annotator', 'project'), name='progress_once')],
            },
        ),
        # Back to 0002's function (it counts) before the table goes.
        migrations.RunPython(migrations.RunPython.noop, _on_postgresql(PREVIOUS_FUNCTION)),
        migrations.RunPython(_on_postgresql(TRIGGERS), _on_postgresql(DROP_TRIGGERS)),
        migrations.RunPython(_on_postgresql(FUNCTION), migrations.RunPython.noop),
    ]
