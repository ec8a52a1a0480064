"""Whole numbers from outside, kept to the range of the database columns they are compared with.

Every table's id is a bigint (DEFAULT_AUTO_FIELD) and counts and steps are integer columns; a
number past a column's range makes the database (or SQLite's driver) raise instead of finding
nothing. So numbers are bounded where they come in:

- `<id:name>` in a URL (`IdConverter`, registered by common.apps) matches only numbers a bigint
  holds: a larger one matches no route and is a 404, like any missing row;
- `IdField` is a body's or a query's id, 1 to BIGINT_MAX (else a 400 naming the field);
- `query_int` parses a bounded integer query parameter for the plain views (common.plain_api),
  with the messages DRF's IntegerField gives the others.
"""

from django.http import QueryDict
from django.urls import register_converter
from rest_framework import serializers

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
_BIGINT_DIGITS = len(str(BIGINT_MAX))


class IdConverter:
    """A path segment that is a row id: digits, at most BIGINT_MAX."""

    regex = f"[0-9]{{1,{_BIGINT_DIGITS}}}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            raise ValueError(f"{value} is past the bigint range")  # Django: no match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def register_id_converter() -> None:
    register_converter(IdConverter, "id")


class IdField(serializers.IntegerField):
    """A row's id in a body or a query: 1 to BIGINT_MAX."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=BIGINT_MAX, **kwargs)


def query_int(query: QueryDict, name: str, *, min_value: int,
              max_value: int = BIGINT_MAX) -> int | None:
    """`?name=` as a whole number from min_value to max_value; None when absent, else
    ValidationError naming the parameter (400 in the API's error shape)."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= _BIGINT_DIGITS:
        number = int(raw)
        if min_value <= number <= max_value:
            return number
    field = serializers.IntegerField(min_value=min_value, max_value=max_value)
    try:
        return field.run_validation(raw)
    except serializers.ValidationError as error:
        raise serializers.ValidationError({name: error.detail}) from None
