"""PostgreSQL: the answer path's stored functions, labeling_answer_store() and
labeling_answer_and_lease(), from labeling/sql/answer.sql (which says what they do).

labeling_answer_and_lease() reads the progress rows that 0003 adds; PL/pgSQL resolves the
tables a function names when it runs, not when it is created, and 0003 loads the file again.
"""

from django.db import migrations

from labeling.migrations._postgresql import on_postgresql, sql_file_on_postgresql

DROP = """
DROP FUNCTION IF EXISTS labeling_answer_and_lease(
    integer, bigint, text[], text, integer, text, text, integer, timestamptz, timestamptz,
    timestamptz, bigint);
DROP FUNCTION IF EXISTS labeling_answer_store(
    integer, bigint, text, bigint, integer, text, jsonb, text, integer, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [
        migrations.RunPython(sql_file_on_postgresql("answer.sql"), on_postgresql(DROP)),
    ]
