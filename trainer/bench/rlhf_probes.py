"""Probes behind the reward-model notes of `bench rlhf` in docs/benchmarks.md.

    python -m trainer.bench.rlhf_probes likelihood CHECKPOINT [--pairs 2000] [--noise 0.05]

`likelihood`: on the benchmark's own pairs of CHECKPOINT's samples (the same seeds, so the
same pairs as `bench rlhf` makes from that MLE checkpoint), how often judges that know only
what the policy knows name the gold-better output of a decided pair: the policy's own
log-probability of each output's box tokens (summed, per box, class tokens only). No
training: it is what a reward model started from the policy knows before the comparisons
teach it anything, and it is printed beside the labels' agreement with gold (the ceiling of
`rm_heldout_acc`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from trainer.bench.detection import DATA, TUNE
from trainer.bench.rlhf import DEFAULT_PAIRS, bench_preferences, label_gold_agreement
from trainer.reward_model.encoders import BoxOutputs
from trainer.reward_model.policy_readout import PolicyReadout
from trainer.reward_model.simulate import DEFAULT_NOISE, DEFAULT_TIE_EPS
from trainer.tasks.detection import CLASS_SLOT
from trainer.train.checkpoint import load_checkpoint


@torch.no_grad()
def beliefs(readout: PolicyReadout, images: torch.Tensor, outputs: BoxOutputs,
            rows: torch.Tensor, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, 5) the policy's log-probabilities of each box's tokens and (N, K) valid slots."""
    parts = [readout.box_features(images, outputs.select(idx), rows[idx])[1:]
             for idx in torch.arange(len(rows)).split(chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def likelihood(checkpoint: Path, pairs: int, noise: float) -> dict:
    mle = load_checkpoint(checkpoint)
    policy, task = mle.build("cpu")
    policy.eval()
    prefs = bench_preferences(policy, task, DATA, pairs, noise, TUNE.temperature)
    readout = PolicyReadout(mle, trainable_blocks=0, num_classes=len(mle.class_names)).eval()
    (belief_a, valid_a), (belief_b, valid_b) = (
        beliefs(readout, prefs.images, out, prefs.image_index) for out in (prefs.a, prefs.b))
    margin = prefs.gold_a - prefs.gold_b
    decided = margin.abs() > DEFAULT_TIE_EPS
    judges = {
        "sum_logp": (belief_a.sum((1, 2)), belief_b.sum((1, 2))),
        "mean_box_logp": (belief_a.sum((1, 2)) / valid_a.sum(1).clamp(min=1),
                          belief_b.sum((1, 2)) / valid_b.sum(1).clamp(min=1)),
        "class_logp": (belief_a[..., CLASS_SLOT].sum(1), belief_b[..., CLASS_SLOT].sum(1)),
    }
    figures = {"pairs": pairs, "decided": int(decided.sum()),
               "label_gold_agreement": round(label_gold_agreement(prefs), 4)}
    for name, (score_a, score_b) in judges.items():
        counted = decided & (score_a != score_b)
        agree = ((score_a > score_b) == (margin > 0))[counted].float().mean().item()
        figures[f"{name}_gold_agreement"] = round(agree, 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=["likelihood"])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS)
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(likelihood(args.checkpoint, args.pairs, args.noise)))


if __name__ == "__main__":
    main()
