"""CIDEr-D reward: hand-made cases, and equality with pycocoevalcap's CiderScorer on one corpus."""

import random

import numpy as np
import pytest
from pycocoevalcap.cider.cider_scorer import CiderScorer

from trainer.data.shapes import ShapesConfig, generate_split
from trainer.eval.captioning_metrics import caption_metrics
from trainer.rewards.captioning import CiderD, tokenize


@pytest.fixture(scope="module")
def references() -> list[list[str]]:
    """Reference captions of 24 small Synthetic Shapes scenes (five paraphrases each)."""
    config = ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)
    return [list(scene.captions) for scene in generate_split("train", 24, config)]


def _candidates(references: list[list[str]], seed: int) -> list[str]:
    """One candidate per image, of every kind: a reference, a neighbour's, shuffled, cut, empty."""
    rng = random.Random(seed)
    out = []
    for index, refs in enumerate(references):
        words = rng.choice(refs).split()
        kinds = [
            refs[0],
            references[(index + 1) % len(references)][1],
            " ".join(rng.sample(words, len(words))),
            " ".join(words[: max(1, len(words) // 2)]),
            " ".join(words + words[:3]),
            "",
            "zebra " + refs[2].upper() + "!",
        ]
        out.append(rng.choice(kinds))
    return out


def _pycocoevalcap(candidates: list[str], references: list[list[str]]) -> np.ndarray:
    """pycocoevalcap's per-image CIDEr-D; its idf comes from the references of the set scored."""
    scorer = CiderScorer(n=4, sigma=6.0)
    for candidate, refs in zip(candidates, references, strict=True):
        scorer += (tokenize(candidate), [tokenize(r) for r in refs])
    _, scores = scorer.compute_score()
    return scores


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("  Two shapes: a Red circle,  and a BLUE square. ") == (
        "two shapes a red circle and a blue square"
    )


def test_reference_caption_beats_partial_and_unrelated_captions(references):
    scorer = CiderD.from_references(references)
    refs = references[0]
    half = " ".join(refs[0].split()[:3])
    rewards = scorer.cider_d([refs[0], half, "a zebra eating grass"], [refs] * 3)
    assert rewards[0] > rewards[1] > 0
    # No n-gram in common with the references: exactly zero.
    assert rewards[2] == 0


def test_empty_caption_scores_zero(references):
    scorer = CiderD.from_references(references)
    assert scorer.cider_d(["", "  ,  "], [references[0], references[1]]).tolist() == [0.0, 0.0]


def test_repeating_words_does_not_pay(references):
    # CIDEr-D clips each n-gram's weight at the reference's, and penalises the extra length.
    scorer = CiderD.from_references(references)
    caption = references[3][0]
    rewards = scorer.cider_d([caption, caption + " " + caption], [references[3]] * 2)
    assert rewards[1] < rewards[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pycocoevalcap_on_the_same_corpus(references, seed):
    candidates = _candidates(references, seed)
    ours = CiderD.from_references(references).cider_d(candidates, references).numpy()
    theirs = _pycocoevalcap(candidates, references)
    assert np.abs(ours - theirs).max() < 1e-6
    assert theirs.max() > 1.0  # the fixture has good candidates, not only zeros


def test_samples_per_image_score_as_if_each_were_scored_alone(references):
    """REINFORCE scores N samples per image in one call; each equals pycocoevalcap's figure."""
    samples = [_candidates(references, seed) for seed in range(4)]  # 4 samples per image
    flat = [sample[i] for i in range(len(references)) for sample in samples]
    repeated = [refs for refs in references for _ in samples]
    ours = CiderD.from_references(references).cider_d(flat, repeated).numpy().reshape(-1, 4)
    for j, sample in enumerate(samples):
        assert np.abs(ours[:, j] - _pycocoevalcap(sample, references)).max() < 1e-6


def test_idf_comes_from_the_given_corpus_not_the_batch(references):
    scorer = CiderD.from_references(references)
    alone = scorer.cider_d([references[5][0]], [references[5]])
    in_batch = scorer.cider_d([references[5][0], references[6][1]], references[5:7])
    assert alone[0] == in_batch[0]


def test_caption_metrics_cider_is_the_mean_reward_with_the_evaluated_set_as_corpus(references):
    candidates = _candidates(references, 7)
    metrics = caption_metrics(candidates, references)
    rewards = CiderD.from_references(references).cider_d(candidates, references)
    assert metrics["cider"] == pytest.approx(float(rewards.double().mean()), abs=1e-6)
    assert 0 <= metrics["bleu4"] <= 1


def test_caption_metrics_rank_references_above_shuffled_words(references):
    rng = random.Random(0)
    good = [refs[0] for refs in references]
    shuffled = [" ".join(rng.sample(c.split(), len(c.split()))) for c in good]
    # Score each image against its other references, so "good" is not trivially perfect.
    others = [refs[1:] for refs in references]
    good_metrics = caption_metrics(good, others)
    bad_metrics = caption_metrics(shuffled, others)
    assert good_metrics["cider"] > bad_metrics["cider"]
    assert good_metrics["bleu4"] > bad_metrics["bleu4"]


def test_bad_inputs_are_rejected_with_a_message(references):
    scorer = CiderD.from_references(references)
    with pytest.raises(ValueError, match="one reference list per candidate"):
        scorer.cider_d(["a caption"], references[:2])
    with pytest.raises(ValueError, match=r"references\[0\]"):
        scorer.cider_d(["a caption"], [[]])
    with pytest.raises(ValueError, match="at least one"):
        CiderD.from_references([])
    with pytest.raises(ValueError, match=r"references\[1\]"):
        caption_metrics(["a", "b"], [["a"], "b"])


def test_caption_metrics_take_empty_captions(references):
    # A policy can sample the end token first; the evaluation must still give numbers.
    metrics = caption_metrics(["", "!!"] + [refs[0] for refs in references[2:]], references)
    assert metrics["cider"] > 0 and 0 < metrics["bleu4"] <= 1
