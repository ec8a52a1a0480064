"""What the trainer's benchmarks share: timing a call, picking the CPU thread count, the MLE
checkpoint cached under a hash of its configs (so a rerun tunes the same pretrained model), and
the control every tuning is measured against: that MLE trained by MLE for the tuning's wall
time more (`mle_continued`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.configs import DataConfig, PretrainConfig, from_dict
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint, load_checkpoint
from trainer.train.data import TrainStream, shapes_config
from trainer.train.loops import RunResult, pretrain
from trainer.train.metrics import MetricsLog
from trainer.train.mle import make_optimizer, mle_step, warmup_cosine

MORE_STEPS = 1_000_000  # the control's step bound: its wall-time budget ends it first


def timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Best wall time of `repeats` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def pick_threads(task_name: str, model_config: Any, task_config: Any, data: DataConfig,
                 batch_size: int) -> int:
    """1 or 2 torch threads, whichever runs an MLE step of the task faster right now: on a CPU
    shared with other work, 2 threads were measured 2.4x slower than 1; on an idle one they are
    faster."""
    entry = task_entry(task_name)
    stream = TrainStream(data, "train", seed=98)
    task = entry.make_task(task_config, stream.class_names, shapes_config(data))
    model = entry.make_model(model_config, task.spec)
    optimizer = make_optimizer(model, 1e-4, 0.0)
    if entry.shapes_only:
        stream.batches_with(task.collate)
    batch = stream.next_batch(batch_size, model_config.image_size)
    tokens = task.targets(batch, None)
    timings = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        mle_step(model, optimizer, batch.images, tokens, 1.0)
        timings[threads] = timed(lambda: mle_step(model, optimizer, batch.images, tokens, 1.0))
    return min(timings, key=timings.get)


@dataclass
class Pretrained:
    """An MLE checkpoint with the wall time and mean step time of the run that wrote it."""

    checkpoint: Checkpoint
    seconds: float
    step_s: float
    cached: bool  # read from the cache rather than trained now


def pretrain_cached(
    path: Path, model_config: Any, task_config: Any, data: DataConfig, config: PretrainConfig,
    *, task_name: str, use_cache: bool, log: MetricsLog, progress: bool,
) -> Pretrained:
    """The MLE checkpoint at `path` when `use_cache` and it exists, else pretrain it there.

    The run's timings are stored in the checkpoint's run config, so a cached run still
    reports them (NaN for a checkpoint written without them).
    """
    if use_cache and path.is_file():
        checkpoint = load_checkpoint(path)
        return Pretrained(checkpoint, checkpoint.run_config.get("seconds", float("nan")),
                          checkpoint.run_config.get("step_s", float("nan")), cached=True)
    result = pretrain(model_config, task_config, data, config, checkpoint_path=path,
                      task_name=task_name, log=log, progress=progress, save_every=10**9)
    checkpoint = load_checkpoint(path)
    checkpoint.run_config.update(seconds=result.seconds, step_s=result.step_s)
    rewrite_run_config(path, checkpoint.run_config)
    return Pretrained(checkpoint, result.seconds, result.step_s, cached=False)


def rewrite_run_config(path: Path, run_config: dict) -> None:
    """Replace the run config stored in the checkpoint at `path`."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["run_config"] = run_config
    torch.save(payload, path)


def mle_continued(pretrained: Pretrained, path: Path, data: DataConfig, seconds: float, *,
                  threads: int, log: MetricsLog, progress: bool) -> RunResult:
    """The control of a tuning run: the MLE checkpoint pretrained for `seconds` more (the
    tuning's wall time), resumed with its optimiser state on the scenes after those it saw.

    Its schedule ended at its floor rate, so the control goes on from that rate (no warmup),
    decaying by its cosine to a tenth of it at the end of `seconds`: a second cycle from the
    peak rate would first undo some of what the first one reached.
    """
    mle = pretrained.checkpoint
    ran = from_dict(PretrainConfig, mle.run_config)
    floor = ran.lr * warmup_cosine(mle.step, ran.steps, ran.warmup, time_fraction=1.0)
    config = dataclasses.replace(ran, steps=mle.step + MORE_STEPS, lr=floor, warmup=0,
                                 max_seconds=seconds, threads=threads)
    return pretrain(mle.model_config, mle.task_config, data, config, checkpoint_path=path,
                    task_name=mle.task_name, resume=mle, log=log, progress=progress,
                    save_every=10**9)
