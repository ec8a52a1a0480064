"""What an answer may be, checked by labeling.answer_input, the one place every entry point asks:
the answer against its task's rating mode, and POST answer's body."""

import pytest
from rest_framework.exceptions import ValidationError

from common.errors import ApplicationError
from labeling.answer_input import ParsedAnswer, answer_body_parse, answer_parse, mode_named_by
from projects.models import RatingMode

SHOWN = [11, 12, 13]


@pytest.mark.parametrize(
    ("mode", "answer", "parsed"),
    [
        (RatingMode.SCALE, {"score": 1}, ParsedAnswer(rating_mode="scale", score=1)),
        (RatingMode.SCALE, {"score": 5}, ParsedAnswer(rating_mode="scale", score=5)),
        (RatingMode.PAIRWISE, {"choice": "tie"},
         ParsedAnswer(rating_mode="pairwise", choice="tie")),
        (RatingMode.RANKING, {"ranking": [13, 11, 12]},
         ParsedAnswer(rating_mode="ranking", ranking=[13, 11, 12])),
    ],
)
def test_a_valid_answer_is_parsed_for_its_mode(mode, answer, parsed):
    assert answer_parse(answer, rating_mode=mode, shown=SHOWN) == parsed


@pytest.mark.parametrize(
    ("mode", "answer", "field"),
    [
        (RatingMode.SCALE, {"score": 6}, "answer.score"),
        (RatingMode.SCALE, {"score": 2.0}, "answer.score"),
        (RatingMode.SCALE, {"score": False}, "answer.score"),
        (RatingMode.SCALE, {"score": 3, "choice": "A"}, "answer.score"),
        (RatingMode.SCALE, {}, "answer.score"),
        (RatingMode.PAIRWISE, {"choice": "a"}, "answer.choice"),
        (RatingMode.PAIRWISE, {"choice": ["A"]}, "answer.choice"),
        (RatingMode.PAIRWISE, {"ranking": [11, 12]}, "answer.choice"),
        (RatingMode.RANKING, {"ranking": [11, 12]}, "answer.ranking"),
        (RatingMode.RANKING, {"ranking": [11, 11, 13]}, "answer.ranking"),
        (RatingMode.RANKING, {"ranking": [11, 12, True]}, "answer.ranking"),
        (RatingMode.RANKING, {"ranking": "11,12,13"}, "answer.ranking"),
        (RatingMode.RANKING, {"score": 3}, "answer.ranking"),
    ],
)
def test_a_wrong_answer_names_its_field(mode, answer, field):
    with pytest.raises(ApplicationError) as refused:
        answer_parse(answer, rating_mode=mode, shown=SHOWN)
    assert refused.value.status_code == 400
    assert list(refused.value.errors) == [field]


def test_the_answer_field_names_its_mode():
    assert mode_named_by({"score": 9}) == RatingMode.SCALE
    assert mode_named_by({"choice": "A"}) == RatingMode.PAIRWISE
    assert mode_named_by({"ranking": []}) == RatingMode.RANKING
    assert mode_named_by({"score": 3, "choice": "A"}) is None
    assert mode_named_by({"stars": 3}) is None


def test_the_plain_body_and_the_serializers_body_read_alike():
    plain = answer_body_parse({"answer": {"score": 3}, "idempotency_key": "k1"})
    assert (plain.answer, plain.idempotency_key, plain.time_spent_ms) == ({"score": 3}, "k1", 0)
    # Not plain: AnswerInput coerces as DRF does.
    coerced = answer_body_parse({"answer": {"score": 3}, "idempotency_key": " k1 ",
                                 "time_spent_ms": "1500"})
    assert (coerced.idempotency_key, coerced.time_spent_ms) == ("k1", 1500)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answer": {"score": 3}}, "idempotency_key"),
        ({"answer": {"score": 3}, "idempotency_key": "k" * 65}, "idempotency_key"),
        ({"answer": "3", "idempotency_key": "k"}, "answer"),
        ({"answer": {"score": 3}, "idempotency_key": "k", "time_spent_ms": -1},
         "time_spent_ms"),
        ({"answer": {"score": 3}, "idempotency_key": "k", "time_spent_ms": 86_400_001},
         "time_spent_ms"),
    ],
)
def test_a_wrong_body_names_its_field(body, field):
    with pytest.raises(ValidationError) as refused:
        answer_body_parse(body)
    assert field in refused.value.detail
