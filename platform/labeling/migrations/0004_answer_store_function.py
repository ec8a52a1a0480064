"""PostgreSQL: labeling/sql/answer.sql loaded again, for databases migrated before it had
labeling_answer_store() (which labeling_answer_and_lease() now calls to store its answer).
On a fresh database 0002 and 0003 have loaded it already and this changes nothing.

Backwards it leaves the functions as they are: no older version of them is kept.
"""

from django.db import migrations

from labeling.migrations._postgresql import sql_file_on_postgresql


class Migration(migrations.Migration):
    dependencies = [("labeling", "0003_answer_progress")]

    operations = [
        migrations.RunPython(sql_file_on_postgresql("answer.sql"), migrations.RunPython.noop),
    ]
