"""Captioning evaluation with pycocoevalcap: corpus CIDEr-D and BLEU-4 of one caption per image.

The reward (`trainer.rewards.captioning`) is checked equal to pycocoevalcap's CIDEr; here the
library itself gives the reported figures. Captions are tokenised in Python with the reward's
`tokenize` (lowercase, punctuation removed), not with the Java PTB tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from trainer.rewards.captioning import tokenize


def caption_metrics(
    candidates: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Corpus CIDEr-D and BLEU-4 of one candidate per image with pycocoevalcap (the evaluation).

    `candidates[i]` describes image i, `references[i]` lists its reference captions. CIDEr's idf
    comes from the references of these images, as in COCO evaluation, so it needs several
    images (one image alone scores 0). Returns {"cider", "bleu4"}, CIDEr on its usual 0-10 scale.
    """
    if isinstance(candidates, str) or len(candidates) != len(references):
        raise ValueError(
            f"need one reference list per candidate, got {len(candidates)} candidates "
            f"and {len(references)} reference lists"
        )
    if len(candidates) == 0:
        raise ValueError("caption_metrics needs at least one image")
    for index, refs in enumerate(references):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"references[{index}] must be a non-empty list of captions")
    res = {i: [tokenize(c)] for i, c in enumerate(candidates)}
    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(references)}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {"cider": float(cider), "bleu4": float(bleu[3])}
