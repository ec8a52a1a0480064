"""PostgreSQL: labeling/sql/answer.sql loaded again, now that projects say whether the newest
open task is served first (`projects.Project.serve_newest_first`), which
labeling_answer_and_lease() reads. On a fresh database the earlier migrations have loaded this
version already and this changes nothing.
"""

from django.db import migrations

from labeling.migrations._postgresql import sql_file_on_postgresql


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_answer_store_function"),
        ("projects", "0004_serve_newest_first"),
    ]

    operations = [
        migrations.RunPython(sql_file_on_postgresql("answer.sql"), migrations.RunPython.noop),
    ]
