"""`python -m trainer bench detection`: the whole recipe on Synthetic Shapes, with a fixed seed.

Pretrain MLE, tune with REINFORCE on the train split only (the tuned model is the run's best
step on the val split, its start included: `trainer.train.selection`), train the control (the
MLE pretrained for the tuning's wall time more: `mle_continued_*`), evaluate the three on the
held-out test split, and time the pieces. The last line printed is one JSON object (see
`run_benchmark`). Every model is measured at its best: every decoding setting of
`trainer.train.evaluate` is scored and the best mAP counts (the MLE model's best is normally
class-probability scores).
The MLE checkpoint is cached under `runs/bench-detection/` keyed by a hash of its configs;
`--from-scratch` ignores the cache (the figures in docs/benchmarks.md come from such a run).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from trainer.bench import common
from trainer.bench.common import Pretrained, mle_continued, pretrain_cached, timed
from trainer.configs import (
    DataConfig,
    DetectionTaskConfig,
    ModelConfig,
    PretrainConfig,
    TuneConfig,
    config_hash,
)
from trainer.rewards.detection_reference import time_reward_vs_reference
from trainer.train.checkpoint import load_checkpoint
from trainer.train.data import TrainStream, eval_source
from trainer.train.evaluate import DECODINGS, best_decoding, evaluate_model
from trainer.train.loops import pick_device, tune
from trainer.train.metrics import MetricsLog
from trainer.train.mle import make_optimizer, mle_step

MODEL = ModelConfig()
TASK = DetectionTaskConfig(max_boxes=8)
DATA = DataConfig(max_objects=4, eval_images=500)
# Wall-time budgets end both runs (the schedules follow them) on a shared 2-core CPU; the step
# counts are upper bounds that a GPU would reach first.
PRETRAIN = PretrainConfig(steps=100_000, batch_size=16, lr=1e-3, max_seconds=21 * 60)
# lr 3e-6: every rate from 1e-5 up lowered held-out mAP (docs/benchmarks.md, ablations).
TUNE = TuneConfig(steps=20_000, batch_size=8, samples=8, baseline="loo", credit="reward_to_go",
                  lr=3e-6, temperature=0.7, max_seconds=12 * 60)

QUICK_MODEL = dataclasses.replace(MODEL, d_model=64, encoder_layers=1, decoder_layers=1)
QUICK_DATA = dataclasses.replace(DATA, eval_images=50)
QUICK_PRETRAIN = dataclasses.replace(PRETRAIN, steps=60, warmup=10, max_seconds=40)
QUICK_TUNE = dataclasses.replace(TUNE, steps=10, batch_size=4, warmup=2, max_seconds=20,
                                 select_images=50)


def pick_threads(model_config: ModelConfig, batch_size: int) -> int:
    """1 or 2 torch threads, whichever runs an MLE step faster right now: on a CPU shared with
    other work, 2 threads were measured 2.4x slower than 1; on an idle one they are faster."""
    return common.pick_threads("detection", model_config, TASK, DATA, batch_size)


def time_sampling_and_steps(checkpoint_path: Path, data: DataConfig, tune_config: TuneConfig):
    """Cached vs uncached sampling of one REINFORCE batch (same seed, same tokens), and the
    reference cost of a REINFORCE step: sampling N + one MLE step on those N sequences."""
    model, _ = load_checkpoint(checkpoint_path).build(pick_device())
    batch = TrainStream(data, "train", seed=99).next_batch(
        tune_config.batch_size, model.config.image_size).to(model.device)
    images, n = batch.images, tune_config.samples

    def sample(cache: bool):
        generator = torch.Generator(device=model.device).manual_seed(0)
        return model.sample(images, n, generator=generator, use_cache=cache)[0]

    identical = torch.equal(sample(True), sample(False))
    cached_s, uncached_s = timed(lambda: sample(True)), timed(lambda: sample(False), 2)
    tokens = sample(True)
    optimizer = make_optimizer(model, 0.0, 0.0)  # lr 0: timing only
    mle_on_samples_s = timed(lambda: mle_step(model, optimizer, images, tokens, 1.0))
    return {
        "sample_cached_s": round(cached_s, 4),
        "sample_uncached_s": round(uncached_s, 4),
        "cache_speedup": round(uncached_s / cached_s, 2),
        "sample_tokens_identical": identical,
        "sample_plus_mle_step_s": round(cached_s + mle_on_samples_s, 4),
    }


def plan(quick: bool) -> tuple[ModelConfig, DataConfig, PretrainConfig, TuneConfig]:
    """The benchmark's model, data, MLE and tuning configs: the full ones or `--quick`'s."""
    if quick:
        return QUICK_MODEL, QUICK_DATA, QUICK_PRETRAIN, QUICK_TUNE
    return MODEL, DATA, PRETRAIN, TUNE


def bench_dir(runs_dir: Path, quick: bool) -> Path:
    """Where the benchmark keeps its checkpoints and metrics log."""
    return runs_dir / ("bench-detection-quick" if quick else "bench-detection")


def pretrained_mle(quick: bool, runs_dir: Path, *, use_cache: bool, threads: int,
                   log: MetricsLog, progress: bool) -> tuple[Pretrained, int]:
    """The benchmark's MLE checkpoint, cached in `bench_dir` keyed by a hash of its configs
    (pretrained there when missing or not `use_cache`), and the torch thread count for the runs
    after it (`threads` 0: the faster of 1 and 2 now; 0 on a GPU). `bench rlhf` starts from
    the same checkpoint."""
    model_cfg, data, pre_cfg, _ = plan(quick)
    # Keyed before the thread count is chosen: a cached model serves whatever is picked now.
    path = bench_dir(runs_dir, quick) / f"mle-{config_hash(model_cfg, TASK, data, pre_cfg)}.pt"
    if torch.cuda.is_available():
        threads = 0
    elif not threads:
        threads = pick_threads(model_cfg, pre_cfg.batch_size)
    pre_cfg = dataclasses.replace(pre_cfg, threads=threads)
    pretrained = pretrain_cached(path, model_cfg, TASK, data, pre_cfg, task_name="detection",
                                 use_cache=use_cache, log=log, progress=progress)
    return pretrained, threads


def run_benchmark(quick: bool = False, runs_dir: Path = Path("runs"), use_cache: bool = True,
                  progress: bool = True, threads: int = 0) -> dict:
    """Returns the benchmark's figures (percent for COCO metrics, seconds for times);
    `threads` 0 picks the CPU thread count by measuring."""
    began = time.perf_counter()
    _, data, _, tune_cfg = plan(quick)
    root = bench_dir(runs_dir, quick)
    log = MetricsLog(root / "metrics.jsonl")
    pretrained, threads = pretrained_mle(quick, runs_dir, use_cache=use_cache, threads=threads,
                                         log=log, progress=progress)
    tune_cfg = dataclasses.replace(tune_cfg, threads=threads)
    mle, cached = pretrained.checkpoint, pretrained.cached
    pretrain_s, mle_step_s, pretrain_steps = pretrained.seconds, pretrained.step_s, mle.step
    tuned_path = root / "tuned.pt"
    tuned = tune(mle, data, tune_cfg, checkpoint_path=tuned_path, log=log, progress=progress,
                 save_every=10**9)
    continued = mle_continued(pretrained, root / "mle-continued.pt", data, tuned.seconds,
                              threads=threads, log=log, progress=progress)

    source = eval_source(data)
    mle_model, task = mle.build(pick_device())
    mle_metrics, _ = evaluate_model(mle_model, task, source)
    tuned_metrics, _ = evaluate_model(tuned.model, tuned.task, source)
    continued_metrics, _ = evaluate_model(continued.model, continued.task, source)
    mle_best = best_decoding(mle_metrics, list(DECODINGS))
    tuned_best = best_decoding(tuned_metrics, list(DECODINGS))
    continued_best = best_decoding(continued_metrics, list(DECODINGS))
    timings = time_sampling_and_steps(tuned_path, data, tune_cfg)
    reward_timing = time_reward_vs_reference(tune_cfg.batch_size, tune_cfg.samples)
    result = {
        "quick": quick,
        "mle_cached": cached,
        "test_images": len(source),
        "mle_decoding": mle_best,
        "tuned_decoding": tuned_best,
        "mle_continued_decoding": continued_best,
        "mle_by_decoding": mle_metrics,
        "tuned_by_decoding": tuned_metrics,
        "mle_continued_by_decoding": continued_metrics,
        "tuned_selection": tuned.selection.to_dict() if tuned.selection else None,
        "threads": threads,
        "pretrain_steps": pretrain_steps,
        "tune_steps": tuned.steps,
        "mle_continued_steps": continued.steps - pretrain_steps,
        **timings,
        "reward_s": round(reward_timing["reward_s"], 5),
        "pycocotools_reward_equiv_s": round(reward_timing["pycocotools_reward_equiv_s"], 5),
        "reward_speedup": round(reward_timing["speedup"], 1),
        "pretrain_s": round(pretrain_s, 1),
        "tune_s": round(tuned.seconds, 1),
        "mle_continued_s": round(continued.seconds, 1),
        "mle_step_s": round(mle_step_s, 4),
        "reinforce_step_s": round(tuned.step_s, 4),
    }
    for figure in ("map", "ap50", "ar100"):
        result[f"mle_{figure}"] = mle_metrics[mle_best][figure]
        result[f"tuned_{figure}"] = tuned_metrics[tuned_best][figure]
        result[f"mle_continued_{figure}"] = continued_metrics[continued_best][figure]
    result["reinforce_step_ratio"] = round(
        result["reinforce_step_s"] / result["sample_plus_mle_step_s"], 2)
    result["total_s"] = round(time.perf_counter() - began, 1)
    log.write("bench", 0, **{k: v for k, v in result.items() if not isinstance(v, dict)})
    return result
