"""PostgreSQL: an annotator's progress in a project kept in a row (AnswerProgress) by triggers
on the assignments, instead of counted on every answer (a count that grew with every answer the
annotator gave: 0.5 ms of PostgreSQL per answer at 200 answers, 5 ms at 2000).

The triggers fire only when an assignment is or was answered (an answer, an undo, an admin's
edit, a delete), whatever writes it; the rows are filled from the assignments here.
labeling_answer_and_lease() (labeling/sql/answer.sql, loaded again here) reads the row. SQLite
keeps counting.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from labeling.migrations._postgresql import on_postgresql, sql_file_on_postgresql

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
        migrations.RunPython(on_postgresql(TRIGGERS), on_postgresql(DROP_TRIGGERS)),
        # The functions as labeling/sql/answer.sql has them (they read the rows made here).
        # Backwards they stay: no older version of them is kept.
        migrations.RunPython(sql_file_on_postgresql("answer.sql"), migrations.RunPython.noop),
    ]
