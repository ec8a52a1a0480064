"""What the labeling migrations share: SQL run on PostgreSQL only (SQLite has no stored
functions or triggers and skips it), given as text or as a file of labeling/sql/.

A file is read when its migration runs, so every migration that loads it creates what the file
says now; its statements are CREATE OR REPLACE, so loading it again changes nothing.
"""

from collections.abc import Callable
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def on_postgresql(sql: str) -> Callable:
    """A RunPython function that runs `sql` on PostgreSQL and does nothing elsewhere."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


def sql_file_on_postgresql(name: str) -> Callable:
    """A RunPython function that runs the file labeling/sql/<name> on PostgreSQL."""

    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute((SQL_DIR / name).read_text())

    return run
