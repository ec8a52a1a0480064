"""The two training runs: MLE pretraining and REINFORCE tuning, with checkpoints and logs.

Both loops are thin: draw a batch, call the step function (`mle_step`, `reinforce_step`), log
its metrics, checkpoint. The stream position is stored with the weights, so `resume` continues
with the scenes the interrupted run had not seen yet. Tuning also scores its policy on held-out
images every `select_every` steps and ends with the best of them, the start included
(`trainer.train.selection`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.configs import (
    DataConfig,
    PretrainConfig,
    TuneConfig,
    to_dict,
)
from trainer.reward_model.model import RewardModel
from trainer.reward_model.reward import LearnedRewardTask
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint, save_checkpoint
from trainer.train.data import TrainStream, shapes_config
from trainer.train.device import pick_device
from trainer.train.distributed import image_generators, join
from trainer.train.metrics import MetricsLog
from trainer.train.mle import make_optimizer, mle_step, warmup_cosine
from trainer.train.progress import RunProgress
from trainer.train.reinforce import reinforce_step
from trainer.train.selection import Selection, Selector, heldout_for


@dataclass
class RunResult:
    model: nn.Module
    task: Any
    class_names: tuple[str, ...]
    seconds: float  # wall time of the loop
    step_s: float  # mean seconds per step (after the first few)
    steps: int  # the step reached (less than configured when a time budget ran out)
    # Tuning's held-out selection (None: pretraining, or select_every=0); `model` is its best.
    selection: Selection | None = None


def _set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def _time_fraction(began: float, budget: float) -> float:
    """Share of the wall-time budget spent (0 without a budget)."""
    return (time.perf_counter() - began) / budget if budget > 0 else 0.0


def _timed_mean(times: list[float]) -> float:
    tail = times[min(5, len(times) // 2):]  # the first steps pay for allocator warm-up
    return sum(tail) / max(1, len(tail))


def pretrain(
    model_config: Any,
    task_config: Any,
    data: DataConfig,
    config: PretrainConfig,
    *,
    checkpoint_path: str | Path,
    task_name: str = "detection",
    resume: Checkpoint | None = None,
    log: MetricsLog | None = None,
    progress: bool = True,
    save_every: int = 1000,
) -> RunResult:
    """MLE pretraining of task `task_name` (`trainer.tasks.registry`, whose config classes
    `model_config` and `task_config` are) from scratch, or from `resume` (whose task and
    configs then apply)."""
    _set_threads(config.threads)
    device = pick_device()
    torch.manual_seed(config.seed)
    task_name = resume.task_name if resume else task_name
    entry = task_entry(task_name)
    start = resume.step if resume else 0
    position = resume.run_config.get("stream_position", 0) if resume else 0
    stream = TrainStream(data, "train", seed=config.seed, start=position)
    class_names = resume.class_names if resume else stream.class_names
    if resume:
        model, task = resume.build(device)
    else:
        task = entry.make_task(task_config, class_names, shapes_config(data))
        model = entry.make_model(model_config, task.spec).to(device)
    if entry.shapes_only:
        stream.batches_with(task.collate)
    optimizer = make_optimizer(model, config.lr, config.weight_decay)
    if resume and resume.optimizer:
        optimizer.load_state_dict(resume.optimizer)
    order = torch.Generator().manual_seed(config.seed + start)
    log = log or MetricsLog(None)

    def save(step: int) -> None:
        save_checkpoint(
            checkpoint_path, model=model, task=task, class_names=class_names, stage="pretrain",
            step=step, run_config=_with_position(config, stream.position), data_config=data,
            optimizer=optimizer, task_name=task_name,
        )

    times: list[float] = []
    began = time.perf_counter()
    bar = RunProgress("pretrain", start=start, steps=config.steps,
                      max_seconds=config.max_seconds, enabled=progress)
    for step in range(start, config.steps):
        tick = time.perf_counter()
        spent = _time_fraction(began, config.max_seconds)
        if spent >= 1:
            break
        for group in optimizer.param_groups:
            group["lr"] = config.lr * warmup_cosine(step, config.steps, config.warmup,
                                                    time_fraction=spent)
        batch = stream.next_batch(config.batch_size, model.config.image_size).to(device)
        metrics = mle_step(
            model, optimizer, batch.images, task.targets(batch, order), config.grad_clip
        )
        times.append(time.perf_counter() - tick)
        shown = {}
        if step % config.log_every == 0 or step == config.steps - 1:
            log.write("pretrain", step, lr=optimizer.param_groups[0]["lr"], **metrics)
            shown = {"loss": f"{metrics['loss']:.3f}"}
        bar.step_done(step, **shown)
        if (step + 1) % save_every == 0:
            save(step + 1)
    bar.close()
    done = start + len(times)
    save(done)
    return RunResult(model, task, class_names, time.perf_counter() - began, _timed_mean(times),
                     done)


def tune(
    pretrained: Checkpoint,
    data: DataConfig,
    config: TuneConfig,
    *,
    checkpoint_path: str | Path,
    reward_model: RewardModel | None = None,
    reward_scale: float = 1.0,
    reference: Checkpoint | None = None,
    log: MetricsLog | None = None,
    progress: bool = True,
    save_every: int = 200,
) -> RunResult:
    """REINFORCE tuning of a checkpoint on the train split (a stretch MLE did not use).

    Every `config.select_every` steps, at the first and after the last, the policy is scored
    on held-out images (`trainer.train.selection`); the run's final checkpoint and the model
    returned are the best-scoring ones, the start included, and `RunResult.selection` (also in
    the checkpoint's run config) says what was measured and what was kept. A resumed run keeps
    the best so far, stored in its checkpoints.

    With `reward_model`, samples are scored by it (times `reward_scale`) instead of the metric,
    which is still logged beside it as `metric_reward`. `reference` is the policy the KL
    penalty (`kl_coef > 0`) anchors to: by default `pretrained` itself, which is right when
    tuning starts; resuming a "tune"-stage checkpoint with `kl_coef > 0` requires the original
    starting checkpoint here (the resumed weights have already moved), else ValueError.

    Under torchrun (`config.processes > 1`, see `trainer.train.launch`) each process takes an
    equal share of every batch and the processes average their gradients
    (`trainer.train.distributed`); only rank 0 logs, shows progress and writes checkpoints.
    """
    _set_threads(config.threads)
    world = join(config.processes, pick_device())
    device = world.device
    torch.manual_seed(config.seed)
    resumed = pretrained.stage == "tune"
    start = pretrained.step if resumed else 0
    position = pretrained.run_config.get("stream_position", 0) if resumed else 0
    stream = TrainStream(data, "train", seed=config.seed, start=position)
    if reward_model is not None and reward_model.config.task != pretrained.task_name:
        raise ValueError(f"the reward model scores {reward_model.config.task} outputs, not "
                         f"{pretrained.task_name}")
    if config.fill and pretrained.task_name != "detection":
        raise ValueError(f"fill=true fills a sequence with detection boxes; a "
                         f"{pretrained.task_name} model writes one output per sequence")
    model, task = pretrained.build(device)
    if task_entry(pretrained.task_name).shapes_only:
        stream.batches_with(task.collate)
    policy_task = task if reward_model is None else LearnedRewardTask(
        task, reward_model.to(device), scale=reward_scale)
    _check_tune_config(config, policy_task)
    frozen = _reference_policy(model, pretrained, reference, config, device)
    selector = None
    if config.select_every:
        heldout = heldout_for(pretrained.task_name, data, config, stream, reward_model)
        selector = Selector.begin(
            heldout, config.select_every, model, start,
            pretrained.run_config.get("selection") if resumed else None,
            pretrained.best_state, active=world.leader)
    optimizer = make_optimizer(model, config.lr, 0.0, readout_lr=config.readout_lr)
    if resumed and pretrained.optimizer:
        optimizer.load_state_dict(pretrained.optimizer)
        for group in optimizer.param_groups:  # saved before groups kept their peak rate
            group.setdefault("base_lr", config.lr)
    log = (log or MetricsLog(None)) if world.leader else MetricsLog(None)

    def save(step: int, final: bool = False) -> None:
        """A checkpoint; before the end with the best weights so far beside the model's, at the
        end with the best weights as the model's."""
        if world.leader:
            run_config = _with_position(config, stream.position)
            run_config["selection"] = selector.record.to_dict() if selector else None
            save_checkpoint(
                checkpoint_path, model=model, task=task, class_names=pretrained.class_names,
                stage="tune", step=step, run_config=run_config, data_config=data,
                optimizer=optimizer, task_name=pretrained.task_name,
                best_state=None if final or selector is None else selector.best_state(),
            )

    times: list[float] = []
    began = time.perf_counter()
    bar = RunProgress("tune", start=start, steps=config.steps, max_seconds=config.max_seconds,
                      enabled=progress and world.leader)
    for step in range(start, config.steps):
        if world.any(_time_fraction(began, config.max_seconds) >= 1):
            break
        selecting = selector is not None and selector.due(step)
        scored = selector.select(step, model, task) if selecting else {}
        tick = time.perf_counter()  # the step's time, without the held-out scoring
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * min(1.0, (step + 1) / max(1, config.warmup))
        # This process's share of the batch; each image samples with its own generator.
        batch = stream.next_batch(config.batch_size, model.config.image_size, world.shard)
        sampler = image_generators(config.seed, step, world.images(config.batch_size), device)
        metrics = reinforce_step(model, optimizer, policy_task, batch.to(device), config,
                                 sampler, frozen)
        times.append(time.perf_counter() - tick)
        shown = {}
        if step % config.log_every == 0 or step == config.steps - 1 or selecting:
            metrics = world.mean(metrics)
            log.write("tune", step, lr=optimizer.param_groups[0]["lr"], **metrics, **scored)
            shown = {"reward": f"{metrics['reward']:.3f}"}
        bar.step_done(step, **shown)
        if (step + 1) % save_every == 0:
            save(step + 1)
    bar.close()
    done = start + len(times)
    # The policy after the last update has no step line of its own: a "select" line.
    if selector is not None and (last := selector.finish(done, model, task)):
        log.write("select", done, **last)
    save(done, final=True)
    return RunResult(model, task, pretrained.class_names, time.perf_counter() - began,
                     _timed_mean(times), done, selector.record if selector else None)


def _check_tune_config(config: TuneConfig, task: Any) -> None:
    """ValueError naming the setting when this task cannot do what `config` asks (the config
    checked its own values when it was built)."""
    if config.credit == "reward_to_go" and not hasattr(task, "rewards_to_go"):
        raise ValueError("credit='reward_to_go' needs a reward that adds up output by output "
                         "(the detection metric); this reward scores whole outputs only")


def _reference_policy(
    model: nn.Module,
    pretrained: Checkpoint,
    reference: Checkpoint | None,
    config: TuneConfig,
    device: torch.device,
) -> nn.Module | None:
    """The frozen policy of the KL penalty, or None when there is no penalty."""
    if config.kl_coef <= 0:
        return None
    if reference is None:
        if pretrained.stage == "tune":
            raise ValueError("resuming a tune checkpoint with kl_coef > 0 needs the starting "
                             "checkpoint as the KL reference (CLI: --reference PATH)")
        return copy.deepcopy(model).eval().requires_grad_(False)
    if reference.model_config != pretrained.model_config or \
            reference.class_names != pretrained.class_names:
        raise ValueError("the KL reference checkpoint's model differs from the tuned one")
    frozen, _ = reference.build(device)
    return frozen.eval().requires_grad_(False)


def _with_position(config: PretrainConfig | TuneConfig, position: int) -> dict:
    return {**to_dict(config), "stream_position": position}
