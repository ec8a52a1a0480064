"""Command line: `python -m trainer pretrain|tune|eval|sample|bench ...`.

    python -m trainer pretrain --name shapes [--data DIR] [--config steps=8000 d_model=128]
    python -m trainer pretrain --task captioning|panoptic|colorization --name caps  # Shapes
    python -m trainer pretrain --checkpoint runs/shapes/pretrain.pt    # resume
    python -m trainer tune --checkpoint runs/shapes/pretrain.pt [--config lr=1e-4]
        [--reward-model rm.pt [--reward-scale S]]
    python -m trainer tune --checkpoint runs/shapes/tune.pt --reference runs/shapes/pretrain.pt
    python -m trainer tune --checkpoint runs/shapes/pretrain.pt --config processes=2  # torchrun
    python -m trainer eval --checkpoint runs/shapes/tune.pt [--data DIR] [--out results.json]
    python -m trainer sample --checkpoint runs/shapes/tune.pt --out samples.json [--n 4]
    python -m trainer sample --checkpoint runs/pan/tune.pt --out pan.json  # + PNGs in pan/
    python -m trainer bench detection|captioning|panoptic|colorization [--quick]
    python -m trainer bench rlhf [--task detection|captioning|colorization|panoptic]
        [--rounds 2] [--quick] [--noise N] [--pairs 2000] [--kl-coef 0.05]

`--config key=value` sets any field of the run's configs (`--help-config` lists them with their
help). Every run writes `runs/<name>/metrics.jsonl`. `tune` scores its policy on held-out images
every `select_every` steps and keeps the best (the start included): its JSON line carries the
`selection` record and a last line on stderr says what was kept ("held-out mAP (...): start
16.7 -> best 17.9 at step 400"). Bad arguments, a missing or damaged
checkpoint or data folder end with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from trainer.configs import (
    DataConfig,
    PretrainConfig,
    TuneConfig,
    apply_overrides,
    from_dict,
    help_for,
)

# The names of `trainer.tasks.registry.TASKS` (which imports every model), for the parser.
TASKS = ("detection", "captioning", "panoptic", "colorization")
# `bench` runs one per task, and `rlhf`: a task tuned against a learned reward model.
BENCHES = (*TASKS, "rlhf")


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--config expects key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _split_overrides(overrides: dict[str, str], *configs: Any) -> list[Any]:
    """Apply each key to the one config among `configs` that has that field."""
    remaining = dict(overrides)
    result = []
    for config in configs:
        names = {f.name for f in dataclasses.fields(config)}
        mine = {k: v for k, v in remaining.items() if k in names}
        for key in mine:
            remaining.pop(key)
        result.append(apply_overrides(config, mine))
    if remaining:
        known = sorted({f.name for c in configs for f in dataclasses.fields(c)})
        raise UsageError(f"unknown setting(s) {', '.join(sorted(remaining))}; known: "
                         f"{', '.join(known)}")
    return result


def _data_config(args: argparse.Namespace, base: DataConfig) -> DataConfig:
    if args.data:
        if not Path(args.data).is_dir():
            raise UsageError(f"--data {args.data}: not a folder")
        base = dataclasses.replace(base, data_dir=str(args.data))
    return base


def _run_dir(args: argparse.Namespace, default: str) -> Path:
    return Path(args.runs) / (args.name or default)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from trainer.tasks.registry import task_entry
    from trainer.train.checkpoint import load_checkpoint
    from trainer.train.loops import pretrain
    from trainer.train.metrics import MetricsLog

    overrides = _parse_overrides(args.config)
    resume = load_checkpoint(args.checkpoint) if args.checkpoint else None
    if resume:
        if resume.stage != "pretrain":
            raise UsageError(f"{args.checkpoint} is a {resume.stage} checkpoint, not pretrain")
        if args.task and args.task != resume.task_name:
            raise UsageError(f"{args.checkpoint} is a {resume.task_name} checkpoint, "
                             f"not {args.task}")
        task_name = resume.task_name
        model, task = resume.model_config, resume.task_config
        data = from_dict(DataConfig, resume.data_config)
        run = from_dict(PretrainConfig, resume.run_config)
    else:
        task_name = args.task or "detection"
        entry = task_entry(task_name)
        model, task, data, run = entry.model_config(), entry.task_config(), DataConfig(), \
            PretrainConfig()
    if args.data and task_entry(task_name).shapes_only:
        raise UsageError(f"--data: {task_name} trains on Synthetic Shapes only")
    model, task, data, run = _split_overrides(overrides, model, task, data, run)
    data = _data_config(args, data)
    run_dir = _run_dir(args, "pretrain")
    out = Path(args.save) if args.save else run_dir / "pretrain.pt"
    result = pretrain(model, task, data, run, checkpoint_path=out, task_name=task_name,
                      resume=resume,
                      log=MetricsLog(run_dir / "metrics.jsonl"), progress=not args.quiet)
    print(json.dumps({"checkpoint": str(out), "pretrain_s": round(result.seconds, 1),
                      "step_s": round(result.step_s, 4)}))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from trainer.reward_model.model import load_reward_model
    from trainer.tasks.registry import task_entry
    from trainer.train.checkpoint import load_checkpoint
    from trainer.train.launch import tune_in_processes
    from trainer.train.loops import tune
    from trainer.train.metrics import MetricsLog
    from trainer.train.selection import summary_line

    pretrained = load_checkpoint(args.checkpoint)
    reward_model = load_reward_model(args.reward_model)[0] if args.reward_model else None
    reference = load_checkpoint(args.reference) if args.reference else None
    base = from_dict(TuneConfig, pretrained.run_config) if pretrained.stage == "tune" \
        else TuneConfig()
    task, data, run = _split_overrides(_parse_overrides(args.config), pretrained.task_config,
                                       from_dict(DataConfig, pretrained.data_config), base)
    fixed = task_entry(pretrained.task_name).fixed  # they shape the model's output
    if any(getattr(task, f) != getattr(pretrained.task_config, f) for f in fixed):
        raise UsageError(f"{', '.join(fixed)} are fixed by the checkpoint's model")
    pretrained.task_config = task  # the reward's settings (duplicate_penalty, ...) may change
    data = _data_config(args, data)
    run_dir = _run_dir(args, "tune")
    out = Path(args.save) if args.save else run_dir / "tune.pt"
    train = tune if run.processes == 1 else tune_in_processes  # data-parallel under torchrun
    result = train(pretrained, data, run, checkpoint_path=out, reward_model=reward_model,
                   reward_scale=args.reward_scale, reference=reference,
                   log=MetricsLog(run_dir / "metrics.jsonl"), progress=not args.quiet)
    selection = result.selection.to_dict() if result.selection else None
    print(json.dumps({"checkpoint": str(out), "tune_s": round(result.seconds, 1),
                      "step_s": round(result.step_s, 4), "selection": selection}))
    # For the reader, apart from the JSON line scripts parse: what the checkpoint is.
    print(summary_line(selection), file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from trainer.train.checkpoint import load_checkpoint
    from trainer.train.evaluate import DECODINGS, evaluate_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    (data,) = _split_overrides(_parse_overrides(args.config),
                               from_dict(DataConfig, checkpoint.data_config))
    data = _data_config(args, data)
    decodings = list(DECODINGS) if args.decoding == "all" else [args.decoding]
    report = evaluate_checkpoint(checkpoint, data, decodings, out=args.out,
                                 progress=not args.quiet)
    print(json.dumps(report))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from trainer.train.checkpoint import load_checkpoint
    from trainer.train.evaluate import sample_checkpoint

    if args.n < 1 or args.temperature < 0:
        raise UsageError("--n must be >= 1 and --temperature >= 0")
    checkpoint = load_checkpoint(args.checkpoint)
    (data,) = _split_overrides(_parse_overrides(args.config),
                               from_dict(DataConfig, checkpoint.data_config))
    data = _data_config(args, data)
    if checkpoint.task_name != "detection":
        return _sample_scenes(args, checkpoint, data)
    count = sample_checkpoint(checkpoint, data, out=args.out, n=args.n,
                              temperature=args.temperature, seed=args.seed)
    print(json.dumps({"out": args.out, "detections": count}))
    return 0


def _sample_scenes(args: argparse.Namespace, checkpoint: Any, data: DataConfig) -> int:
    """`sample` for the Synthetic Shapes tasks: their outputs on the eval split's scenes."""
    from trainer.data.shapes import generate_scene, scene_seed
    from trainer.tasks.samples import WRITERS
    from trainer.train.data import shapes_config
    from trainer.train.loops import pick_device

    if data.data_dir:
        raise UsageError(f"--data: {checkpoint.task_name} samples Synthetic Shapes scenes only")
    model, task = checkpoint.build(pick_device())
    scenes = [generate_scene(scene_seed(data.eval_split, i), shapes_config(data))
              for i in range(data.eval_images)]
    paths = WRITERS[checkpoint.task_name](model, task, scenes, Path(args.out), n=args.n,
                                          temperature=args.temperature, seed=args.seed)
    print(json.dumps({"out": args.out, "files": len(paths), "samples": args.n * len(scenes)}))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    # Only the settings given, so the benchmark's own defaults apply to the rest.
    flags = {"noise": "--noise", "pairs": "--pairs", "kl_coef": "--kl-coef",
             "task": "--task", "rounds": "--rounds"}
    given = {name: value for name, value in
             (("noise", args.noise), ("pairs", args.pairs), ("kl_coef", args.kl_coef),
              ("task", args.rlhf_task), ("rounds", args.rounds))
             if value is not None}
    if given and args.task != "rlhf":
        raise UsageError(f"{', '.join(flags[name] for name in given)}: only for bench rlhf")
    if args.task == "rlhf":
        from trainer.bench.rlhf import run_rlhf_benchmark

        result = run_rlhf_benchmark(quick=args.quick, runs_dir=Path(args.runs),
                                    use_cache=not args.from_scratch, progress=not args.quiet,
                                    threads=args.threads, **given)
    elif args.task == "detection":
        from trainer.bench.detection import run_benchmark

        result = run_benchmark(quick=args.quick, runs_dir=Path(args.runs),
                               use_cache=not args.from_scratch, progress=not args.quiet,
                               threads=args.threads)
    else:
        from trainer.bench.shapes_tasks import run_task_benchmark

        result = run_task_benchmark(args.task, quick=args.quick, runs_dir=Path(args.runs),
                                    use_cache=not args.from_scratch, progress=not args.quiet,
                                    threads=args.threads)
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n")[0])
    parser.add_argument("--help-config", action="store_true",
                        help="list every --config setting with its help and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser, checkpoint_required: bool) -> None:
        p.add_argument("--data", help="COCO folder (images + instances.json); "
                                      "default: Synthetic Shapes")
        p.add_argument("--checkpoint", required=checkpoint_required,
                       help="checkpoint to " + ("use" if checkpoint_required else "resume"))
        p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                       help="config overrides (see --help-config)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    for name, fn, required, text in (
        ("pretrain", cmd_pretrain, False, "MLE pretraining (or resume one)"),
        ("tune", cmd_tune, True, "REINFORCE tuning of a checkpoint"),
    ):
        p = commands.add_parser(name, help=text)
        common(p, required)
        p.add_argument("--name", help=f"run name: logs go to RUNS/NAME (default {name})")
        p.add_argument("--runs", default="runs", help="folder of runs (default runs)")
        p.add_argument("--save", help="checkpoint to write (default RUNS/NAME/{name}.pt)")
        p.set_defaults(fn=fn)
        if name == "pretrain":
            p.add_argument("--task", choices=TASKS,
                           help="what to learn (default detection; a resumed run keeps its "
                                "checkpoint's)")
        if name == "tune":
            p.add_argument("--reward-model", help="score samples with this learned reward "
                                                  "model instead of the metric")
            p.add_argument("--reward-scale", type=float, default=1.0,
                           help="multiplies the reward model's score (default 1)")
            p.add_argument("--reference", help="KL reference policy (kl_coef > 0); needed when "
                                               "resuming a tune checkpoint: its starting one")
    p = commands.add_parser("eval", help="COCO mAP/AP50/AR@100 of a checkpoint")
    common(p, True)
    p.add_argument("--out", help="write the detections as a COCO results JSON")
    p.add_argument("--decoding", default="all", choices=["all", "class", "confidence",
                                                         "class_fill", "confidence_fill",
                                                         "every_class"],
                   help="how boxes are decoded and scored (default: report all)")
    p.set_defaults(fn=cmd_eval)
    p = commands.add_parser("sample", help="sample outputs: detections or captions as COCO "
                                           "results, COCO panoptic, colorized PNGs")
    common(p, True)
    p.add_argument("--out", required=True,
                   help="file to write (COCO results or panoptic JSON; colorization: a folder); "
                        "with --n > 1, sample k of the shapes tasks goes to OUT-k")
    p.add_argument("--n", type=int, default=1, help="samples per image")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.set_defaults(fn=cmd_sample)
    p = commands.add_parser("bench", help="benchmarks: `bench TASK [--quick]`, `bench rlhf`")
    p.add_argument("task", choices=BENCHES)
    p.add_argument("--quick", action="store_true", help="reduced run, under 2 minutes")
    p.add_argument("--from-scratch", action="store_true",
                   help="do not reuse a cached MLE checkpoint of the same config")
    p.add_argument("--runs", default="runs", help="folder for the benchmark's runs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=0, choices=[0, 1, 2],
                   help="CPU torch threads (default 0: measure which of 1 or 2 runs faster "
                        "now); 1 when two benchmarks share 2 cores")
    p.add_argument("--task", dest="rlhf_task", choices=TASKS,
                   help="rlhf: the task tuned against a learned reward (default detection)")
    p.add_argument("--rounds", type=int,
                   help="rlhf: rounds of preferences, reward model and tuning (default 2)")
    p.add_argument("--noise", type=float,
                   help="rlhf: the simulated annotators' noise in the task's gold units, "
                        "P(a) = sigmoid((gold_a - gold_b) / noise) (default: the task's, "
                        "detection 0.05)")
    p.add_argument("--pairs", type=int,
                   help="rlhf: simulated preferences to learn from per round (default 2000; "
                        "120 quick)")
    p.add_argument("--kl-coef", type=float,
                   help="rlhf: KL penalty to the MLE policy when tuning against the reward "
                        "model (default 0.05)")
    p.set_defaults(fn=cmd_bench)
    return parser


def _config_help() -> str:
    """Every config class with its fields, defaults and help; model and task configs say which
    tasks (--task) use them."""
    from trainer.tasks.registry import TASKS as ENTRIES

    users: dict[type, list[str]] = {}
    for name, entry in ENTRIES.items():
        for config in (entry.model_config, entry.task_config):
            users.setdefault(config, []).append(name)
    lines = []
    for config in (*users, DataConfig, PretrainConfig, TuneConfig):
        tasks = f" (--task {'|'.join(users[config])})" if config in users else ""
        lines.append(f"{config.__name__}{tasks}:")
        defaults = config()
        for name, text in help_for(config).items():
            lines.append(f"  {name}={getattr(defaults, name)!r:<10} {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from trainer.train.checkpoint import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.help_config:
        print(_config_help())
        return 0
    if not args.command:
        parser.print_usage(sys.stderr)
        print("error: give a command (pretrain, tune, eval, sample, bench)", file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except (UsageError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
