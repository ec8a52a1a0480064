"""Captioning as sequences: a word vocabulary, the codec caption <-> tokens, and the task glue.

The model is the detection pipeline's `Pix2SeqModel`, unchanged: it only needs a
`SequenceSpec`, and a caption is one word token per position, then EOS (no deterministic
positions, no ordinal ranges). `mle_step` teacher-forces one reference caption per image, drawn
at random from the scene's paraphrases; `reinforce_step` scores samples with CIDEr-D against all
of the scene's references, the idf taken once from a fixed corpus of training captions.

The vocabulary is every word the Synthetic Shapes caption templates can write for scenes of up
to `max_count` objects, found by describing a fixed set of hand-made layouts that exercise each
template branch (each class, colour, count, relation, place and size word), then sorted: a pure
function of `max_count`, so a checkpoint's config rebuilds the same vocabulary. A word outside
it is refused when encoding (a clear error beats a silent UNK that the model could learn).

Tokens: PAD, BOS, EOS, then the words in sorted order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from trainer.configs import CaptioningTaskConfig
from trainer.data.detection import collate, scene_to_example
from trainer.data.shape_captions import describe_scene
from trainer.data.shapes import (
    CLASS_NAMES,
    COLOR_NAMES,
    DEFAULT_CONFIG,
    Scene,
    ShapesConfig,
    generate_scene,
    scene_seed,
)
from trainer.eval.captioning_metrics import caption_metrics
from trainer.models.pix2seq import Pix2SeqModel, SequenceSpec
from trainer.rewards.captioning import CiderD, tokenize

PAD, BOS, EOS = 0, 1, 2
WORD_OFFSET = 3




def caption_vocabulary(max_count: int = 10) -> tuple[str, ...]:
    """Sorted words of the caption templates for scenes of 1..max_count objects."""
    if max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    size = 90.0  # a 3x3 grid of 30 px cells, so every region word is reachable

    def box(row: int, col: int, side: float) -> list[float]:
        y, x = 30.0 * row + 15.0, 30.0 * col + 15.0
        return [y - side / 2, x - side / 2, y + side / 2, x + side / 2]

    cells = [(row, col) for row in range(3) for col in range(3)]
    words: set[str] = set()

    def add(boxes: list[list[float]], shapes: list[str], colours: list[str]) -> None:
        for noun in ("shapes", "objects"):
            for caption in describe_scene(boxes, shapes, colours, int(size), noun=noun):
                words.update(tokenize(caption).split())

    for k, shape in enumerate(CLASS_NAMES):
        for j, colour in enumerate(COLOR_NAMES):
            row, col = cells[(k + j) % len(cells)]
            add([box(row, col, 10.0)], [shape], [colour])
    for row, col in cells:  # every place word
        add([box(row, col, 10.0)], [CLASS_NAMES[0]], [COLOR_NAMES[0]])
    # Relations: the larger object left of, right of, above and below the smaller one.
    for big, small in (((1, 0), (1, 2)), ((1, 2), (1, 0)), ((0, 1), (2, 1)), ((2, 1), (0, 1))):
        add([box(*big, 20.0), box(*small, 10.0)], list(CLASS_NAMES[:2]), list(COLOR_NAMES[:2]))
    # Counts with plurals of every class and colour, and the size words of crowded scenes.
    for n in range(2, max_count + 1):
        boxes = [box(*cells[i % len(cells)], 4.0 + i) for i in range(n)]
        for shape in CLASS_NAMES:
            add(boxes, [shape] * n, [COLOR_NAMES[0]] * n)
        for colour in COLOR_NAMES:
            add(boxes, [CLASS_NAMES[0]] * n, [colour] * n)
    return tuple(sorted(words))


class CaptionCodec:
    """Captions <-> token sequences over `caption_vocabulary` (see the module docstring)."""

    def __init__(self, config: CaptioningTaskConfig) -> None:
        if config.max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {config.max_words}")
        self.config = config
        self.words = caption_vocabulary(config.max_count)
        self.index = {word: WORD_OFFSET + i for i, word in enumerate(self.words)}
        self.vocab_size = WORD_OFFSET + len(self.words)
        self.length = config.max_words + 1  # EOS included
        self.spec = self._spec()

    def _spec(self) -> SequenceSpec:
        allowed = torch.zeros(self.length, self.vocab_size, dtype=torch.bool)
        allowed[:-1, WORD_OFFSET:] = True
        allowed[1:, EOS] = True  # at least one word: an empty caption says nothing
        return SequenceSpec(
            vocab_size=self.vocab_size, length=self.length, pad=PAD, bos=BOS, eos=EOS,
            placeholder=PAD, allowed=allowed,
            deterministic=torch.zeros(self.length, dtype=torch.bool),
        )

    def encode(self, captions: Sequence[str]) -> Tensor:
        """(B, L) token sequences: the tokenised words (cut to `max_words`), EOS, PAD."""
        tokens = torch.full((len(captions), self.length), PAD, dtype=torch.long)
        for row, caption in enumerate(captions):
            words = tokenize(caption).split()[: self.config.max_words]
            if not words:
                raise ValueError(f"caption {row} has no words: {caption!r}")
            unknown = [word for word in words if word not in self.index]
            if unknown:
                raise ValueError(f"caption {row} has words outside the vocabulary: {unknown}")
            tokens[row, : len(words)] = torch.tensor([self.index[word] for word in words])
            tokens[row, len(words)] = EOS
        return tokens

    def decode(self, tokens: Tensor) -> list[str]:
        """The caption of each (N, L) row: its words before the first EOS."""
        captions = []
        for row in tokens.tolist():
            words = []
            for token in row:
                if token == EOS:
                    break
                if token >= WORD_OFFSET:
                    words.append(self.words[token - WORD_OFFSET])
            captions.append(" ".join(words))
        return captions


@dataclass
class CaptionBatch:
    """Model inputs and reference captions of B images."""

    images: Tensor  # (B, 3, S, S) normalised as the detection pipeline's batches
    references: list[tuple[str, ...]]  # each image's reference captions
    image_ids: Tensor  # (B,) int64 (a Synthetic Shapes scene's seed)

    def to(self, device: torch.device | str) -> CaptionBatch:
        return CaptionBatch(self.images.to(device), self.references, self.image_ids.to(device))

    def __len__(self) -> int:
        return self.images.shape[0]


def caption_batch(scenes: Sequence[Scene], image_size: int) -> CaptionBatch:
    """Scenes as a batch; images go through the detection pipeline's `collate` (same resizing
    and normalisation, so any Pix2seq encoder sees the inputs it was built for)."""
    images = collate([scene_to_example(scene) for scene in scenes], image_size).images
    return CaptionBatch(
        images=images,
        references=[tuple(scene.captions) for scene in scenes],
        image_ids=torch.tensor([scene.seed for scene in scenes], dtype=torch.int64),
    )


def training_captions(n: int, shapes: ShapesConfig = DEFAULT_CONFIG) -> list[list[str]]:
    """Reference captions of the first `n` training scenes (the reward's idf corpus)."""
    return [list(generate_scene(scene_seed("train", i), shapes).captions) for i in range(n)]


@dataclass(frozen=True)
class ScoredCaptions:
    """The task's verdict on sampled captions."""

    reward: Tensor  # (N,) CIDEr-D
    captions: list[str]

    def select(self, rows: Tensor) -> ScoredCaptions:
        return ScoredCaptions(self.reward[rows], [self.captions[i] for i in rows.tolist()])

    def metrics(self) -> dict[str, float]:
        words = [len(caption.split()) for caption in self.captions]
        return {
            "words_per_caption": sum(words) / max(1, len(words)),
            "distinct_captions": len(set(self.captions)) / max(1, len(self.captions)),
        }


class CaptioningTask:
    """What the training loops need from captioning: targets, rewards, no auxiliary loss.

    `corpus` gives CIDEr-D's idf (a list of reference captions per image); by default the
    captions of the first `config.idf_images` training scenes under `shapes`.
    """

    def __init__(
        self,
        config: CaptioningTaskConfig,
        shapes: ShapesConfig = DEFAULT_CONFIG,
        corpus: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.config = config
        self.codec = CaptionCodec(config)
        if corpus is None:
            corpus = training_captions(config.idf_images, shapes)
        self.cider = CiderD.from_references(corpus)

    @property
    def spec(self) -> SequenceSpec:
        return self.codec.spec

    def collate(self, scenes: Sequence[Scene], image_size: int) -> CaptionBatch:
        return caption_batch(scenes, image_size)

    def targets(self, batch: CaptionBatch, generator: torch.Generator | None) -> Tensor:
        """MLE targets: one reference per image, drawn with `generator` (else the first)."""
        picks = [0] * len(batch.references)
        if generator is not None:
            counts = torch.tensor([len(refs) for refs in batch.references])
            picks = (torch.rand(len(counts), generator=generator) * counts).long().tolist()
        captions = [refs[i] for refs, i in zip(batch.references, picks, strict=True)]
        return self.codec.encode(captions).to(batch.images.device)

    def reward(self, tokens: Tensor, batch: CaptionBatch, n: int) -> ScoredCaptions:
        """CIDEr-D of n samples per image (image-major rows) against the image's references."""
        captions = self.codec.decode(tokens)
        references = [batch.references[row // n] for row in range(len(captions))]
        reward = self.cider.cider_d(captions, references).to(tokens.device)
        return ScoredCaptions(reward=reward, captions=captions)

    def aux_loss(self, logits: Tensor, scored: ScoredCaptions) -> Tensor:
        """Captioning has no auxiliary loss."""
        return logits.new_zeros(())


@torch.no_grad()
def predict_captions(model: Pix2SeqModel, codec: CaptionCodec, images: Tensor) -> list[str]:
    """Greedy caption of each image."""
    return codec.decode(model.greedy(images))


@torch.no_grad()
def evaluate_captions(
    model: Pix2SeqModel, task: CaptioningTask, scenes: Sequence[Scene], *, batch_size: int = 100
) -> dict[str, float]:
    """pycocoevalcap CIDEr-D and BLEU-4 of greedy captions of `scenes`, plus the mean reward
    (CIDEr-D with the task's fixed idf)."""
    captions: list[str] = []
    for start in range(0, len(scenes), batch_size):
        batch = caption_batch(scenes[start : start + batch_size], model.config.image_size)
        captions += predict_captions(model, task.codec, batch.images.to(model.device))
    references = [list(scene.captions) for scene in scenes]
    reward = task.cider.cider_d(captions, references).mean().item()
    return {**caption_metrics(captions, references), "reward": reward}
