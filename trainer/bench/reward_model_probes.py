"""Probe behind `bench rlhf`'s choice of readout per task (`trainer.bench.rlhf.RM_CONFIGS`).

    .venv/bin/python -m trainer.bench.reward_model_probes readouts --task colorization [--quick]
        [--pairs 400] [--steps 150] [--runs runs]

`readouts`: on the benchmark's own kind of pairs (two samples of the task's MLE policy per train
scene of the reward model's stretch, simulated labels at the task's default noise), a reward
model with a network of its own (detection 'boxes' and 'image', captioning 'tokens', the grid
tasks 'image') and one started from the policy ('policy', belief 0 and belief 1) each train
`steps` steps; printed per readout: held-out pairwise accuracy against the labels and against
gold, the untrained ('step 0') gold accuracy, the seconds. The MLE is the task benchmark's
cached checkpoint (`--quick`: the quick one; pretrained when missing). A short probe, not a
benchmark: one seed, small data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from trainer.bench.rlhf import RLHF_TASKS, bench_preferences, plan, pretrained_mle
from trainer.configs import READOUTS_OF_TASK, RewardModelConfig
from trainer.reward_model.data import split_by_image
from trainer.reward_model.model import RewardModel
from trainer.reward_model.tasks import judging
from trainer.reward_model.train import pairwise_accuracy, train_reward_model
from trainer.train.metrics import MetricsLog

# Learning rates: the config's default for a network of its own (trained from scratch), the
# benchmark's for the policy readout (a pretrained network: a smaller step).
OWN_LR, POLICY_LR = 2e-3, 3e-4


def readouts(task: str, quick: bool, pairs: int, steps: int, runs: Path) -> list[dict]:
    torch.set_num_threads(1)
    pretrained, _ = pretrained_mle(task, quick, runs, use_cache=True, threads=1,
                                   log=MetricsLog(None), progress=False)
    mle = pretrained.checkpoint
    bench = plan(task, quick)
    policy, policy_task = mle.build("cpu")
    policy.eval()
    data = bench_preferences(policy, policy_task, bench.data, pairs, judging(task).noise,
                             bench.tune.temperature, task_name=task)
    heldout = split_by_image(data, 0.2, 0)[1]
    base = dataclasses.replace(bench.rm, steps=steps, eval_every=steps, warmup=min(30, steps // 5),
                               threads=1)
    variants = [(name, {"readout": name, "lr": OWN_LR, "weight_decay": 0.5})
                for name in READOUTS_OF_TASK[task] if name != "policy"]
    variants += [("policy", {"readout": "policy", "lr": POLICY_LR, "belief_init": 0.0}),
                 ("policy_belief1", {"readout": "policy", "lr": POLICY_LR, "belief_init": 1.0})]
    rows = []
    for name, changes in variants:
        config: RewardModelConfig = dataclasses.replace(base, **changes)
        torch.manual_seed(0)
        untrained = RewardModel(config, mle if config.readout == "policy" else None)
        before = pairwise_accuracy(untrained, heldout).get("gold_acc")
        tick = time.perf_counter()
        result = train_reward_model(config, preferences=data, policy=mle)
        rows.append({"task": task, "readout": name, "pairs": len(data), "steps": steps,
                     "lr": config.lr, "heldout_acc": round(result.heldout["pair_acc"], 4),
                     "heldout_gold_acc": round(result.heldout.get("gold_acc", float("nan")), 4),
                     "gold_acc_step0": None if before is None else round(before, 4),
                     "seconds": round(time.perf_counter() - tick, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["readouts"])
    parser.add_argument("--task", choices=RLHF_TASKS, required=True)
    parser.add_argument("--quick", action="store_true", help="the quick benchmark's MLE")
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args()
    readouts(args.task, args.quick, args.pairs, args.steps, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
