"""`python -m trainer bench captioning|panoptic|colorization`: the paper's recipe on the tasks that
learn from Synthetic Shapes scenes, with a fixed seed.

As `bench detection`: pretrain MLE (cached under `runs/bench-<task>/` by a hash of its configs;
`--from-scratch` ignores the cache), tune with REINFORCE against the task's reward on the train
split (the tuned model is the run's best step on val scenes, its start included:
`trainer.train.selection`), train the control (the MLE pretrained for the tuning's wall time
more), evaluate the three on the held-out test scenes with the task's evaluation (the
registry's `evaluate_scenes`: pycocoevalcap CIDEr-D, torchmetrics PQ, colourfulness and PSNR),
and time the pieces. Wall-time budgets end the runs on a shared 2-core CPU (the step counts are
upper bounds that a GPU reaches first): a full run's budgets add up to 50 minutes with a fresh
MLE (22 min MLE, 14 min tuning, 14 min control), evaluation aside; `--quick`'s to 80 seconds.
The last line printed is one JSON object (see `run_task_benchmark`): `mle_<metric>`,
`tuned_<metric>` and `mle_continued_<metric>` for each reported figure
(`BENCHES[task].figures`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.bench.common import mle_continued, pick_threads, pretrain_cached
from trainer.configs import DataConfig, ModelConfig, PretrainConfig, TuneConfig, config_hash
from trainer.data.shapes import generate_scene, scene_seed
from trainer.models.colorizer import ColorizerConfig
from trainer.tasks.captioning import CaptioningTaskConfig
from trainer.tasks.colorization import ColorizationTaskConfig
from trainer.tasks.panoptic import PanopticTaskConfig
from trainer.tasks.registry import task_entry
from trainer.train.data import shapes_config
from trainer.train.loops import pick_device, tune
from trainer.train.metrics import MetricsLog


@dataclass(frozen=True)
class BenchPlan:
    """Everything one benchmark run trains and evaluates with."""

    model: Any  # the task's model config (registry)
    task: Any  # the task's config (registry)
    data: DataConfig  # eval_images and eval_split choose the evaluated scenes
    pretrain: PretrainConfig
    tune: TuneConfig


@dataclass(frozen=True)
class TaskBench:
    """A task's benchmark: its plans and the figures reported as mle_<name> / tuned_<name>."""

    task: str
    figures: dict[str, str]  # reported name -> key of the task's evaluation
    full: BenchPlan
    quick: BenchPlan


def _quick(plan: BenchPlan, model: Any, task: Any | None = None) -> BenchPlan:
    """A plan shrunk to run in well under 2 minutes: small model, 40 s MLE, 20 s tuning, 50
    evaluated scenes."""
    return BenchPlan(
        model=model,
        task=task or plan.task,
        data=dataclasses.replace(plan.data, eval_images=50),
        pretrain=dataclasses.replace(plan.pretrain, steps=60, warmup=10, max_seconds=40),
        tune=dataclasses.replace(plan.tune, steps=10, batch_size=4, warmup=2, max_seconds=20,
                                 select_images=50),
    )


# Budgets: 22 min MLE + 14 min tuning + 14 min control (the tuning's time) on 2 cores.
_DATA = DataConfig(max_objects=4, eval_images=500)
_PRETRAIN = PretrainConfig(steps=100_000, batch_size=16, lr=1e-3, max_seconds=22 * 60)
_TUNE = TuneConfig(steps=20_000, batch_size=8, samples=8, baseline="loo", lr=1e-4,
                   temperature=1.0, max_seconds=14 * 60)

_CAPTIONING = BenchPlan(ModelConfig(), CaptioningTaskConfig(), _DATA, _PRETRAIN, _TUNE)
# Panoptic samples at temperature 0.5: at 1, independent patches scatter ~20 segments a map
# and a short CPU probe (a weak MLE model) collapsed to all-background maps within 100 steps.
# Probe of this plan cut short (7 min MLE, 4 min tuning; 200 val scenes): PQ 22.3 -> 24.7.
_PANOPTIC = BenchPlan(ColorizerConfig(), PanopticTaskConfig(), _DATA,
                      dataclasses.replace(_PRETRAIN, lr=2e-3),
                      dataclasses.replace(_TUNE, lr=5e-5, temperature=0.5))
_COLORIZATION = BenchPlan(ColorizerConfig(), ColorizationTaskConfig(), _DATA, _PRETRAIN, _TUNE)

BENCHES: dict[str, TaskBench] = {
    "captioning": TaskBench(
        "captioning", {"cider": "cider", "bleu4": "bleu4"}, _CAPTIONING,
        _quick(_CAPTIONING,
               dataclasses.replace(ModelConfig(), d_model=64, encoder_layers=1, decoder_layers=1),
               CaptioningTaskConfig(idf_images=200)),
    ),
    "panoptic": TaskBench(
        "panoptic", {"pq": "pq", "sq": "sq", "rq": "rq"}, _PANOPTIC,
        _quick(_PANOPTIC, ColorizerConfig(width=32, blocks=2)),
    ),
    "colorization": TaskBench(
        "colorization", {"colorfulness": "colorfulness", "fidelity": "psnr"}, _COLORIZATION,
        _quick(_COLORIZATION, ColorizerConfig(width=32, blocks=2)),
    ),
}


def run_task_benchmark(
    name: str, quick: bool = False, runs_dir: Path = Path("runs"), use_cache: bool = True,
    progress: bool = True, plan: BenchPlan | None = None, threads: int = 0,
) -> dict:
    """Pretrain, tune and evaluate task `name` with its plan (`plan` replaces it, for tests;
    `threads` 0 picks the CPU thread count by measuring);
    returns the figures (the task's units: CIDEr 0-10, PQ in percent, PSNR in dB) and times
    (seconds)."""
    began = time.perf_counter()
    bench = BENCHES[name]
    plan = plan or (bench.quick if quick else bench.full)
    root = runs_dir / (f"bench-{name}-quick" if quick else f"bench-{name}")
    log = MetricsLog(root / "metrics.jsonl")
    # Keyed before the thread count is chosen: a cached model serves whatever is picked now.
    mle_path = root / f"mle-{config_hash(plan.model, plan.task, plan.data, plan.pretrain)}.pt"
    if torch.cuda.is_available():
        threads = 0
    elif not threads:
        threads = pick_threads(name, plan.model, plan.task, plan.data, plan.pretrain.batch_size)
    pre_cfg = dataclasses.replace(plan.pretrain, threads=threads)
    tune_cfg = dataclasses.replace(plan.tune, threads=threads)
    pretrained = pretrain_cached(mle_path, plan.model, plan.task, plan.data, pre_cfg,
                                 task_name=name, use_cache=use_cache, log=log, progress=progress)
    mle = pretrained.checkpoint
    tuned = tune(mle, plan.data, tune_cfg, checkpoint_path=root / "tuned.pt", log=log,
                 progress=progress, save_every=10**9)
    continued = mle_continued(pretrained, root / "mle-continued.pt", plan.data, tuned.seconds,
                              threads=threads, log=log, progress=progress)

    evaluate = task_entry(name).evaluate_scenes
    scenes = [generate_scene(scene_seed(plan.data.eval_split, i), shapes_config(plan.data))
              for i in range(plan.data.eval_images)]
    eval_began = time.perf_counter()
    mle_model, mle_task = mle.build(pick_device())
    mle_figures = evaluate(mle_model.eval(), mle_task, scenes)
    tuned_figures = evaluate(tuned.model.eval(), tuned.task, scenes)
    continued_figures = evaluate(continued.model.eval(), continued.task, scenes)
    result: dict[str, Any] = {
        "task": name,
        "quick": quick,
        "mle_cached": pretrained.cached,
        "test_images": len(scenes),
        "mle": _rounded(mle_figures),
        "tuned": _rounded(tuned_figures),
        "mle_continued": _rounded(continued_figures),
        "tuned_selection": tuned.selection.to_dict() if tuned.selection else None,
        "threads": threads,
        "pretrain_steps": mle.step,
        "tune_steps": tuned.steps,
        "mle_continued_steps": continued.steps - mle.step,
        "pretrain_s": round(pretrained.seconds, 1),
        "tune_s": round(tuned.seconds, 1),
        "mle_continued_s": round(continued.seconds, 1),
        "eval_s": round(time.perf_counter() - eval_began, 1),
        "mle_step_s": round(pretrained.step_s, 4),
        "reinforce_step_s": round(tuned.step_s, 4),
    }
    for reported, key in bench.figures.items():
        result[f"mle_{reported}"] = round(mle_figures[key], 4)
        result[f"tuned_{reported}"] = round(tuned_figures[key], 4)
        result[f"mle_continued_{reported}"] = round(continued_figures[key], 4)
    result["total_s"] = round(time.perf_counter() - began, 1)
    log.write("bench", 0, **{k: v for k, v in result.items() if not isinstance(v, dict)})
    return result


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in figures.items()}
