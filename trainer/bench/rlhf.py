"""`python -m trainer bench rlhf --task T [--rounds 2]`: tuning against a reward model learned
from simulated preferences, beside tuning against the metric itself, on a Synthetic Shapes task
(detection, captioning, colorization or panoptic).

0. MLE: the task benchmark's checkpoint (same configs, same cache under `runs/bench-<task>/`;
   pretrained there when missing).
Then, each round r = 1, 2, ...:
1. Preferences: `pairs` comparisons of two samples of the round's starting policy (round 1 the
   MLE, later rounds the policy the previous round tuned against the reward model) at the
   tuning temperature, on train scenes of the reward model's own stretch of the stream (a new
   stretch each round), answered by the simulated annotators' preference model
   (`trainer.reward_model.simulate`, as the platform's): a preferred with probability
   sigmoid((gold_a - gold_b) / noise), gold the task's own reward against the scene's ground
   truth (detection: per object). They join the earlier rounds' preferences.
2. A reward model trained anew on all of them (readout per task: `RM_CONFIGS`); its pairwise
   accuracy on held-out images against the labels (`rm_heldout_acc`) and against the hidden
   gold order (`rm_heldout_gold_acc`); how often two independent draws of labels on those
   held-out pairs agree (`annotator_agreement`) and how often the labels name the gold-better
   output (`label_gold_agreement`): what the noise does.
3. Two tunings continued from the previous round's (the MLE in round 1), with one TuneConfig
   and the same budget (the task benchmark's, split over the rounds): against the reward model
   (with a KL penalty to the MLE policy) and against the metric.
4. On held-out test scenes: the task's metric in its usual units for the three policies
   (`gold_mle`, `gold_learned`, `gold_metric`: mAP %, pycocoevalcap CIDEr-D, the colorization
   reward, PQ %); on samples of some test scenes, the reward model's accuracy against gold on
   pairs of the round's starting policy (`rm_acc_on_policy_before`) and of the policy it just
   tuned (`rm_acc_on_policy_after`: a reward model hacked by its policy falls here), the tuned
   policy's mean reward-model score (`rm_score_learned`, beside the MLE's `rm_score_mle`) and
   its KL to the MLE (`kl_to_mle`), and `gain_ratio` = (learned - mle) / (metric - mle).

The last line printed is one JSON object (see `run_rlhf_benchmark`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.bench import detection
from trainer.bench.common import Pretrained, pick_threads, pretrain_cached
from trainer.bench.shapes_tasks import BENCHES
from trainer.configs import DataConfig, RewardModelConfig, TuneConfig, config_hash
from trainer.data.detection import ShapesStream
from trainer.data.shapes import generate_scene, scene_seed
from trainer.reward_model.candidates import (
    RM_SCENE_OFFSET,
    make_preference_data,
    policy_source,
    scene_stream,
)
from trainer.reward_model.data import PreferenceDataset, join_preferences, split_by_image
from trainer.reward_model.model import RewardModel, save_reward_model
from trainer.reward_model.simulate import (
    annotator_agreement,
    simulate_preferences,
)
from trainer.reward_model.simulate import (
    label_gold_agreement as labels_agree_with_gold,
)
from trainer.reward_model.tasks import judging
from trainer.reward_model.train import pairwise_accuracy, train_reward_model
from trainer.tasks.registry import task_entry
from trainer.train.checkpoint import Checkpoint, load_checkpoint
from trainer.train.data import eval_source, shapes_config
from trainer.train.evaluate import DECODINGS, best_decoding, evaluate_model
from trainer.train.loops import RunResult, pick_device, tune
from trainer.train.metrics import MetricsLog

RLHF_TASKS = ("detection", "captioning", "colorization", "panoptic")
DEFAULT_PAIRS, QUICK_PAIRS = 2000, 120  # per round
MIN_PAIRS = 20  # 10 images: the held-out fifth keeps 2 images (4 pairs) to measure on
DEFAULT_ROUNDS = 2
# KL penalty of the learned runs, per nat of log p(y) - log p_mle(y) of a whole sample, in
# metric units (detection: the reward of an image): 0.05 charges a detection sample that
# drifted 2 nats as much as a tenth of a matched box. Not tuned by a probe; `kl_to_mle` shows
# how far each run drifted.
DEFAULT_KL_COEF = 0.05
# The reward models. Detection starts from the MLE policy it will tune: from scratch, the
# 'boxes' and 'image' readouts stayed at chance on these pairs (held-out 0.48 and 0.51), since
# half of the decided pairs differ only in a box's class. Started from the policy: 0.57 after
# 400 steps at lr 1e-3, 0.59 after 1,000 at 3e-4. Started as the policy's likelihood of an
# output (belief_init 1) it judges pairs better (0.67 untrained), but tuned against it the
# policy dropped boxes and lost 4.3 mAP (docs/benchmarks.md).
# The other tasks by `python -m trainer.bench.reward_model_probes readouts --quick --pairs 800
# --steps 200` (the quick MLEs' pairs, one seed; held-out gold accuracy, ~50-70 decided pairs,
# so +-0.06):
# captioning 'tokens' 0.71 against 'policy' 0.51 (the captioning decoder's states barely moved
# off chance at lr 3e-4); colorization 'policy' 0.68 against 'image' 0.66, panoptic 'policy'
# 0.75 against 'image' 0.72, both within noise and 1.6-3x slower, but the policy's features
# only get better with a stronger MLE (as detection's did); belief_init 1 was no better (0.59,
# 0.75, 0.46).
_POLICY = RewardModelConfig(readout="policy", steps=1000, lr=3e-4, warmup=30, weight_decay=0.05,
                            belief_init=0.0)
RM_CONFIGS: dict[str, RewardModelConfig] = {
    "detection": dataclasses.replace(_POLICY, image_size=detection.MODEL.image_size),
    "captioning": RewardModelConfig(task="captioning", readout="tokens", steps=1000),
    "colorization": dataclasses.replace(_POLICY, task="colorization"),
    "panoptic": dataclasses.replace(_POLICY, task="panoptic"),
}
QUICK_RM_STEPS, QUICK_RM_BATCH = 30, 16
# The metric each task benchmark reports, as its evaluation names it (detection: mAP).
METRICS = {"detection": "map", "captioning": "cider", "colorization": "reward", "panoptic": "pq"}
SCORED_IMAGES, QUICK_SCORED_IMAGES = 200, 20  # test scenes whose samples are scored
SCORED_SAMPLES = 4  # samples per scored image
SEED = 0


def check_settings(noise: float, pairs: int, kl_coef: float, rounds: int = 1,
                   task: str = "detection") -> None:
    """ValueError naming the setting the benchmark cannot run with."""
    if task not in RLHF_TASKS:
        raise ValueError(f"--task must be one of {', '.join(RLHF_TASKS)}, got {task!r}")
    if not noise > 0:
        raise ValueError(f"--noise must be > 0 (the learned reward is scaled by it), got {noise}")
    if pairs < MIN_PAIRS:
        raise ValueError(f"--pairs must be at least {MIN_PAIRS}, got {pairs}")
    if not kl_coef >= 0:
        raise ValueError(f"--kl-coef must be >= 0, got {kl_coef}")
    if not 1 <= rounds <= 10:
        raise ValueError(f"--rounds must lie in 1..10, got {rounds}")


def _figure(value: float | None) -> float | None:
    """Rounded for the report; None (JSON null) where nothing could be measured (e.g. every
    held-out pair a tie)."""
    return None if value is None or math.isnan(value) else round(value, 4)


def learned_start(mle: Checkpoint) -> Checkpoint:
    """The MLE checkpoint to tune against the reward model. Detection: its confidence token is
    not trained (the only target for it is the metric's IoU, from ground truth the annotators
    never give); the other tasks have no such token."""
    if mle.task_name != "detection":
        return mle
    task_config = dataclasses.replace(mle.task_config, confidence_weight=0.0)
    return dataclasses.replace(mle, task_config=task_config)


def label_gold_agreement(data: PreferenceDataset) -> float:
    """How often a decided label names the better output by gold: the ceiling of
    `rm_heldout_acc` (pairs tied in gold left out)."""
    return labels_agree_with_gold(data.label, data.gold_a, data.gold_b)


@dataclass(frozen=True)
class Plan:
    """What one task's benchmark runs with."""

    task: str
    data: DataConfig
    tune: TuneConfig  # one method's whole tuning budget (split over the rounds)
    rm: RewardModelConfig
    gold_to_reward: float  # reward units per gold unit (detection: objects per scene)


def plan(task: str, quick: bool) -> Plan:
    if task == "detection":
        _, data, _, tune_cfg = detection.plan(quick)
        rm = RM_CONFIGS[task]
        if quick:
            rm = dataclasses.replace(rm, image_size=detection.QUICK_MODEL.image_size)
        scenes = shapes_config(data)
        gold_to_reward = (scenes.min_objects + scenes.max_objects) / 2
    else:
        bench = BENCHES[task].quick if quick else BENCHES[task].full
        data, tune_cfg, rm = bench.data, bench.tune, RM_CONFIGS[task]
        rm = dataclasses.replace(rm, image_size=bench.model.image_size)
        gold_to_reward = 1.0  # gold is the task's reward itself
    if quick:
        rm = dataclasses.replace(rm, steps=QUICK_RM_STEPS, batch_size=QUICK_RM_BATCH, warmup=5,
                                 eval_every=QUICK_RM_STEPS)
        # Counted in steps only, so a quick run does the same work on a busy machine.
        tune_cfg = dataclasses.replace(tune_cfg, max_seconds=0.0)
    return Plan(task, data, tune_cfg, rm, gold_to_reward)


def pretrained_mle(task: str, quick: bool, runs_dir: Path, *, use_cache: bool, threads: int,
                   log: MetricsLog, progress: bool) -> tuple[Pretrained, int]:
    """The task benchmark's cached MLE checkpoint (pretrained there when missing) and the
    torch thread count for the runs after it (`threads` 0: the faster of 1 and 2 now)."""
    if task == "detection":
        return detection.pretrained_mle(quick, runs_dir, use_cache=use_cache, threads=threads,
                                        log=log, progress=progress)
    bench = BENCHES[task].quick if quick else BENCHES[task].full
    # The path and thread choice of `shapes_tasks.run_task_benchmark`, so both share the cache.
    root = runs_dir / (f"bench-{task}-quick" if quick else f"bench-{task}")
    path = root / f"mle-{config_hash(bench.model, bench.task, bench.data, bench.pretrain)}.pt"
    if torch.cuda.is_available():
        threads = 0
    elif not threads:
        threads = pick_threads(task, bench.model, bench.task, bench.data,
                               bench.pretrain.batch_size)
    pre_cfg = dataclasses.replace(bench.pretrain, threads=threads)
    pretrained = pretrain_cached(path, bench.model, bench.task, bench.data, pre_cfg,
                                 task_name=task, use_cache=use_cache, log=log, progress=progress)
    return pretrained, threads


def _examples(task: str, data: DataConfig, split: str, start: int):
    """The stream of the task's examples (DetectionExamples for detection, else scenes)."""
    if task == "detection":
        return ShapesStream(shapes_config(data), split, start)
    return scene_stream(shapes_config(data), split, start)


def bench_preferences(
    policy: nn.Module, task: Any, data: DataConfig, pairs: int, noise: float,
    temperature: float, *, task_name: str = "detection", seed: int = SEED,
) -> PreferenceDataset:
    """The benchmark's simulated preferences: `pairs` comparisons of the policy's samples at
    `temperature`, two per scene of the reward model's own stretch of the train split (one
    stretch per seed)."""
    scenes = _examples(task_name, data, "train", RM_SCENE_OFFSET + seed * 10**6)
    source = policy_source(policy, task.codec, temperature=temperature, task=task_name)
    return make_preference_data(pairs, noise, seed, source, examples=scenes,
                                image_size=policy.config.image_size, task=task_name,
                                task_object=task)


def on_policy_accuracy(reward_model: RewardModel, policy: nn.Module, task: Any, plan_: Plan,
                       images: int, temperature: float) -> float | None:
    """The reward model's accuracy against gold on pairs of `policy`'s samples on the first
    `images` test scenes (the same scenes for every policy)."""
    scenes = _examples(plan_.task, plan_.data, plan_.data.eval_split, 0)
    source = policy_source(policy, task.codec, temperature=temperature, task=plan_.task)
    pairs = make_preference_data(images, 0.0, SEED, source, examples=scenes, pairs_per_image=1,
                                 image_size=policy.config.image_size, task=plan_.task,
                                 task_object=task)
    return _figure(pairwise_accuracy(reward_model, pairs).get("gold_acc"))


@torch.no_grad()
def score_samples(
    model: nn.Module, task: Any, reward_model: RewardModel, batch: Any, temperature: float,
    task_name: str = "detection", reference: nn.Module | None = None,
) -> dict[str, float]:
    """Means over `SCORED_SAMPLES` samples per image of `batch` at `temperature`: reward-model
    score, gold score (as the annotators', against ground truth) and, given a `reference`,
    log p(y) - log p_ref(y) (the KL penalty's one-sample estimate of the KL to it)."""
    model.eval()
    judge, n = judging(task_name), SCORED_SAMPLES
    batch = batch.to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(SEED)
    tokens, _ = model.sample(batch.images, n, temperature=temperature, generator=generator)
    outputs = judge.outputs(task.codec, tokens, batch, n)
    gold = judge.gold(task, outputs, batch, n)
    score = reward_model.score_outputs(batch.images.to(reward_model.device),
                                       outputs.to(reward_model.device))
    figures = {"rm_score": score.mean().item(), "gold_score": gold.float().mean().item()}
    if reference is not None:
        kl = model.log_prob(batch.images, tokens) - reference.log_prob(batch.images, tokens)
        figures["kl_to_mle"] = kl.mean().item()
    return figures


class _Evaluation:
    """The task's metric on the held-out test scenes, in its usual units."""

    def __init__(self, task: str, data: DataConfig) -> None:
        self.task, self.metric = task, METRICS[task]
        if task == "detection":
            self.source = eval_source(data)
        else:
            self.scenes = [generate_scene(scene_seed(data.eval_split, i), shapes_config(data))
                           for i in range(data.eval_images)]

    def __call__(self, model: nn.Module, task: Any) -> tuple[float, dict[str, Any]]:
        """(the metric, every figure of the evaluation)."""
        model.eval()
        if self.task == "detection":
            by_decoding, _ = evaluate_model(model, task, self.source)
            best = best_decoding(by_decoding, list(DECODINGS))
            return by_decoding[best]["map"], {"decoding": best, **by_decoding[best]}
        figures = task_entry(self.task).evaluate_scenes(model, task, self.scenes)
        return figures[self.metric], {k: round(v, 4) for k, v in figures.items()}

    def __len__(self) -> int:
        return len(self.source) if self.task == "detection" else len(self.scenes)


def _per_round(config: TuneConfig, rounds: int) -> TuneConfig:
    """One round's share of a method's tuning budget (steps and seconds)."""
    return dataclasses.replace(config, steps=max(1, math.ceil(config.steps / rounds)),
                               max_seconds=config.max_seconds / rounds)


def _continue(start: Checkpoint, round_cfg: TuneConfig) -> TuneConfig:
    """A tune config running `round_cfg.steps` more steps from `start`."""
    done = start.step if start.stage == "tune" else 0
    return dataclasses.replace(round_cfg, steps=done + round_cfg.steps)


def run_rlhf_benchmark(
    quick: bool = False,
    runs_dir: Path = Path("runs"),
    use_cache: bool = True,
    progress: bool = True,
    threads: int = 0,
    noise: float | None = None,
    pairs: int | None = None,
    kl_coef: float = DEFAULT_KL_COEF,
    task: str = "detection",
    rounds: int = DEFAULT_ROUNDS,
) -> dict:
    """Returns the benchmark's figures (see the module docstring): gold in the task's metric
    units, reward-model scores in Bradley-Terry units, KL in nats, seconds. `noise` None: the
    task's default (`simulate.DEFAULT_NOISES`); `pairs` None: 2,000 per round (120 with
    `quick`); `threads` 0 picks the CPU thread count."""
    noise = judging(task).noise if noise is None and task in RLHF_TASKS else noise
    pairs = pairs if pairs is not None else QUICK_PAIRS if quick else DEFAULT_PAIRS
    check_settings(noise, pairs, kl_coef, rounds, task)
    began = time.perf_counter()
    plan_ = plan(task, quick)
    root = runs_dir / (f"bench-rlhf-{task}-quick" if quick else f"bench-rlhf-{task}")
    pretrained, threads = pretrained_mle(
        task, quick, runs_dir, use_cache=use_cache, threads=threads,
        log=MetricsLog(root / "metrics-pretrain.jsonl"), progress=progress)
    if threads:
        torch.set_num_threads(threads)
    round_cfg = _per_round(dataclasses.replace(plan_.tune, threads=threads), rounds)
    rm_cfg = dataclasses.replace(plan_.rm, threads=threads, seed=SEED)
    mle = pretrained.checkpoint
    device = pick_device()
    policy, mle_task = mle.build(device)
    policy.eval().requires_grad_(False)
    # Bradley-Terry utilities approximate gold / noise: times noise (and, for detection, the
    # mean object count) they are in the metric reward's units, so one learning rate serves
    # both runs.
    reward_scale = noise * plan_.gold_to_reward
    evaluate = _Evaluation(task, plan_.data)
    scored_images = QUICK_SCORED_IMAGES if quick else SCORED_IMAGES
    scored = judging(task).collate(
        mle_task, _take(_examples(task, plan_.data, plan_.data.eval_split, 0), scored_images),
        policy.config.image_size)
    gold_mle, mle_figures = evaluate(policy, mle_task)

    learned_start_ck, metric_start_ck = learned_start(mle), mle
    current: tuple[nn.Module, Any] = (policy, mle_task)
    preferences: list[PreferenceDataset] = []
    reports = []
    for r in range(1, rounds + 1):
        tick = time.perf_counter()
        # 1-2. Preferences on the round's starting policy, then the reward model on all so far.
        preferences.append(bench_preferences(*current, plan_.data, pairs, noise,
                                             round_cfg.temperature, task_name=task,
                                             seed=SEED + r - 1))
        data = join_preferences(preferences)
        preferences_s = time.perf_counter() - tick
        rm = train_reward_model(rm_cfg, preferences=data, device=device, policy=mle)
        heldout = split_by_image(data, rm_cfg.heldout_fraction, rm_cfg.seed)[1]
        second_draw = simulate_preferences(
            heldout.gold_a, heldout.gold_b, noise=noise, tie_eps=judging(task).tie_eps,
            generator=torch.Generator().manual_seed(SEED + 1000 + r))
        rm_figures = {
            "pairs": len(data),
            "rm_heldout_acc": _figure(rm.heldout.get("pair_acc")),
            "rm_heldout_gold_acc": _figure(rm.heldout.get("gold_acc")),
            "annotator_agreement": _figure(annotator_agreement(heldout.label, second_draw)),
            "label_gold_agreement": _figure(label_gold_agreement(data)),
            "tie_share": _figure((data.label == 0.5).float().mean().item()),
            **rm.sizes,
            "rm_acc_on_policy_before": on_policy_accuracy(rm.model, *current, plan_,
                                                          scored_images, round_cfg.temperature),
        }
        save_reward_model(root / f"rm-round{r}.pt", rm.model, rm_figures)
        # 3. Both tunings continue from the previous round's, with the same budget.
        learned = tune(learned_start_ck, plan_.data,
                       dataclasses.replace(_continue(learned_start_ck, round_cfg),
                                           kl_coef=kl_coef),
                       checkpoint_path=root / f"tuned-learned-round{r}.pt", reward_model=rm.model,
                       reward_scale=reward_scale, reference=mle,
                       log=MetricsLog(root / f"metrics-learned-round{r}.jsonl"),
                       progress=progress, save_every=10**9)
        metric = tune(metric_start_ck, plan_.data, _continue(metric_start_ck, round_cfg),
                      checkpoint_path=root / f"tuned-metric-round{r}.pt",
                      log=MetricsLog(root / f"metrics-metric-round{r}.jsonl"), progress=progress,
                      save_every=10**9)
        learned_start_ck = load_checkpoint(root / f"tuned-learned-round{r}.pt")
        metric_start_ck = load_checkpoint(root / f"tuned-metric-round{r}.pt")
        # 4. Gold on the test scenes; the reward model on the tuned policy's samples.
        evaluation_began = time.perf_counter()
        rm_figures["rm_acc_on_policy_after"] = on_policy_accuracy(
            rm.model, learned.model, learned.task, plan_, scored_images, round_cfg.temperature)
        report = _round_report(r, rm_figures, gold_mle, mle_figures, learned, metric, evaluate,
                               rm.model, policy, mle_task, scored, task, round_cfg.temperature)
        report.update(preferences_s=round(preferences_s, 1), rm_train_s=round(rm.seconds, 1),
                      eval_s=round(time.perf_counter() - evaluation_began, 1),
                      seconds=round(time.perf_counter() - tick, 1))
        reports.append(report)
        current = (learned.model.eval(), learned.task)

    result = {
        "task": task, "quick": quick, "noise": noise, "pairs_per_round": pairs,
        "kl_coef": kl_coef, "reward_scale": reward_scale, "metric": METRICS[task],
        "readout": rm_cfg.readout, "mle_cached": pretrained.cached, "threads": threads,
        "test_images": len(evaluate), "scored_images": scored_images,
        "scored_samples": SCORED_SAMPLES, "pretrain_steps": mle.step,
        "pretrain_s": round(pretrained.seconds, 1),
        "rounds": reports,
        "seconds": round(time.perf_counter() - began, 1),
    }
    MetricsLog(root / "metrics.jsonl").write(
        "bench", 0, **{k: v for k, v in result.items() if not isinstance(v, dict | list)})
    return result


def _take(iterator, count: int) -> list:
    return [next(iterator) for _ in range(count)]


def _round_report(r: int, rm_figures: dict, gold_mle: float, mle_figures: dict,
                  learned: RunResult, metric: RunResult, evaluate: _Evaluation,
                  reward_model: RewardModel, policy: nn.Module, mle_task: Any, scored: Any,
                  task: str, temperature: float) -> dict:
    """One round's figures (see the module docstring)."""
    gold_learned, learned_figures = evaluate(learned.model, learned.task)
    gold_metric, metric_figures = evaluate(metric.model, metric.task)
    sampled = {
        "mle": score_samples(policy, mle_task, reward_model, scored, temperature, task),
        "learned": score_samples(learned.model, learned.task, reward_model, scored,
                                 temperature, task, reference=policy),
    }
    learned_gain, metric_gain = gold_learned - gold_mle, gold_metric - gold_mle
    return {
        "round": r, **rm_figures,
        "gold_mle": round(gold_mle, 4), "gold_learned": round(gold_learned, 4),
        "gold_metric": round(gold_metric, 4),
        "rm_score_mle": _figure(sampled["mle"]["rm_score"]),
        "rm_score_learned": _figure(sampled["learned"]["rm_score"]),
        "gold_score_mle": _figure(sampled["mle"]["gold_score"]),
        "gold_score_learned": _figure(sampled["learned"]["gold_score"]),
        "kl_to_mle": _figure(sampled["learned"]["kl_to_mle"]),
        "learned_gain": round(learned_gain, 4), "metric_gain": round(metric_gain, 4),
        # Nothing to recover when tuning against the metric gained nothing.
        "gain_ratio": round(learned_gain / metric_gain, 3) if metric_gain > 0 else None,
        "tune_steps_learned": learned.steps, "tune_steps_metric": metric.steps,
        "tune_learned_s": round(learned.seconds, 1), "tune_metric_s": round(metric.seconds, 1),
        "figures": {"mle": mle_figures, "learned": learned_figures, "metric": metric_figures},
    }
