"""The `policy` readout: a reward model started from the detection policy it will tune.

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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from trainer.configs import from_dict, to_dict
from trainer.reward_model.encoders import BoxOutputs
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


class PolicyReadout(nn.Module):
    """Per-box scores from a detection policy's decoder (see the module docstring)."""

    def __init__(self, policy: Checkpoint, trainable_blocks: int, num_classes: int,
                 belief_init: float = 0.0) -> None:
        super().__init__()
        if policy.task_name != "detection":
            raise ValueError(f"the policy readout scores detection; the checkpoint's task is "
                             f"{policy.task_name}")
        self.network, task = policy.build("cpu")
        self.codec = task.codec
        if self.codec.num_classes != num_classes:
            raise ValueError(f"the policy has {self.codec.num_classes} classes, the reward "
                             f"model {num_classes}")
        decoder = self.network.decoder
        if not 0 <= trainable_blocks <= len(decoder):
            raise ValueError(f"trainable_blocks must lie in 0..{len(decoder)} (the policy's "
                             f"decoder blocks), got {trainable_blocks}")
        self.frozen_blocks = len(decoder) - trainable_blocks
        d = self.network.config.d_model
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.belief = nn.Linear(CONF_SLOT, 1)  # weights of the box's token log-probabilities
        nn.init.constant_(self.belief.weight, belief_init)
        nn.init.zeros_(self.belief.bias)
        self.network.requires_grad_(False)
        trainable = [*decoder[self.frozen_blocks :], self.network.dec_norm]
        for module in trainable if trainable_blocks else []:
            module.requires_grad_(True)

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
        net = self.network
        tokens = self.codec.encode(outputs.boxes.float(), outputs.classes, outputs.valid, None)
        inputs = net._inputs(tokens)  # (N, L): BOS, tokens shifted right, placeholders
        with torch.no_grad():  # the frozen part: encoder, embeddings, the first decoder blocks
            x = net.embed(inputs) + net.dec_pos  # (N, L, d)
            memory = net.encode(images)
            memory_kv = [tuple(t[rows] for t in block.cross_attn.keys_values(memory))
                         for block in net.decoder]
            for i in range(self.frozen_blocks):
                x = net.decoder[i](x, memory_kv[i], None, 0)
        for i in range(self.frozen_blocks, len(net.decoder)):
            x = net.decoder[i](x, memory_kv[i], None, 0)
        x = net.dec_norm(x)  # (N, L, d)
        k = self.codec.max_boxes
        logp = torch.log_softmax(net.head(x) + net.grammar, -1)  # (N, L, V), as the policy's
        logp = logp.gather(-1, tokens[..., None])[:, : k * TOKENS_PER_BOX, 0]
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
