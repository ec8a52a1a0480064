"""Captioning reward: CIDEr-D of each sampled caption against its image's reference captions.

CIDEr-D (Vedantam et al. 2015) is the reward of the paper and of SCST. This is the definition of
pycocoevalcap's `CiderScorer` (the coco-caption code that reports "CIDEr"; it already carries
the D-variant's changes), so the reward agrees with the library to float rounding:
- n-grams of orders 1..4 are weighted by tf-idf, `tf * (log(N) - log(max(1, df)))`, where `df`
  counts the reference *lists* (images) of the idf corpus that hold the n-gram and `N` is their
  number;
- per order, the similarity to one reference is `sum_g min(c_g, r_g) * r_g / (|c| |r|)` (the
  candidate's weights are clipped at the reference's, so repeating a word does not pay), times
  the Gaussian length penalty `exp(-delta^2 / (2 sigma^2))`, sigma = 6;
- the score is the mean over orders, averaged over the references, times 10.
`delta` is the difference in *bigram* counts (`len - 1` words): pycocoevalcap's length counts the
n-grams of its order index 1; it differs from the word count only for an empty caption.

pycocoevalcap takes its idf from the references of the set it evaluates. A reward needs a fixed
corpus instead (a batch is too small to give meaningful idf), so `CiderD.from_references` builds
the idf from a reference corpus, e.g. the training captions, once. Scoring pycocoevalcap on that
same corpus (every image of it with one candidate) gives the same numbers, which the tests check.

The evaluation, `trainer.eval.captioning_metrics.caption_metrics`, runs pycocoevalcap itself;
both use `tokenize` (lowercase, punctuation removed) instead of the Java PTB tokenizer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MAX_ORDER = 4  # CIDEr-D sums 1- to 4-grams
SIGMA = 6.0  # std of CIDEr-D's Gaussian length penalty, in words
_PUNCTUATION = re.compile(r"[^\w\s]")

NGram = tuple[str, ...]


def tokenize(caption: str) -> str:
    """Lowercase words joined by single spaces, punctuation dropped: "A red, big." -> "a red big".

    Punctuation becomes a space, so "left-of" gives two words.
    """
    if not isinstance(caption, str):
        raise TypeError(f"a caption must be a string, got {type(caption).__name__}")
    return " ".join(_PUNCTUATION.sub(" ", caption.lower()).split())


def _ngram_counts(words: list[str], max_order: int) -> Counter[NGram]:
    return Counter(
        tuple(words[i : i + k]) for k in range(1, max_order + 1) for i in range(len(words) - k + 1)
    )


@dataclass(frozen=True)
class _Vectors:
    """tf-idf vectors of captions: flat (caption, n-gram) entries plus per-caption figures."""

    caption: Tensor  # (E,) int64 caption of each entry
    ngram: Tensor  # (E,) int64 index of the entry's n-gram in the batch vocabulary
    order: Tensor  # (E,) int64 n-gram order - 1
    weight: Tensor  # (E,) float64 tf-idf weight
    norm: Tensor  # (S, max_order) float64 L2 norm of each caption's vector per order
    length: Tensor  # (S,) float64 bigram count (pycocoevalcap's length)


@dataclass(frozen=True, eq=False)
class CiderD:
    """CIDEr-D with document frequencies taken from a fixed reference corpus.

    Build it once with `from_references(corpus)`; then `scorer.cider_d` is the reward function.
    """

    document_frequency: dict[NGram, int]  # number of corpus images whose references hold the n-gram
    log_corpus_size: float  # log of the number of images in the corpus
    max_order: int = MAX_ORDER
    sigma: float = SIGMA

    @classmethod
    def from_references(
        cls,
        corpus: Sequence[Sequence[str]],
        *,
        max_order: int = MAX_ORDER,
        sigma: float = SIGMA,
    ) -> CiderD:
        """idf from `corpus`: a list of reference captions per image (raw text, tokenised here)."""
        if len(corpus) == 0:
            raise ValueError("the idf corpus needs at least one image's references")
        document_frequency: Counter[NGram] = Counter()
        for index, references in enumerate(corpus):
            if isinstance(references, str) or len(references) == 0:
                raise ValueError(f"corpus[{index}] must be a non-empty list of captions")
            ngrams: set[NGram] = set()
            for reference in references:
                ngrams.update(_ngram_counts(tokenize(reference).split(), max_order))
            document_frequency.update(ngrams)
        return cls(dict(document_frequency), math.log(len(corpus)), max_order, sigma)

    def cider_d(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> Tensor:
        """CIDEr-D of `candidates[i]` against `references[i]`: list of B, list of B lists -> (B,).

        B is usually images x samples: repeat an image's reference list for each of its samples
        (equal lists are vectorised once). Captions are raw text, tokenised here. Returns
        float32 on the CPU (computed in float64); an empty candidate scores 0.
        """
        if isinstance(candidates, str) or len(candidates) != len(references):
            raise ValueError(
                f"need one reference list per candidate, got {len(candidates)} candidates "
                f"and {len(references)} reference lists"
            )
        if len(candidates) == 0:
            return torch.zeros(0, dtype=torch.float32)
        # REINFORCE scores N samples against the same references, and samples repeat: each
        # distinct reference list and each distinct (candidate, list) pair is scored once.
        list_index: dict[tuple[str, ...], int] = {}
        pair_index: dict[tuple[str, int], int] = {}
        pair_of_input = []
        for index, (candidate, refs) in enumerate(zip(candidates, references, strict=True)):
            if isinstance(refs, str) or len(refs) == 0:
                raise ValueError(f"references[{index}] must be a non-empty list of captions")
            pair = (tokenize(candidate), list_index.setdefault(tuple(refs), len(list_index)))
            pair_of_input.append(pair_index.setdefault(pair, len(pair_index)))
        ref_lists = list(list_index)
        max_refs = max(len(refs) for refs in ref_lists)

        # Only the candidates' n-grams reach the numerator, so they make the vocabulary.
        cand_counts = [_ngram_counts(c.split(), self.max_order) for c, _ in pair_index]
        vocabulary: dict[NGram, int] = {}
        for counts in cand_counts:
            for ngram in counts:
                vocabulary.setdefault(ngram, len(vocabulary))
        cand = self._vectors(cand_counts, vocabulary)
        flat_refs = [
            _ngram_counts(tokenize(r).split(), self.max_order) for refs in ref_lists for r in refs
        ]
        ref = self._vectors(flat_refs, vocabulary)

        # Reference weights at the vocabulary's n-grams, (distinct lists, max refs, vocabulary).
        slot = torch.tensor([j for refs in ref_lists for j in range(len(refs))], dtype=torch.int64)
        owner = torch.tensor(
            [u for u, refs in enumerate(ref_lists) for _ in refs], dtype=torch.int64
        )
        dense = torch.zeros(len(ref_lists), max_refs, max(len(vocabulary), 1), dtype=torch.float64)
        known = ref.ngram >= 0
        rows = ref.caption[known]
        dense[owner[rows], slot[rows], ref.ngram[known]] = ref.weight[known]
        ref_norm = torch.zeros(len(ref_lists), max_refs, self.max_order, dtype=torch.float64)
        ref_norm[owner, slot] = ref.norm
        ref_length = torch.zeros(len(ref_lists), max_refs, dtype=torch.float64)
        ref_length[owner, slot] = ref.length
        ref_count = torch.tensor([len(refs) for refs in ref_lists], dtype=torch.float64)
        present = torch.arange(max_refs) < ref_count[:, None].long()  # (U, R)

        lists = torch.tensor([u for _, u in pair_index], dtype=torch.int64)  # (P,) distinct pairs
        # Clipped dot products, one entry per candidate n-gram and reference: (E, R) -> (P, n, R).
        r = dense[lists[cand.caption], :, cand.ngram]
        products = torch.minimum(cand.weight[:, None], r) * r
        dots = torch.zeros(len(pair_index), self.max_order, max_refs, dtype=torch.float64)
        dots.index_put_((cand.caption, cand.order), products, accumulate=True)
        norms = cand.norm[:, :, None] * ref_norm[lists].transpose(1, 2)  # (P, n, R)
        # A zero norm means a zero vector (or all-zero idf), whose dot product is 0 as well.
        cosine = torch.where(norms > 0, dots / torch.where(norms > 0, norms, 1.0), 0.0)
        delta = cand.length[:, None] - ref_length[lists]  # (P, R)
        penalty = torch.exp(-(delta**2) / (2 * self.sigma**2)) * present[lists]
        score = 10.0 * (cosine.mean(dim=1) * penalty).sum(dim=1) / ref_count[lists]  # (P,)
        return score[torch.tensor(pair_of_input)].to(torch.float32)

    def _vectors(self, counts: list[Counter[NGram]], vocabulary: dict[NGram, int]) -> _Vectors:
        """tf-idf entries of captions' n-gram counts; n-grams outside `vocabulary` get index -1."""
        caption, ngram, order, tf, idf = [], [], [], [], []
        for index, caption_counts in enumerate(counts):
            for gram, count in caption_counts.items():
                caption.append(index)
                ngram.append(vocabulary.get(gram, -1))
                order.append(len(gram) - 1)
                tf.append(count)
                # An n-gram missing from the corpus counts as seen once, as in pycocoevalcap.
                idf.append(
                    self.log_corpus_size - math.log(max(1, self.document_frequency.get(gram, 0)))
                )
        caption_t = torch.tensor(caption, dtype=torch.int64)
        order_t = torch.tensor(order, dtype=torch.int64)
        weight = torch.tensor(tf, dtype=torch.float64) * torch.tensor(idf, dtype=torch.float64)
        squares = torch.zeros(len(counts), self.max_order, dtype=torch.float64)
        squares.index_put_((caption_t, order_t), weight**2, accumulate=True)
        length = torch.zeros(len(counts), dtype=torch.float64)
        bigrams = order_t == 1
        length.index_put_(
            (caption_t[bigrams],), torch.tensor(tf, dtype=torch.float64)[bigrams], accumulate=True
        )
        return _Vectors(
            caption=caption_t,
            ngram=torch.tensor(ngram, dtype=torch.int64),
            order=order_t,
            weight=weight,
            norm=squares.sqrt(),
            length=length,
        )
