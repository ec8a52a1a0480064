-- PostgreSQL: the answer path's stored functions. The labeling migrations load this file
-- (CREATE OR REPLACE, so loading it again changes nothing); SQLite has no stored functions and
-- runs labeling/queue_sql.py's statements instead. A change here comes with a new migration
-- that loads the file again (as 0004 does): databases migrated earlier see it only then.
--
-- labeling_answer_store() stores one answer; every answer stored on PostgreSQL goes through
-- it (labeling.queue_sql.store_answer, and labeling_answer_and_lease() below).
--
-- labeling_answer_and_lease() is the answer endpoint's plain case
-- (labeling.services.answers.answer_at_once) in one round trip instead of six: the task's
-- project and the caller's role, the answer, the first try at the next lease
-- (queue_sql.held_or_open_task then lease_task, each its own statement, so each sees what was
-- committed before it began, as in READ COMMITTED a volatile function's statements do) and the
-- leased task's screen rows (queue_sql.screen_rows), all in one transaction.

-- Store an annotator's answer to a task leased to them, turn the lease into an answer and
-- count it on the task, all or nothing: the new answer's id, or NULL, with nothing written,
-- when the task is not leased to the user, has all its answers already, or the answer meets a
-- unique constraint (its idempotency key was used). `p_mode` 'scale' stores a Rating of
-- `p_candidate` with `p_score`; else a Comparison with `p_choice` or `p_ranking`.
CREATE OR REPLACE FUNCTION labeling_answer_store(
    p_user integer, p_task bigint, p_mode text, p_candidate bigint, p_score integer,
    p_choice text, p_ranking jsonb, p_idempotency_key text, p_spent integer,
    p_now timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_lease bigint;
    v_answer bigint;
BEGIN
    -- The lease and the task locked and the task's room checked on its latest version: two
    -- requests of one annotator take the lease once, and a lease that ran out cannot push a
    -- task past its overlap.
    SELECT a.id INTO v_lease
    FROM labeling_assignment a JOIN labeling_task t ON t.id = a.task_id
    WHERE a.task_id = p_task AND a.annotator_id = p_user AND a.status = 'leased'
      AND t.answer_count < t.answers_needed
    FOR UPDATE OF a, t;
    IF v_lease IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_mode = 'scale' THEN
        INSERT INTO labeling_rating
            (task_id, annotator_id, idempotency_key, time_spent_ms, created_at, candidate_id,
             score)
        VALUES (p_task, p_user, p_idempotency_key, p_spent, p_now, p_candidate, p_score)
        ON CONFLICT DO NOTHING
        RETURNING id INTO v_answer;
    ELSE
        INSERT INTO labeling_comparison
            (task_id, annotator_id, idempotency_key, time_spent_ms, created_at, choice, ranking)
        VALUES (p_task, p_user, p_idempotency_key, p_spent, p_now, p_choice, p_ranking)
        ON CONFLICT DO NOTHING
        RETURNING id INTO v_answer;
    END IF;
    IF v_answer IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE labeling_task SET answer_count = answer_count + 1 WHERE id = p_task;
    UPDATE labeling_assignment
    SET status = 'answered', lease_expires_at = NULL, updated_at = p_now
    WHERE id = v_lease;
    RETURN v_answer;
END;
$fn$;

-- A scale (`p_score`) or pairwise (`p_choice`) answer, the first try at the caller's next
-- lease and that task's screen rows. It returns no rows, having written nothing, when the case
-- is not plain (no such task, not a member, a role not in `p_roles`, another rating mode, or
-- the answer not stored: a replay or a conflict); the caller then takes the usual path, which
-- tells which. Its next-lease columns are NULL when the first try found no task (the caller
-- tries again, as lease_next does).
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
    v_newest boolean;
    v_candidate bigint;
    v_answer bigint;
    v_task bigint;
    v_expires timestamptz;
BEGIN
    SELECT t.project_id, t.key, p.rating_mode, m.role, p.serve_newest_first
    INTO v_project, v_key, v_mode, v_role, v_newest
    FROM labeling_task t JOIN projects_project p ON p.id = t.project_id
    LEFT JOIN projects_membership m ON m.project_id = t.project_id AND m.user_id = p_user
    WHERE t.id = p_task;
    IF v_role IS NULL OR NOT (v_role = ANY (p_roles)) OR v_mode IS DISTINCT FROM p_mode
       OR p_mode NOT IN ('scale', 'pairwise') THEN
        RETURN;
    END IF;

    IF p_mode = 'scale' THEN
        -- A scale task shows one candidate: its key is that candidate's id.
        v_candidate := split_part(v_key, ',', 1)::bigint;
    END IF;
    v_answer := labeling_answer_store(p_user, p_task, p_mode, v_candidate, p_score, p_choice,
                                      NULL, p_idempotency_key, p_spent, p_now);
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
        -- Newest first when the project says so (the next round before older ones); each
        -- direction its own statement, so each keeps its own plan.
        IF v_newest THEN
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
            ORDER BY t.id DESC
            LIMIT 1
            FOR UPDATE OF t SKIP LOCKED;
        ELSE
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
        END IF;
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

    -- The leased task's screen (screen_rows), with the caller's progress row (AnswerProgress,
    -- kept by the triggers of migration labeling 0003).
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
