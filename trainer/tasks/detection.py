"""Detection as sequences (Pix2seq): the codec boxes <-> tokens and the task glue for training.

Each box is six tokens `[ymin, xmin, ymax, xmax, class, confidence]`: coordinates in [0, 1]
quantised into `coord_bins` bins, the class, then a confidence token (the box's predicted IoU in
`conf_bins` bins); EOS ends the sequence. The confidence token is *deterministic* for the model
(arg-max filled, outside the policy's log-probability, a placeholder as decoder input): it is a
prediction about the box, learnt with a supervised loss toward the reward's `pred_iou`. Keeping it
out of the policy gradient means the policy is not pushed to claim high confidence on its good
boxes; keeping it out of the decoder input means MLE pretraining (which has no IoU targets) and
tuning see the same inputs.

Vocabulary: PAD, BOS, EOS, the confidence placeholder, coordinate bins, classes, confidence bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trainer.configs import DetectionTaskConfig
from trainer.models.pix2seq import SequenceSpec
from trainer.rewards.detection import detection_reward
from trainer.train.distributed import shard_mean

PAD, BOS, EOS, CONF_INPUT = 0, 1, 2, 3
TOKENS_PER_BOX = 6
CLASS_SLOT, CONF_SLOT = 4, 5


@dataclass(frozen=True)
class DecodedBoxes:
    """Boxes read back from token sequences; (N, K) per slot, `valid` False past EOS."""

    boxes: Tensor  # (N, K, 4) yxyx in [0, 1]
    classes: Tensor  # (N, K) int64
    valid: Tensor  # (N, K) bool
    confidence: Tensor  # (N, K) the confidence token's value in [0, 1]

    def select(self, rows: Tensor) -> DecodedBoxes:
        return DecodedBoxes(self.boxes[rows], self.classes[rows], self.valid[rows],
                            self.confidence[rows])


@dataclass(frozen=True)
class ScoredSamples:
    """A task's verdict on sampled sequences: the reward, plus what its auxiliary loss needs."""

    reward: Tensor  # (N,)
    pred_iou: Tensor  # (N, K) target of the confidence token
    decoded: DecodedBoxes

    def select(self, rows: Tensor) -> ScoredSamples:
        """The samples of `rows` only (the ones a REINFORCE step optimises)."""
        return ScoredSamples(self.reward[rows], self.pred_iou[rows], self.decoded.select(rows))

    def metrics(self) -> dict[str, float]:
        """Task figures for the metrics log."""
        valid = self.decoded.valid
        hits = (self.pred_iou > 0) & valid
        return {
            "boxes_per_sample": valid.sum(1).float().mean().item(),
            "hit_rate": (hits.sum() / valid.sum().clamp_min(1)).item(),
        }


class DetectionCodec:
    """Boxes <-> token sequences (see the module docstring)."""

    def __init__(self, config: DetectionTaskConfig, num_classes: int) -> None:
        self.config, self.num_classes = config, num_classes
        self.coord_offset = 4
        self.class_offset = self.coord_offset + config.coord_bins
        self.conf_offset = self.class_offset + num_classes
        self.vocab_size = self.conf_offset + config.conf_bins
        self.max_boxes = config.max_boxes
        self.length = config.max_boxes * TOKENS_PER_BOX + 1
        self.spec = self._spec()

    def _spec(self) -> SequenceSpec:
        allowed = torch.zeros(self.length, self.vocab_size, dtype=torch.bool)
        coords = slice(self.coord_offset, self.class_offset)
        slot = torch.arange(self.length) % TOKENS_PER_BOX
        box = torch.arange(self.length) < self.max_boxes * TOKENS_PER_BOX
        allowed[box & (slot < CLASS_SLOT), coords] = True
        allowed[box & (slot == CLASS_SLOT), self.class_offset : self.conf_offset] = True
        allowed[box & (slot == CONF_SLOT), self.conf_offset :] = True
        allowed[(slot == 0) | ~box, EOS] = True
        return SequenceSpec(
            vocab_size=self.vocab_size, length=self.length, pad=PAD, bos=BOS, eos=EOS,
            placeholder=CONF_INPUT, allowed=allowed, deterministic=box & (slot == CONF_SLOT),
            ordinal=((self.coord_offset, self.class_offset),),
        )

    def encode(
        self, boxes: Tensor, classes: Tensor, valid: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """(B, L) target sequences; objects in random order when a generator is given (Pix2seq:
        a random order keeps the model from learning one arbitrary order), else as stored.
        Scenes with more than `max_boxes` objects keep the first `max_boxes` of that order."""
        b, m = valid.shape
        if generator is not None:
            keys = torch.rand(b, m, generator=generator).to(valid.device)
        else:
            keys = torch.arange(m, device=valid.device).float().expand(b, m) / max(m, 1)
        order = (keys + (~valid).float() * 2).argsort(dim=1)[:, : self.max_boxes]
        k = order.shape[1]
        boxes = boxes.gather(1, order[..., None].expand(b, k, 4))
        classes, valid = classes.gather(1, order), valid.gather(1, order)
        bins = self.config.coord_bins
        coords = (boxes.clamp(0, 1) * (bins - 1)).round().long() + self.coord_offset
        conf = torch.full_like(classes, self.vocab_size - 1)
        per_box = torch.cat([coords, (classes + self.class_offset)[..., None], conf[..., None]], -1)
        tokens = torch.full((b, self.length), PAD, dtype=torch.long, device=valid.device)
        tokens[:, : k * TOKENS_PER_BOX] = torch.where(valid[..., None], per_box, PAD).flatten(1)
        count = valid.sum(dim=1, keepdim=True)
        tokens.scatter_(1, count * TOKENS_PER_BOX, EOS)
        return tokens

    def decode(self, tokens: Tensor) -> DecodedBoxes:
        """Boxes of (N, L) sequences; a box counts when all its six tokens precede EOS."""
        n = tokens.shape[0]
        is_eos = tokens == EOS
        first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), self.length)
        per_box = tokens[:, : self.max_boxes * TOKENS_PER_BOX].view(n, self.max_boxes, -1)
        starts = torch.arange(self.max_boxes, device=tokens.device) * TOKENS_PER_BOX
        valid = starts + TOKENS_PER_BOX <= first_eos[:, None]
        coords = (per_box[..., :4] - self.coord_offset).clamp(0, self.config.coord_bins - 1)
        conf = (per_box[..., CONF_SLOT] - self.conf_offset).clamp(0, self.config.conf_bins - 1)
        return DecodedBoxes(
            boxes=coords.float() / (self.config.coord_bins - 1),
            classes=(per_box[..., CLASS_SLOT] - self.class_offset).clamp(0, self.num_classes - 1),
            valid=valid,
            confidence=conf.float() / (self.config.conf_bins - 1),
        )

    def conf_logprobs(self, logits: Tensor) -> Tensor:
        """(N, K, conf_bins) log-distribution of each box's confidence token."""
        at_conf = logits[:, CONF_SLOT : self.max_boxes * TOKENS_PER_BOX : TOKENS_PER_BOX]
        return torch.log_softmax(at_conf[..., self.conf_offset :], dim=-1)

    def box_scores(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Scores of each box from teacher-forced logits (N, L, V): the distribution of its
        class token (N, K, C), whose entry for the box's class is Pix2seq's score, and the
        expected value of its confidence token (N, K)."""
        at_class = logits[:, CLASS_SLOT : self.max_boxes * TOKENS_PER_BOX : TOKENS_PER_BOX]
        class_probs = torch.softmax(at_class[..., self.class_offset : self.conf_offset], -1)
        centres = torch.linspace(0, 1, self.config.conf_bins, device=logits.device)
        confidence = self.conf_logprobs(logits).exp() @ centres
        return class_probs, confidence


def prefix_rows(boxes: Tensor, classes: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every prefix of every output as a row of its own, to score in one batched call: boxes,
    classes and valid masks of N * (K+1) rows, output-major; row n * (K+1) + j keeps output
    n's valid boxes among 0..j-1."""
    k = valid.shape[1]
    positions = torch.arange(k + 1, device=valid.device)
    masks = valid[:, None, :] & (positions[None, :k] < positions[:, None])  # (N, K+1, K)
    return (boxes.repeat_interleave(k + 1, 0), classes.repeat_interleave(k + 1, 0),
            masks.flatten(0, 1))


def credit_from_prefixes(reward: Tensor, before: Tensor, length: int) -> Tensor:
    """(N, length) each token's reward-to-go: the sample's reward (N,) minus `before` (N, K+1),
    the reward of the boxes before the token's box alone (`prefix_rows`; column K for EOS and
    after)."""
    k = before.shape[1] - 1
    to_go = reward[:, None] - before  # (N, K+1): gained from box j on
    per_box = to_go[:, :k].repeat_interleave(TOKENS_PER_BOX, dim=1)  # (N, 6K)
    return torch.cat([per_box, to_go[:, k:]], dim=1)[:, :length]


class DetectionTask:
    """What the training loops need from detection: targets, rewards, auxiliary loss."""

    def __init__(
        self, config: DetectionTaskConfig, num_classes: int, class_weights: Tensor | None = None
    ) -> None:
        self.config = config
        self.codec = DetectionCodec(config, num_classes)
        self.class_weights = class_weights

    @property
    def spec(self) -> SequenceSpec:
        return self.codec.spec

    def targets(self, batch, generator: torch.Generator | None) -> Tensor:
        """MLE target sequences of a DetectionBatch, objects in random order."""
        return self.codec.encode(batch.boxes, batch.classes, batch.valid, generator)

    def reward(self, tokens: Tensor, batch, n: int) -> ScoredSamples:
        """Score n samples per image (image-major rows) against the batch's ground truth."""
        decoded = self.codec.decode(tokens)
        out = self._reward(decoded.boxes, decoded.classes, decoded.valid, batch, n)
        return ScoredSamples(reward=out.reward, pred_iou=out.pred_iou, decoded=decoded)

    def rewards_to_go(self, tokens: Tensor, batch, n: int, scored: ScoredSamples) -> Tensor:
        """(N, L) each token's reward-to-go: the sample's reward minus the reward that the boxes
        before the token's box would get alone (so 0 for EOS and after)."""
        decoded = scored.decoded
        k = decoded.valid.shape[1]
        before = self._reward(
            *prefix_rows(decoded.boxes, decoded.classes, decoded.valid), batch, n * (k + 1),
        ).reward.view(-1, k + 1)
        return credit_from_prefixes(scored.reward, before, tokens.shape[1])

    def _reward(self, boxes: Tensor, classes: Tensor, valid: Tensor, batch, n: int):
        """The paper's reward of decoded boxes, n rows per image of the batch."""
        return detection_reward(
            boxes, classes, valid,
            batch.boxes.repeat_interleave(n, 0), batch.classes.repeat_interleave(n, 0),
            batch.valid.repeat_interleave(n, 0),
            class_weights=self.class_weights, duplicate_penalty=self.config.duplicate_penalty,
        )

    def aux_loss(self, logits: Tensor, scored: ScoredSamples) -> Tensor:
        """Weighted cross-entropy of each valid box's confidence token toward its IoU target,
        as a two-hot distribution over the neighbouring bins (its mean is the target); the mean
        is over the valid boxes of all data-parallel processes (`shard_mean`)."""
        bins = self.config.conf_bins
        position = scored.pred_iou.clamp(0, 1) * (bins - 1)
        low = position.floor().long().clamp(max=bins - 2)
        high_weight = position - low
        target = torch.zeros(*position.shape, bins, device=logits.device)
        target.scatter_(-1, low[..., None], (1 - high_weight)[..., None])
        target.scatter_add_(-1, (low + 1)[..., None], high_weight[..., None])
        conf_logprobs = self.codec.conf_logprobs(logits)  # logits may be trimmed: K' <= K
        k = conf_logprobs.shape[1]
        per_box = -(target[:, :k] * conf_logprobs).sum(-1)
        valid = scored.decoded.valid[:, :k].float()
        return self.config.confidence_weight * shard_mean((per_box * valid).sum(), valid.sum())


@dataclass(frozen=True)
class Detections:
    """One image's decoded boxes with both scores (normalised yxyx boxes, class indices)."""

    boxes: Tensor  # (K, 4)
    classes: Tensor  # (K,)
    class_prob: Tensor  # (K,) probability of the class token (Pix2seq's score)
    confidence: Tensor  # (K,) expected value of the confidence token (predicted IoU)
    class_probs: Tensor  # (K, C) the class token's distribution: a score for every class


@torch.no_grad()
def predict(
    model, codec: DetectionCodec, images: Tensor, *, min_boxes: int = 0,
    temperature: float = 0.0, generator: torch.Generator | None = None,
) -> list[Detections]:
    """Decode each image once (greedy by default; EOS forbidden before `min_boxes` boxes) and
    score its boxes both ways from one teacher-forced pass."""
    tokens, _ = model.sample(images, 1, temperature=temperature, generator=generator,
                             min_length=min_boxes * TOKENS_PER_BOX)
    class_probs, confidence = codec.box_scores(model.logits(images, tokens))
    decoded = codec.decode(tokens)
    class_prob = class_probs.gather(-1, decoded.classes[..., None])[..., 0]
    return [
        Detections(decoded.boxes[i][v].cpu(), decoded.classes[i][v].cpu(),
                   class_prob[i][v].cpu(), confidence[i][v].cpu(), class_probs[i][v].cpu())
        for i, v in enumerate(decoded.valid)
    ]
