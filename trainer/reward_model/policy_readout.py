"""The `policy` readout: a reward model started from the policy it will tune, for every task.

`make_policy_readout` picks the task's: `PolicyReadout` (detection, below), `CaptionReadout`
(captioning) or `GridReadout` (colorization, panoptic); each keeps a copy of the policy's
network as `network`, so a saved reward model carries its weights.

Detection.

Reward modelling in practice (InstructGPT and after) starts the reward model from the pretrained
policy, which already sees what the outputs are about; a small net from scratch would have to
learn to tell the shapes apart from a few thousand comparisons (on the rlhf benchmark's pairs
of policy samples, half of the decided pairs differ only in a box's class).

A copy of the Pix2seq network teacher-forces each output's token sequence (the task codec's
MLE encoding, boxes in their stored order). The decoder state at the position whose input is a
box's class token (the confidence slot: it has seen the image, the box's coordinates, its class
and the boxes before it) goes through a small new head, zero-initialised, to the box's score,
plus a learnt weighting of the policy's log-probabilities of the box's five tokens
(coordinates and class, from the same pass), `belief_init` at first: what the policy believes
of the box is the strongest feature it has. On the rlhf benchmark's pairs a head on the state
alone learnt slowly (held-out pair accuracy 0.54 after 200 steps) and the weighting started at
0 reached 0.59. Started at 1, the policy's own likelihood of the output, it judges pairs better
from the start (0.67), but a sum of log-probabilities is higher for fewer boxes: tuned against
it, the benchmark's policy dropped boxes and lost 4.3 mAP. The output's score is the
sum over its boxes. The decoder is causal, so the score of the first
k boxes is the sum of the full output's first k box scores (prefix rewards for reward-to-go
come out consistent). Only the head and the last `trainable_blocks` decoder blocks (with the
final norm) learn; the stem, the encoder and the other blocks stay as the policy had them.

Captioning (`CaptionReadout`). The captioning Pix2seq network teacher-forces the caption's
tokens; the mean decoder state over the caption's tokens (its words and EOS) goes through a
zero-initialised head, plus `belief_init` times the policy's mean log-probability of those
tokens (a mean, not a sum: a sum would pay for short captions, as it paid for few boxes).

Colorization and panoptic (`GridReadout`). The grid models factorise over patches: the
network's per-patch features (the input of its head), the output drawn as channels
(`encoders.py`) averaged over each patch and projected to the features' width, added, a small
conv head to a score per patch, averaged; plus `belief_init` times the policy's mean
log-probability per patch of what the output shows there: the colour bin of the patch's mean
colour (the codec's encoding of the colorized image), or the patch's majority category
(its tokens' probabilities summed over the instance slots, since an output's instance ids are
arbitrary labels). The last `trainable_blocks` residual blocks and the image-context layer learn.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.configs import RewardModelConfig, from_dict, to_dict
from trainer.reward_model.encoders import output_encoder
from trainer.reward_model.outputs import (
    BoxOutputs,
    CaptionOutputs,
    ColorOutputs,
    PanopticOutputs,
)
from trainer.tasks.captioning import PAD
from trainer.tasks.detection import CONF_SLOT, TOKENS_PER_BOX
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint


def policy_description(policy: Checkpoint) -> dict[str, Any]:
    """What rebuilds the policy's network without its weights (they travel in the reward
    model's own state): plain dicts, as a checkpoint stores them."""
    return {"task": policy.task_name, "model_config": to_dict(policy.model_config),
            "task_config": to_dict(policy.task_config), "class_names": list(policy.class_names),
            "data_config": policy.data_config}


def policy_from_description(description: dict[str, Any], state: dict[str, Tensor]) -> Checkpoint:
    """A checkpoint of `policy_description`'s network with the weights `state`."""
    entry = task_entry(description["task"])
    return Checkpoint(
        task_name=description["task"],
        model_config=from_dict(entry.model_config, description["model_config"]),
        task_config=from_dict(entry.task_config, description["task_config"]),
        class_names=tuple(description["class_names"]), stage="reward_model", step=0,
        run_config={}, state=state, optimizer=None, data_config=description["data_config"],
    )


def _policy_network(policy: Checkpoint, task: str) -> tuple[nn.Module, Any]:
    """A frozen copy of the checkpoint's network and its task, refusing another task's."""
    if policy.task_name != task:
        raise ValueError(f"this policy readout scores {task}; the checkpoint's task is "
                         f"{policy.task_name}")
    network, policy_task = policy.build("cpu")
    return network.requires_grad_(False), policy_task


def _check_blocks(trainable_blocks: int, blocks: int, what: str) -> None:
    if not 0 <= trainable_blocks <= blocks:
        raise ValueError(f"trainable_blocks must lie in 0..{blocks} (the policy's {what}), got "
                         f"{trainable_blocks}")


def _zero_head(d: int) -> nn.Sequential:
    """A small MLP whose output starts at 0: the score starts as the belief term alone."""
    head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head


def _belief(inputs: int, init: float) -> nn.Linear:
    """The learnt weighting of the policy's log-probabilities, `init` each at first."""
    belief = nn.Linear(inputs, 1)
    nn.init.constant_(belief.weight, init)
    nn.init.zeros_(belief.bias)
    return belief


def _learn_decoder_tail(network: nn.Module, trainable_blocks: int) -> int:
    """Unfreeze the last `trainable_blocks` decoder blocks (and the final norm) of a Pix2seq
    network; returns how many blocks stay frozen."""
    decoder = network.decoder
    _check_blocks(trainable_blocks, len(decoder), "decoder blocks")
    frozen = len(decoder) - trainable_blocks
    for module in [*decoder[frozen:], network.dec_norm] if trainable_blocks else []:
        module.requires_grad_(True)
    return frozen


def teacher_forced(net: nn.Module, images: Tensor, tokens: Tensor, rows: Tensor,
                   frozen_blocks: int) -> tuple[Tensor, Tensor]:
    """A Pix2seq network teacher-forcing `tokens` (N, L), row n on image `images[rows[n]]`:
    (N, L, d) the final decoder states (input at position t: the token before t) and (N, L)
    the policy's log-probability of each token (grammar applied, as the policy's). The
    encoder, the embeddings and the first `frozen_blocks` decoder blocks run without
    gradients."""
    inputs = net._inputs(tokens)  # (N, L): BOS, tokens shifted right, placeholders
    with torch.no_grad():  # the frozen part: encoder, embeddings, the first decoder blocks
        x = net.embed(inputs) + net.dec_pos[:, : tokens.shape[1]]  # (N, L, d)
        memory = net.encode(images)
        memory_kv = [tuple(t[rows] for t in block.cross_attn.keys_values(memory))
                     for block in net.decoder]
        for i in range(frozen_blocks):
            x = net.decoder[i](x, memory_kv[i], None, 0)
    for i in range(frozen_blocks, len(net.decoder)):
        x = net.decoder[i](x, memory_kv[i], None, 0)
    x = net.dec_norm(x)  # (N, L, d)
    logp = torch.log_softmax(net.head(x) + net.grammar[: tokens.shape[1]], -1)  # (N, L, V)
    return x, logp.gather(-1, tokens[..., None])[..., 0]


class PolicyReadout(nn.Module):
    """Per-box scores from a detection policy's decoder (see the module docstring)."""

    def __init__(self, policy: Checkpoint, trainable_blocks: int, num_classes: int,
                 belief_init: float = 0.0) -> None:
        super().__init__()
        self.network, task = _policy_network(policy, "detection")
        self.codec = task.codec
        if self.codec.num_classes != num_classes:
            raise ValueError(f"the policy has {self.codec.num_classes} classes, the reward "
                             f"model {num_classes}")
        self.frozen_blocks = _learn_decoder_tail(self.network, trainable_blocks)
        self.head = _zero_head(self.network.config.d_model)
        self.belief = _belief(CONF_SLOT, belief_init)  # weights of the box's token log-probs

    @property
    def image_size(self) -> int:
        return self.network.config.image_size

    def box_features(
        self, images: Tensor, outputs: BoxOutputs, rows: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """What the scores read, for output n on image `images[rows[n]]`: (N, K, d) the decoder
        state at each box's class token, (N, K, 5) the policy's log-probabilities of the box's
        coordinate and class tokens (0 past the output's boxes), and (N, K) which slots hold a
        box. Boxes past the policy's `max_boxes` are left out."""
        tokens = self.codec.encode(outputs.boxes.float(), outputs.classes, outputs.valid, None)
        x, logp = teacher_forced(self.network, images, tokens, rows, self.frozen_blocks)
        k = self.codec.max_boxes
        logp = logp[:, : k * TOKENS_PER_BOX]
        count = outputs.valid.sum(1, keepdim=True).clamp(max=k)
        valid = torch.arange(k, device=x.device) < count  # (N, K); encode puts valid boxes first
        # Padding slots hold tokens the grammar forbids there (log-probability -inf): zeroed.
        belief = logp.view(len(x), k, TOKENS_PER_BOX)[..., :CONF_SLOT]  # (N, K, 5)
        belief = torch.where(valid[..., None], belief, 0.0)
        at_class_input = x[:, CONF_SLOT : k * TOKENS_PER_BOX : TOKENS_PER_BOX]  # (N, K, d)
        return at_class_input, belief, valid

    def per_box(self, images: Tensor, outputs: BoxOutputs, rows: Tensor) -> Tensor:
        """(N, K) score of each box slot (0 past the output's boxes); see `box_features`."""
        state, belief, valid = self.box_features(images, outputs, rows)
        score = self.head(state)[..., 0] + self.belief(belief)[..., 0]
        return torch.where(valid, score, 0.0)

    def forward(self, images: Tensor, outputs: BoxOutputs, rows: Tensor) -> Tensor:
        """(N,) the sum of each output's box scores."""
        return self.per_box(images, outputs, rows).sum(1)


class CaptionReadout(nn.Module):
    """A caption's score from a captioning policy's decoder (see the module docstring)."""

    def __init__(self, policy: Checkpoint, trainable_blocks: int, belief_init: float = 0.0
                 ) -> None:
        super().__init__()
        self.network, _ = _policy_network(policy, "captioning")
        self.frozen_blocks = _learn_decoder_tail(self.network, trainable_blocks)
        self.head = _zero_head(self.network.config.d_model)
        self.belief = _belief(1, belief_init)

    @property
    def image_size(self) -> int:
        return self.network.config.image_size

    def forward(self, images: Tensor, outputs: CaptionOutputs, rows: Tensor) -> Tensor:
        """(N,) scores; captions longer than the policy's sequences are cut to them."""
        length = self.network.spec.length
        tokens = outputs.tokens[:, :length]
        tokens = F.pad(tokens, (0, length - tokens.shape[1]), value=PAD)
        states, logp = teacher_forced(self.network, images, tokens, rows, self.frozen_blocks)
        scored = self.network.scored_mask(tokens) & (tokens != PAD)  # words and the first EOS
        weights = scored.float() / scored.sum(1, keepdim=True).clamp_min(1)
        mean_state = (weights[..., None] * states).sum(1)
        mean_logp = (weights * torch.where(scored, logp, 0.0)).sum(1, keepdim=True)
        return (self.head(mean_state) + self.belief(mean_logp))[:, 0]


class GridReadout(nn.Module):
    """An output's score from a colorization or panoptic policy's patch features (see the
    module docstring)."""

    def __init__(self, policy: Checkpoint, trainable_blocks: int, num_classes: int,
                 belief_init: float = 0.0) -> None:
        super().__init__()
        self.task_name = policy.task_name
        if self.task_name not in ("colorization", "panoptic"):
            raise ValueError(f"the grid readout scores colorization or panoptic outputs, not "
                             f"{self.task_name}")
        self.network, task = _policy_network(policy, self.task_name)
        self.codec = task.codec
        self.encoder = output_encoder(self.task_name)
        self.num_classes = num_classes
        if self.task_name == "panoptic" and self.codec.num_things != num_classes:
            raise ValueError(f"the policy has {self.codec.num_things} thing classes, the reward "
                             f"model {num_classes}")
        body = self.network.body
        _check_blocks(trainable_blocks, len(body), "residual blocks")
        for module in [*body[len(body) - trainable_blocks :], self.network.context] \
                if trainable_blocks else []:
            module.requires_grad_(True)
        width = self.network.config.width
        self.output_proj = nn.Conv2d(self.encoder.channels(num_classes), width, 1)
        self.head = nn.Sequential(nn.GELU(), nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(width, 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.belief = _belief(1, belief_init)

    @property
    def image_size(self) -> int:
        return self.network.config.image_size

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(I, W, g, g) the network's patch features (its head's input) and (I, P, bins) its
        logits, from one pass."""
        captured: list[Tensor] = []
        hook = self.network.head.register_forward_pre_hook(
            lambda module, args: captured.append(args[0]))
        try:
            logits = self.network(images)
        finally:
            hook.remove()
        return captured[0], logits

    def patch_log_probs(self, logits: Tensor, outputs: ColorOutputs | PanopticOutputs
                        ) -> Tensor:
        """(N, P) the policy's log-probability of what the output shows in each patch (see
        the module docstring); `logits` (N, P, bins), one row per output."""
        logp = torch.log_softmax(logits, -1)
        if self.task_name == "colorization":
            bins = self.codec.encode(outputs.rgb().to(logits.device))
            return logp.gather(-1, bins[..., None])[..., 0]
        grid = math.isqrt(logits.shape[1])
        category = outputs.maps[..., 0].long().clamp(0, self.num_classes).to(logits.device)
        counts = F.one_hot(category, self.num_classes + 1).permute(0, 3, 1, 2).float()
        majority = F.adaptive_avg_pool2d(counts, grid).argmax(1).flatten(1)  # (N, P)
        slots = self.codec.slots
        per_category = torch.cat([logp[..., :1], logp[..., 1:].unflatten(-1, (-1, slots))
                                  .logsumexp(-1)], -1)  # (N, P, things + 1)
        return per_category.gather(-1, majority[..., None])[..., 0]

    def forward(self, images: Tensor, outputs: ColorOutputs | PanopticOutputs, rows: Tensor
                ) -> Tensor:
        features, logits = self.features(images)
        features, logits = features[rows], logits[rows]
        drawn = self.encoder.encode(outputs, self.image_size, self.num_classes)
        drawn = F.adaptive_avg_pool2d(drawn, features.shape[-1])
        per_patch = self.head(features + self.output_proj(drawn)).flatten(1)  # (N, P)
        belief = self.patch_log_probs(logits, outputs).mean(1, keepdim=True)
        return per_patch.mean(1) + self.belief(belief)[:, 0]


def make_policy_readout(policy: Checkpoint, config: RewardModelConfig) -> nn.Module:
    """The policy readout of the reward model's task, started from `policy`."""
    if config.task == "detection":
        return PolicyReadout(policy, config.trainable_blocks, config.num_classes,
                             config.belief_init)
    if config.task == "captioning":
        return CaptionReadout(policy, config.trainable_blocks, config.belief_init)
    return GridReadout(policy, config.trainable_blocks, config.num_classes, config.belief_init)

