"""JSON from outside: request bodies and imported files, parsed by one function.

Python's parser recurses once per nesting level, so a document nested deeper than the
interpreter's recursion limit raises RecursionError (a 500 if nothing catches it), and one just
under it parses, then breaks the next recursive code that walks it. `parse_json` turns the first
into ValueError and, for request bodies, refuses anything nested past `MAX_JSON_DEPTH` levels,
far deeper than any body the API takes. `JSONParser` is DRF's parser on top of it, also held to
DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads JSON bodies from the stream, past Django's check).
"""

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 64


class JSONTooDeep(ValueError):
    """A document nested more deeply than the parser or its reader allows."""


def _refuse_constant(name: str) -> None:
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels (walked without recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def parse_json(data: str | bytes, *, max_depth: int | None = MAX_JSON_DEPTH,
               constants: bool = False) -> Any:
    """The document in `data`; ValueError when it is not JSON (json.JSONDecodeError), not text
    (UnicodeDecodeError) or nested too deeply (JSONTooDeep). NaN and Infinity are refused unless
    `constants`; `max_depth=None` leaves only the parser's own limit (for large files whose
    readers look at fixed depths)."""
    try:
        value = json.loads(data, parse_constant=None if constants else _refuse_constant)
    except RecursionError:
        raise JSONTooDeep("JSON nested too deeply for the parser") from None
    if max_depth is not None and _deeper_than(value, max_depth):
        raise JSONTooDeep(f"JSON nested more than {max_depth} levels deep")
    return value


def body_too_big() -> RequestDataTooBig:
    return RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser through `parse_json`, with the body size limit Django's forms have."""

    def parse(self, stream, media_type: str | None = None,
              parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise body_too_big()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return parse_json(data.decode(encoding), constants=not self.strict)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
