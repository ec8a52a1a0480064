"""Writers that turn export rows (tuples of `EXPORT_FIELDS` values) into JSON objects, JSONL or
CSV.

The streaming writers are generators over a row iterator, so the server holds one chunk at a
time however long the export is. Rows are joined into chunks of `ROWS_PER_CHUNK` to keep the
number of socket writes (and of Python-level yields) small. A JSONL line is filled into a
template with C-level string escapes: about five times faster than `json.dumps` of a dict, which
is what lets one worker stream more than 50,000 rows a second.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from json.encoder import encode_basestring as _quoted

from exports.selectors import EXPORT_FIELDS, OUTPUT_FIELDS

ROWS_PER_CHUNK = 1000
WITH_OUTPUTS = EXPORT_FIELDS + OUTPUT_FIELDS

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Fields that hold a list: JSON arrays in JSON and JSONL, JSON-encoded cells in CSV.
_LIST_FIELDS = ("candidates", "model_versions", "ranking", "outputs")
_LINE = "{" + ",".join(f'"{field}":%s' for field in EXPORT_FIELDS) + "}"
_LINE_WITH_OUTPUTS = "{" + ",".join(f'"{field}":%s' for field in WITH_OUTPUTS) + "}"


def rows_as_dicts(rows: Iterable[tuple], fields: tuple[str, ...] = EXPORT_FIELDS) -> list[dict]:
    """Rows as JSON objects (the paginated `json` format)."""
    return [dict(zip(fields, row, strict=True)) for row in rows]


def _json_or_null(value: object) -> str:
    return "null" if value is None else _encode(value)


def _jsonl_line(row: tuple) -> str:
    (pk, kind, project, task, item, file_name, candidates, versions, score, choice, ranking,
     annotator, spent, created) = row
    return _LINE % (
        pk, _quoted(kind), project, task, item, _quoted(file_name),
        "[" + ",".join(map(str, candidates)) + "]",
        "[" + ",".join(map(_quoted, versions)) + "]",
        _json_or_null(score), _json_or_null(choice), _json_or_null(ranking),
        _quoted(annotator), spent, _quoted(created),
    )


def _jsonl_line_with_outputs(row: tuple) -> str:
    # The same line as _jsonl_line's, spelled out again: a call and a slice per row would cost
    # a tenth of the row. Each output (`exports.outputs.Output`) brings its JSON text.
    (pk, kind, project, task, item, file_name, candidates, versions, score, choice, ranking,
     annotator, spent, created, image, outputs) = row
    return _LINE_WITH_OUTPUTS % (
        pk, _quoted(kind), project, task, item, _quoted(file_name),
        "[" + ",".join(map(str, candidates)) + "]",
        "[" + ",".join(map(_quoted, versions)) + "]",
        _json_or_null(score), _json_or_null(choice), _json_or_null(ranking),
        _quoted(annotator), spent, _quoted(created),
        "null" if image is None else _quoted(image),
        "[" + ",".join([output.json for output in outputs]) + "]",
    )


def jsonl_chunks(rows: Iterable[tuple], fields: tuple[str, ...] = EXPORT_FIELDS
                 ) -> Iterator[bytes]:
    """One JSON object per line (UTF-8), with the keys of `fields` in order (`EXPORT_FIELDS`,
    or `WITH_OUTPUTS`)."""
    line = _jsonl_line if fields == EXPORT_FIELDS else _jsonl_line_with_outputs
    rows = iter(rows)
    while batch := list(islice(rows, ROWS_PER_CHUNK)):
        yield ("\n".join(map(line, batch)) + "\n").encode()


class _Lines(list):
    """A file-like sink for csv.writer that keeps the lines it is given."""

    def write(self, line: str) -> None:
        self.append(line)


def csv_chunks(rows: Iterable[tuple], fields: tuple[str, ...] = EXPORT_FIELDS
               ) -> Iterator[bytes]:
    """A header line with `fields`, then one line per row; lists JSON-encoded, null as an
    empty cell."""
    list_at = [fields.index(field) for field in _LIST_FIELDS if field in fields]

    def cells(row: tuple) -> list:
        values = list(row)
        for at in list_at:
            values[at] = "" if values[at] is None else _encode(values[at])
        return values

    lines = _Lines()
    writer = csv.writer(lines)
    writer.writerow(fields)
    rows = iter(rows)
    while batch := list(islice(rows, ROWS_PER_CHUNK)):
        writer.writerows(map(cells, batch))
        yield "".join(lines).encode()
        lines.clear()
    if lines:  # an export with no rows is still a CSV file with its header
        yield "".join(lines).encode()
