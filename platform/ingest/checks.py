"""Checks of JSON documents by hand, with messages that name the file and the field.

`Checker` walks a parsed document and records problems like
`annotations[12].bbox: expected 4 numbers, got 3` under the file's name; each method returns
the value when it is right and None when it is not, so a parser goes on and reports every bad
record, not only the first.
"""

import json
import math
from typing import Any

from common.json_input import JSONTooDeep, parse_json

# Messages kept per file: enough to fix a systematic mistake, not a megabyte of them.
MAX_MESSAGES_PER_FILE = 50
# How far past the image's edge a box may end: float rounding of x + width, nothing more.
EDGE_TOLERANCE = 1e-6


class Problems:
    """Everything wrong with an import, by file (or argument) name."""

    def __init__(self) -> None:
        self.by_file: dict[str, list[str]] = {}
        self.count = 0

    def add(self, file: str, message: str) -> None:
        self.count += 1
        messages = self.by_file.setdefault(file, [])
        if len(messages) < MAX_MESSAGES_PER_FILE:
            messages.append(message)
        elif len(messages) == MAX_MESSAGES_PER_FILE:
            messages.append("... and more problems in this file.")

    def __bool__(self) -> bool:
        return self.count > 0

    def summary(self) -> str:
        file, messages = next(iter(self.by_file.items()))
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        return f"{file}: {messages[0].rstrip('.')}{more}; nothing was imported."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


class Checker:
    """Typed reads from one JSON document; a wrong value becomes a message under `file`."""

    def __init__(self, problems: Problems, file: str) -> None:
        self.problems = problems
        self.file = file

    def fail(self, path: str, message: str) -> None:
        self.problems.add(self.file, f"{path}: {message}" if path else message)

    def load(self, data: bytes) -> Any:
        # NaN and Infinity parse here so that the field holding one is named; the readers look
        # at fixed depths, so only the parser's own nesting limit applies.
        try:
            return parse_json(data, max_depth=None, constants=True)
        except UnicodeDecodeError:
            self.fail("", "not UTF-8 text.")
        except json.JSONDecodeError as error:
            self.fail("", f"not valid JSON (line {error.lineno} column {error.colno}: "
                          f"{error.msg}).")
        except JSONTooDeep as error:
            self.fail("", f"{error}.")
        return None

    def _expect(self, ok: bool, value: Any, path: str, what: str) -> Any:
        if ok:
            return value
        self.fail(path, f"expected {what}, got {_kind(value)}.")
        return None

    def mapping(self, value: Any, path: str) -> dict | None:
        return self._expect(isinstance(value, dict), value, path, "an object")

    def array(self, value: Any, path: str) -> list | None:
        return self._expect(isinstance(value, list), value, path, "a list")

    def field(self, record: dict, key: str, path: str) -> Any:
        """record[key], or None with a message when it is missing."""
        if key not in record:
            self.fail(path, f"missing field {key!r}.")
            return None
        return record[key]

    def integer(self, value: Any, path: str) -> int | None:
        return self._expect(type(value) is int, value, path, "an integer")

    def number(self, value: Any, path: str) -> float | None:
        return self._expect(_is_number(value), value, path, "a finite number")

    def text(self, value: Any, path: str) -> str | None:
        if isinstance(value, str) and not value.strip():
            self.fail(path, "expected a non-empty string.")
            return None
        return self._expect(isinstance(value, str), value, path, "a string")

    def bbox(self, value: Any, path: str, *, image: tuple[str, int, int] | None = None,
             name: str = "the box") -> list[float] | None:
        """A COCO box [x, y, width, height] in pixels, with width and height > 0; with `image`
        (file name, width, height), inside that image. pycocotools takes boxes as they are
        (no clipping), so a box past the edge would be scored as given: it is refused."""
        if not isinstance(value, list) or len(value) != 4 or not all(map(_is_number, value)):
            got = f"{len(value)} items" if isinstance(value, list) else _kind(value)
            self.fail(path, f"expected 4 numbers [x, y, width, height], got {got}.")
            return None
        x, y, width, height = value
        if width <= 0 or height <= 0:
            self.fail(path, f"width and height must be > 0, got {width} and {height}.")
            return None
        if image is not None:
            file_name, image_width, image_height = image
            if (x < 0 or y < 0 or x + width > image_width + EDGE_TOLERANCE
                    or y + height > image_height + EDGE_TOLERANCE):
                self.fail(path, f"{name} {value} is not inside {file_name} "
                                f"({image_width}x{image_height}).")
                return None
        return [float(v) for v in value]

    def records(self, document: dict, key: str, at: str = "") -> list[tuple[str, dict]]:
        """The objects of document[key] with their paths ("annotations[3]"), where `at` is the
        path of `document` itself; bad ones noted."""
        value = self.field(document, key, at)
        where = f"{at}.{key}" if at else key
        items = self.array(value, where) if value is not None else None
        out = []
        for index, record in enumerate(items or []):
            path = f"{where}[{index}]"
            if self.mapping(record, path) is not None:
                out.append((path, record))
        return out
