"""Train a reward model on simulated preferences and print its figures (one JSON line, last).

    python -m trainer.reward_model [--task detection|captioning|colorization|panoptic]
        [--pairs 2000] [--noise N] [--seed 0] [--pairs-per-image 2]
        [--config steps=600 width=16 ...] [--out runs/rm/rm.pt]

Preferences come from simulated annotators (`simulate.py`; noise in the task's gold units, by
default the task's) on perturbed ground truth of Synthetic Shapes scenes (`perturb.py`); the
reward model gets the task's default readout unless `--config readout=...` says otherwise.
Figures: held-out pairwise accuracy against the noisy labels (`rm_heldout_acc`) and against
the hidden gold order (`rm_heldout_gold_acc`), how often the noisy labels themselves agree with
gold (the ceiling of the first), the share of ties, and the seconds spent making data,
training, and scoring 8 outputs on each of 16 images (one REINFORCE batch of 16 images x 8
samples, `score_s`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from trainer.configs import (
    REWARD_MODEL_TASKS,
    RewardModelConfig,
    apply_overrides,
    default_readout,
    help_for,
)
from trainer.reward_model.candidates import make_preference_data
from trainer.reward_model.model import save_reward_model
from trainer.reward_model.simulate import label_gold_agreement
from trainer.reward_model.tasks import judging
from trainer.reward_model.train import train_reward_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.reward_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=REWARD_MODEL_TASKS, default="detection",
                        help="whose outputs the reward model scores (default detection)")
    parser.add_argument("--pairs", type=int, default=2000, help="simulated preferences")
    parser.add_argument("--noise", type=float,
                        help="annotator noise in the task's gold units: P(a) = "
                             "sigmoid((gold_a - gold_b) / noise) (default: the task's)")
    parser.add_argument("--pairs-per-image", type=int, default=2,
                        help="comparisons per image (2 candidates each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="RewardModelConfig fields: " + "; ".join(
                            # argparse %-formats help: a literal % must be doubled.
                            f"{k}: {v}" for k, v in help_for(RewardModelConfig).items()
                        ).replace("%", "%%"))
    parser.add_argument("--out", help="save the trained model here")
    args = parser.parse_args(argv)
    try:
        if any("=" not in item for item in args.config):
            raise ValueError("--config takes KEY=VALUE items")
        pairs = dict(item.split("=", 1) for item in args.config)
        if "readout" not in pairs:
            pairs["readout"] = default_readout(args.task)
        config = apply_overrides(RewardModelConfig(), {"task": args.task, **pairs})
        if args.noise is None:
            args.noise = judging(args.task).noise
        if args.pairs < 2 or args.noise < 0 or args.pairs_per_image < 1:
            raise ValueError("need --pairs >= 2, --noise >= 0 and --pairs-per-image >= 1")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if config.threads > 0:
        torch.set_num_threads(config.threads)  # scoring is timed with the training's threads
    began = time.perf_counter()
    data = make_preference_data(args.pairs, args.noise, args.seed,
                                pairs_per_image=args.pairs_per_image,
                                image_size=config.image_size, task=args.task)
    data_s = time.perf_counter() - began

    def progress(step: int, metrics: dict) -> None:
        if "pair_acc" in metrics:
            print(json.dumps({"step": step + 1, "loss": round(metrics["loss"], 4),
                              "heldout_acc": round(metrics["pair_acc"], 4),
                              "heldout_gold_acc": round(metrics.get("gold_acc", -1), 4)}),
                  flush=True)

    result = train_reward_model(config, preferences=data, on_step=progress)
    images = data.images[:16]
    outputs = data.a.select(torch.arange(8 * len(images)) % len(data))
    result.model.score_outputs(images, outputs)  # warm-up
    tick = time.perf_counter()
    result.model.score_outputs(images, outputs)
    score_s = time.perf_counter() - tick

    decided = data.label != 0.5
    figures = {
        "task": args.task, "readout": config.readout, "pairs": args.pairs, "noise": args.noise,
        "pairs_per_image": args.pairs_per_image,
        "rm_heldout_acc": result.heldout.get("pair_acc"),
        "rm_heldout_gold_acc": result.heldout.get("gold_acc"),
        "label_gold_agreement": label_gold_agreement(data.label, data.gold_a, data.gold_b),
        "tie_share": 1 - decided.float().mean().item(),
        "data_s": round(data_s, 1), "train_s": round(result.seconds, 1),
        "score_s": round(score_s, 4), "scored_outputs": len(outputs), **result.sizes,
    }
    if args.out:
        save_reward_model(args.out, result.model, figures)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
