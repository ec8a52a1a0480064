"""PostgreSQL: labeling_answer_and_lease() serves the newest open task first when the project
says so (`projects.Project.serve_newest_first`), as queue_sql.held_or_open_task does.

The function is 0003's with one change: its walk of the open tasks reads the project's setting
(with the rating mode, in the statement that already reads the project) and goes in
descending id order when it is on. Each direction is its own statement, so each keeps its own
plan: an index scan of the open tasks in that direction, stopped at the first task that fits.
"""

import importlib

from django.db import migrations

PREVIOUS_FUNCTION = importlib.import_module("labeling.migrations.0003_answer_progress").FUNCTION


def _replaced(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"0003's function no longer reads {old!r} once")
    return text.replace(old, new)


def _function() -> str:
    text = _replaced(PREVIOUS_FUNCTION, "    v_role text;\n",
                     "    v_role text;\n    v_newest boolean;\n")
    text = _replaced(
        text,
        "SELECT t.project_id, t.key, p.rating_mode, m.role INTO v_project, v_key, v_mode, v_role",
        "SELECT t.project_id, t.key, p.rating_mode, m.role, p.serve_newest_first\n"
        "    INTO v_project, v_key, v_mode, v_role, v_newest",
    )
    start = text.index("        SELECT t.id INTO v_task\n")
    end = text.index("FOR UPDATE OF t SKIP LOCKED;\n", start) + len("FOR UPDATE OF t SKIP LOCKED;\n")
    walk = text[start:end]
    ascending = "        ORDER BY t.id\n"
    newest = _replaced(walk, ascending, "        ORDER BY t.id DESC\n")
    indent = lambda block: "".join(f"    {line}\n" for line in block.splitlines())  # noqa: E731
    branches = (f"        IF v_newest THEN\n{indent(newest)}        ELSE\n{indent(walk)}"
                "        END IF;\n")
    return text[:start] + branches + text[end:]


FUNCTION = _function()


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0003_answer_progress"),
        ("projects", "0004_serve_newest_first"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FUNCTION), _on_postgresql(PREVIOUS_FUNCTION)),
    ]
