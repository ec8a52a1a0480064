"""An answer as an annotator sends it, parsed and checked here and nowhere else.

`answer_body_parse` reads POST answer's body (docs/api.md): the answer, its idempotency key and
the time spent. `answer_parse` reads the answer itself against its task: a 1-5 score (scale),
"A", "B" or "tie" (pairwise), or the shown candidates' ids, best first (ranking). Both raise
errors that name the field, which the API returns as 400s.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from common.errors import ApplicationError
from common.plain_api import validated
from labeling.models import Choice
from projects.models import RatingMode

MAX_IDEMPOTENCY_KEY_LENGTH = 64
MAX_TIME_SPENT_MS = 86_400_000

# Each rating mode's one answer field, and what to send when the answer lacks it.
ANSWER_FIELDS: dict[str, tuple[str, str]] = {
    RatingMode.SCALE: ("score", 'This project rates on a 1-5 scale: send {"score": 1..5}.'),
    RatingMode.PAIRWISE: (
        "choice", 'This project compares two outputs: send {"choice": "A" | "B" | "tie"}.'
    ),
    RatingMode.RANKING: (
        "ranking", 'This project ranks outputs: send {"ranking": [candidate ids, best first]}.'
    ),
}
_MODE_OF_FIELD = {name: mode for mode, (name, _) in ANSWER_FIELDS.items()}


# POST answer's body, as the OpenAPI schema shows it (no docstring: the schema would show it).
class AnswerInput(serializers.Serializer):
    answer = serializers.DictField(
        help_text='{"score": 1..5}, {"choice": "A" | "B" | "tie"} or {"ranking": [ids]}.'
    )
    idempotency_key = serializers.CharField(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)
    time_spent_ms = serializers.IntegerField(min_value=0, max_value=MAX_TIME_SPENT_MS,
                                             default=0)


@dataclass(frozen=True)
class AnswerBody:
    answer: dict
    idempotency_key: str
    time_spent_ms: int


def _plain_key(key: object) -> bool:
    """A key AnswerInput takes as it is: printable ASCII, no surrounding space, not too long."""
    return (
        type(key) is str and 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        and key.isascii() and key.isprintable() and key == key.strip()
    )


def answer_body_parse(data: Any) -> AnswerBody:
    """POST answer's body, checked as AnswerInput says: the body, or ValidationError.

    The plain body (an object, a plain key, a whole number of milliseconds) is taken without
    the serializer, at a fraction of its CPU; anything else goes through AnswerInput itself, so
    its coercions and its errors are DRF's.
    """
    if type(data) is dict:
        answer = data.get("answer")
        key = data.get("idempotency_key")
        spent = data.get("time_spent_ms", 0)
        if (
            type(answer) is dict and _plain_key(key)
            and type(spent) is int and 0 <= spent <= MAX_TIME_SPENT_MS
        ):
            return AnswerBody(answer=answer, idempotency_key=key, time_spent_ms=spent)
    return AnswerBody(**validated(AnswerInput, data))


@dataclass(frozen=True)
class ParsedAnswer:
    """A valid answer: `score` (scale), `choice` (pairwise) or `ranking` (ranking, candidate
    ids best first); the other two None."""

    rating_mode: str
    score: int | None = None
    choice: str | None = None
    ranking: list[int] | None = None


def mode_named_by(answer: dict) -> str | None:
    """The rating mode whose field is the answer's only field (`{"score": ...}`: scale)."""
    if len(answer) != 1:
        return None
    return _MODE_OF_FIELD.get(next(iter(answer)))


def answer_parse(answer: dict, *, rating_mode: str, shown: Sequence[int] | None) -> ParsedAnswer:
    """The answer to a task of `rating_mode`, or ApplicationError naming the field that is
    wrong (`answer.score`, `answer.choice` or `answer.ranking`).

    `shown`: the task's candidate ids in ascending order (its key), which a ranking must list
    each exactly once; a scale or pairwise answer does not need them (None).
    """
    name, help_text = ANSWER_FIELDS[RatingMode(rating_mode)]
    if set(answer) != {name}:
        raise ApplicationError(help_text, field=f"answer.{name}")
    value = answer[name]
    if rating_mode == RatingMode.SCALE:
        # bool is an int in Python; true is not a score.
        if type(value) is not int or not 1 <= value <= 5:
            raise ApplicationError(
                f"A score is a whole number from 1 to 5, got {value!r}.", field="answer.score"
            )
        return ParsedAnswer(rating_mode=rating_mode, score=value)
    if rating_mode == RatingMode.PAIRWISE:
        if type(value) is not str or value not in Choice.values:
            raise ApplicationError(
                f'A choice is "A", "B" or "tie", got {value!r}.', field="answer.choice"
            )
        return ParsedAnswer(rating_mode=rating_mode, choice=value)
    if shown is None:
        raise ValueError("a ranking is checked against the task's shown candidates")
    if (
        not isinstance(value, list)
        or any(type(v) is not int for v in value)
        or sorted(value) != list(shown)
    ):
        raise ApplicationError(
            f"A ranking lists each shown candidate id exactly once, best first: {list(shown)} "
            f"in some order, got {value!r}.",
            field="answer.ranking",
        )
    return ParsedAnswer(rating_mode=rating_mode, ranking=value)
