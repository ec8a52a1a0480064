"""Writers that turn export rows into bytes: JSONL and CSV, streamed in chunks.

Each writer is a generator over a row iterator, so the server holds one chunk at a time however
long the export is. Rows are joined into chunks of `ROWS_PER_CHUNK` to keep the number of
socket writes (and of Python-level yields) small.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import islice

from exports.selectors import EXPORT_FIELDS

ROWS_PER_CHUNK = 1000

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# CSV cells that hold a list (candidate ids, model version names, a ranking) are JSON-encoded.
_LIST_FIELDS = frozenset({"candidates", "model_versions", "ranking"})


def jsonl_chunks(rows: Iterable[dict]) -> Iterator[bytes]:
    """One JSON object per line (UTF-8)."""
    rows = iter(rows)
    while batch := list(islice(rows, ROWS_PER_CHUNK)):
        yield ("\n".join(map(_encode, batch)) + "\n").encode()


class _Lines(list):
    """A file-like sink for csv.writer that keeps the lines it is given."""

    def write(self, line: str) -> None:
        self.append(line)


def _csv_cells(row: dict) -> list:
    return [
        ("" if value is None else _encode(value)) if field in _LIST_FIELDS else value
        for field, value in zip(EXPORT_FIELDS, (row[f] for f in EXPORT_FIELDS), strict=True)
    ]


def csv_chunks(rows: Iterable[dict]) -> Iterator[bytes]:
    """A header line with `EXPORT_FIELDS`, then one line per row; empty cell for null."""
    lines = _Lines()
    writer = csv.writer(lines)
    writer.writerow(EXPORT_FIELDS)
    rows = iter(rows)
    while batch := list(islice(rows, ROWS_PER_CHUNK)):
        writer.writerows(map(_csv_cells, batch))
        yield "".join(lines).encode()
        lines.clear()
    if lines:  # an export with no rows is still a CSV file with its header
        yield "".join(lines).encode()
