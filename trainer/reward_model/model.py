"""The reward model: a small conv net over the image and its drawn output -> one scalar.

The image and the output encoder's channels (see `encoders.py`) are stacked into one input, so
the network always sees the boxes on the pixels they claim. Two readouts of that input:
- `boxes` (detection's default): for each predicted box, a window of the stacked input around
  the box (`box_windows`) goes through a small conv net with the box's class to a per-box
  score; the output's score is the sum over its boxes. Like the detection reward, which adds up
  per-box credit, and data-efficient: a box sits at the same place in every window, so fitting a
  box to its object is learnt once for all positions. Other boxes show in the window too, so a
  duplicate (coverage 2) can cost.
- `image` (detection, colorization, panoptic): a conv net over the whole stacked input, one
  score per location, averaged. The first convolution is split into an image part and an output
  part (a convolution over stacked channels is the sum of convolutions over each group), so an
  image's part is computed once and shared by the N outputs sampled for it.
- `tokens` (captioning): the image's conv features (the `image` readout's network without the
  output part) as a grid of tokens with learnt positions, the caption's words embedded with
  learnt positions after them, a small transformer over both (each word attends to the image
  and the other words: "a red circle left of a star" is judged against what is where), and a
  head on the mean state of the caption's tokens (its words and EOS).
- `policy` (every task, from a pretrained policy): the policy's own network reads the output
  (teacher-forced for Pix2seq, its patch features for the grid models), a score is read from
  it; see `policy_readout.py`. The model file carries the policy's configs, so it loads alone.

The scalar is in Bradley-Terry units: a difference of 1 between two outputs of one image means
odds of e : 1 that the first is preferred. For 1-5 ratings the model also holds ordered cut
points of a cumulative-logit (ordinal) link; see `losses.ordinal_nll`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.configs import RATING_LEVELS, RewardModelConfig, from_dict, to_dict
from trainer.reward_model.encoders import box_windows, image_channels, output_encoder
from trainer.reward_model.outputs import BoxOutputs, CaptionOutputs, Outputs
from trainer.reward_model.policy_readout import (
    make_policy_readout,
    policy_description,
    policy_from_description,
)
from trainer.tasks.captioning import EOS, PAD, WORD_OFFSET, caption_vocabulary
from trainer.tasks.detection import prefix_rows
from trainer.train.checkpoint import Checkpoint, CheckpointError, read_payload, write_payload

FORMAT = "tunelab-reward-model/1"


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _downsample(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.GroupNorm(8, cin), nn.GELU(), nn.Conv2d(cin, cout, 3, 2, padding=1))



def _conv_net(cin: int, width: int, stages: int, stem: nn.Module) -> nn.Sequential:
    """stem (cin -> width), then `stages` residual stages, each later one halving the side."""
    layers: list[nn.Module] = [stem]
    for stage in range(stages):
        channels = width * 2**stage
        layers.append(_Residual(channels))
        if stage < stages - 1:
            layers.append(_downsample(channels, 2 * channels))
    top = width * 2 ** (stages - 1)
    layers += [nn.GroupNorm(8, top), nn.GELU()]
    return nn.Sequential(*layers)


class RewardModel(nn.Module):
    """Scores (image, output) pairs; see the module docstring. The `policy` readout starts
    from `policy`, a checkpoint of the task's policy (its weights are copied; the model keeps
    the checkpoint's configs for `save_reward_model`)."""

    def __init__(self, config: RewardModelConfig, policy: Checkpoint | None = None) -> None:
        super().__init__()
        self.config = config
        width, classes = config.width, config.num_classes
        top = width * 2 ** (config.stages - 1)
        self.policy = None
        if config.readout == "policy":
            if policy is None:
                raise ValueError(f"readout 'policy' starts from a {config.task} policy's "
                                 "checkpoint; none was given")
            if policy.task_name != config.task:
                raise ValueError(f"the reward model scores {config.task}; the policy's task is "
                                 f"{policy.task_name}")
            self.policy = policy_description(policy)
            self.policy_readout = make_policy_readout(policy, config)
            if self.policy_readout.image_size != config.image_size:
                raise ValueError(f"image_size must be the policy's "
                                 f"({self.policy_readout.image_size}), got {config.image_size}")
        elif config.readout == "boxes":
            self.encoder = output_encoder(config.task)
            channels = self.encoder.channels(classes)
            stem = nn.Conv2d(3 + channels, width, 3, padding=1)
            self.window_net = _conv_net(3 + channels, width, config.stages, stem)
            self.box_head = nn.Sequential(nn.Linear(top + classes, top), nn.GELU(),
                                          nn.Linear(top, 1))
        else:
            # Stride 4 keeps the convolutions cheap; anti-aliased drawing keeps sub-pixel box
            # positions in the values the 8x8 kernels read.
            self.image_stem = nn.Conv2d(image_channels(config.task), width, 8, stride=4,
                                        padding=2)
            self.image_net = _conv_net(width, width, config.stages, nn.Identity())
        if config.readout == "image":
            self.encoder = output_encoder(config.task)
            self.output_stem = nn.Conv2d(self.encoder.channels(classes), width, 8, stride=4,
                                         padding=2, bias=False)
            # A score per location, averaged: the reward adds up local evidence.
            self.location_head = nn.Sequential(nn.Conv2d(top, top, 1), nn.GELU(),
                                               nn.Conv2d(top, 1, 1))
        elif config.readout == "tokens":
            side = config.image_size // (4 * 2 ** (config.stages - 1))
            self.image_pos = nn.Parameter(torch.randn(1, side * side, top) * 0.02)
            vocab = WORD_OFFSET + len(caption_vocabulary(config.max_count))
            self.word_embed = nn.Embedding(vocab, top, padding_idx=PAD)
            self.word_pos = nn.Parameter(torch.randn(1, config.max_words + 1, top) * 0.02)
            layer = nn.TransformerEncoderLayer(top, max(1, top // 16), 2 * top, dropout=0.0,
                                               activation="gelu", batch_first=True,
                                               norm_first=True)
            self.text = nn.TransformerEncoder(layer, config.text_layers,
                                              enable_nested_tensor=False)
            self.caption_head = nn.Sequential(nn.LayerNorm(top), nn.Linear(top, top), nn.GELU(),
                                              nn.Linear(top, 1))
        # Ordinal ratings: first cut point and positive gaps to the next ones (kept ordered).
        self.cut_first = nn.Parameter(torch.tensor(-1.5))
        self.cut_gaps = nn.Parameter(torch.zeros(RATING_LEVELS - 2))

    @property
    def device(self) -> torch.device:
        return self.cut_first.device

    def cutpoints(self) -> Tensor:
        """(RATING_LEVELS - 1,) increasing thresholds between adjacent ratings."""
        gaps = F.softplus(self.cut_gaps + 0.5413)  # softplus(0.5413) = 1: unit gaps at init
        return torch.cat([self.cut_first[None], self.cut_first + gaps.cumsum(0)])

    def _images(self, images: Tensor) -> Tensor:
        channels = image_channels(self.config.task)
        if images.ndim != 4 or images.shape[1] != channels:
            raise ValueError(f"images must have shape (B, {channels}, H, W), got "
                             f"{tuple(images.shape)}")
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                                   antialias=True, align_corners=False)
        return images.float()

    def forward(self, images: Tensor, outputs: Outputs,
                image_index: Tensor | None = None) -> Tensor:
        """(N,) scores of N outputs (the task's container, `outputs.py`); `images` are the
        policy's normalised inputs (I, C, H, W), one per output, or shared: output n belongs
        to image `image_index[n]`."""
        config = self.config
        images = self._images(images)
        rows = image_index if image_index is not None else torch.arange(len(images),
                                                                       device=images.device)
        if len(rows) != len(outputs) or (image_index is None and len(images) != len(rows)):
            raise ValueError(f"{len(outputs)} outputs for {len(rows)} images")
        if config.readout == "policy":
            return self.policy_readout(images, outputs, rows)
        if config.readout == "tokens":
            return self._caption_scores(images, outputs, rows)
        drawn = self.encoder.encode(outputs, config.image_size, config.num_classes)
        if config.readout == "image":
            features = self.image_stem(images)[rows] + self.output_stem(drawn)
            return self.location_head(self.image_net(features)).mean(dim=(1, 2, 3))
        stacked = torch.cat([images[rows], drawn], 1)
        # Windows of valid boxes only: move them first and drop the all-padding tail.
        valid = outputs.valid
        keep = max(1, int(valid.sum(1).max()))
        order = (~valid).to(torch.uint8).argsort(dim=1, stable=True)[:, :keep]
        valid = valid.gather(1, order)
        boxes = outputs.boxes.float().gather(1, order[..., None].expand(-1, -1, 4))
        classes = outputs.classes.gather(1, order).clamp(0, config.num_classes - 1)
        windows = box_windows(stacked, boxes, config.window, config.margin).flatten(0, 1)
        chosen = valid.flatten()
        features = self.window_net(windows[chosen]).mean(dim=(2, 3))
        one_hot = F.one_hot(classes.flatten()[chosen], config.num_classes).to(features.dtype)
        per_box = features.new_zeros(valid.numel())
        per_box[chosen] = self.box_head(torch.cat([features, one_hot], 1))[:, 0]
        return per_box.view(valid.shape).sum(1)

    def _caption_scores(self, images: Tensor, outputs: CaptionOutputs, rows: Tensor) -> Tensor:
        """The 'tokens' readout (see the module docstring)."""
        features = self.image_net(self.image_stem(images))  # (I, d, h, w)
        image_tokens = features.flatten(2).transpose(1, 2) + self.image_pos  # (I, h*w, d)
        tokens = outputs.tokens[:, : self.word_pos.shape[1]]
        words = self.word_embed(tokens) + self.word_pos[:, : tokens.shape[1]]
        # The caption's tokens are its words and the first EOS; padding after it is left out.
        eos_before = (tokens == EOS).long().cumsum(1) - (tokens == EOS).long()
        caption = (eos_before == 0) & (tokens != PAD)
        padding = torch.cat([caption.new_zeros(len(tokens), image_tokens.shape[1]), ~caption], 1)
        states = self.text(torch.cat([image_tokens[rows], words], 1),
                           src_key_padding_mask=padding)[:, image_tokens.shape[1] :]
        weights = caption.float() / caption.sum(1, keepdim=True).clamp_min(1)
        return self.caption_head((weights[..., None] * states).sum(1))[:, 0]

    @torch.no_grad()
    def score_outputs(self, images: Tensor, outputs: Outputs, *, chunk: int = 512) -> Tensor:
        """(B,) scores of B outputs of any task, without gradients, in eval mode; `images`
        (B, C, H, W) one per output, or (B / n, ...) shared by n consecutive outputs each
        (image-major, as the REINFORCE loop samples them)."""
        return self._in_chunks(self, images, outputs, chunk)

    @torch.no_grad()
    def score(
        self,
        images: Tensor,
        pred_boxes: Tensor,
        pred_classes: Tensor,
        pred_valid: Tensor,
        *,
        chunk: int = 512,
    ) -> Tensor:
        """(B,) scores of B detection outputs, without gradients, in eval mode.

        `images` (B, 3, H, W) as in a DetectionBatch, or (B / n, ...) shared by n consecutive
        outputs each (image-major, as the REINFORCE loop samples them).
        """
        return self._in_chunks(self, images, BoxOutputs(pred_boxes, pred_classes, pred_valid),
                               chunk)

    @torch.no_grad()
    def prefix_scores(
        self, images: Tensor, pred_boxes: Tensor, pred_classes: Tensor, pred_valid: Tensor,
    ) -> Tensor:
        """(B, K+1) the score of each output's first j boxes alone, j = 0..K (the prefix
        rewards of reward-to-go; `images` as in `score`). The policy readout reads them off one
        pass, its decoder being causal (a box's score does not depend on the boxes after it);
        the other readouts score every prefix."""
        k = pred_valid.shape[1]
        if self.config.readout != "policy":
            return self.score(images, *prefix_rows(pred_boxes, pred_classes, pred_valid)
                              ).view(-1, k + 1)
        outputs = BoxOutputs(pred_boxes, pred_classes, pred_valid)
        per_box = self._in_chunks(self.policy_readout.per_box, self._images(images), outputs)
        # per_box[:, s] scores the s-th valid box; prefix j holds the valid boxes among 0..j-1.
        sums = F.pad(per_box.cumsum(1), (1, max(0, k - per_box.shape[1])), mode="replicate")
        sums[:, 0] = 0
        before_j = F.pad(pred_valid.long().cumsum(1), (1, 0))  # (B, K+1) valid boxes in prefix j
        return sums.gather(1, before_j)

    def _in_chunks(self, fn, images: Tensor, outputs: Outputs, chunk: int = 512) -> Tensor:
        """`fn(images, outputs, image_index)` over chunks of the outputs, in eval mode;
        `images` one per output or shared by equal runs of consecutive outputs."""
        rows = len(outputs)
        if images.shape[0] == 0 or rows % images.shape[0]:
            raise ValueError(f"{rows} outputs cannot be split evenly over "
                             f"{images.shape[0]} images")
        image_index = torch.arange(images.shape[0], device=images.device)
        image_index = image_index.repeat_interleave(rows // images.shape[0])
        was_training = self.training
        self.eval()
        try:
            parts = []
            for start in range(0, rows, chunk):
                part = slice(start, start + chunk)
                used = image_index[part]
                first = int(used[0])
                parts.append(fn(images[first : int(used[-1]) + 1], outputs.select(part),
                                used - first))
            return torch.cat(parts) if parts else images.new_zeros(0)
        finally:
            self.train(was_training)


def save_reward_model(path: str | Path, model: RewardModel, metrics: dict[str, Any]) -> None:
    """Write the model, its config and its held-out metrics atomically (temporary + rename)."""
    write_payload(path, {
        "format": FORMAT,
        "config": to_dict(model.config),
        "metrics": metrics,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **({"policy": model.policy} if model.policy is not None else {}),
    })


def load_reward_model(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[RewardModel, dict[str, Any]]:
    """A saved model (in eval mode) and its metrics; `CheckpointError` with a one-line reason
    for a missing, unreadable or foreign file."""
    payload = read_payload(path, format=FORMAT, what="reward model")
    try:
        policy = None
        if "policy" in payload:  # the network's weights are the reward model's own
            prefix = "policy_readout.network."
            policy = policy_from_description(payload["policy"], {
                k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)})
        model = RewardModel(from_dict(RewardModelConfig, payload["config"]), policy)
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is incomplete or damaged ({exc})") from None
    return model.to(device).eval(), dict(payload.get("metrics") or {})
