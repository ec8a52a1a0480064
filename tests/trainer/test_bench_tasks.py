"""`bench captioning|panoptic|colorization`: each benchmark's pipeline runs end to end on tiny
plans (the real --quick plans take about a minute each) and reports mle_/tuned_ figures and
those of the control, the MLE pretrained for the tuning's time more (mle_continued_); the
tuned model is the best held-out step; the MLE checkpoint is reused from its cache; the CLI
prints the result as its last line."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from trainer import cli
from trainer.bench import shapes_tasks
from trainer.bench.shapes_tasks import BENCHES, BenchPlan, run_task_benchmark
from trainer.configs import DataConfig, ModelConfig, PretrainConfig, TuneConfig
from trainer.tasks.registry import TASKS

TINY_MODELS = {
    "captioning": ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                              decoder_layers=1),
    "panoptic": shapes_tasks.ColorizerConfig(image_size=32, width=8, blocks=1),
    "colorization": shapes_tasks.ColorizerConfig(image_size=32, width=8, blocks=1),
}
EXPECTED = {
    "captioning": {"cider", "bleu4"},
    "panoptic": {"pq", "sq", "rq"},
    "colorization": {"colorfulness", "fidelity"},
}


def tiny_plan(task: str) -> BenchPlan:
    plan = BENCHES[task].quick
    config = plan.task
    if task == "captioning":
        config = dataclasses.replace(config, max_words=24, idf_images=8)
    return BenchPlan(
        model=TINY_MODELS[task], task=config,
        data=DataConfig(max_objects=3, eval_images=3),
        pretrain=PretrainConfig(steps=2, batch_size=2, warmup=1),
        tune=TuneConfig(steps=1, batch_size=2, samples=2, warmup=1, select_images=3),
    )


def test_every_task_has_a_benchmark_on_the_command_line():
    assert set(cli.TASKS) == set(TASKS) == {"detection", *BENCHES}
    for bench in BENCHES.values():
        assert bench.quick.pretrain.max_seconds + bench.quick.tune.max_seconds <= 60
        assert bench.full.pretrain.max_seconds + bench.full.tune.max_seconds <= 36 * 60


@pytest.mark.parametrize("task", sorted(BENCHES))
def test_benchmark_reports_mle_and_tuned_figures(task, tmp_path):
    result = run_task_benchmark(task, quick=True, runs_dir=tmp_path, progress=False,
                                plan=tiny_plan(task))
    for name in EXPECTED[task]:
        for stage in ("mle", "tuned", "mle_continued"):
            assert math.isfinite(result[f"{stage}_{name}"])
    # The control trained by MLE from the cached checkpoint for about the tuning's time.
    assert result["mle_continued_steps"] >= 1
    assert result["mle_continued_s"] >= result["tune_s"] - 0.5
    selection = result["tuned_selection"]
    assert [step for step, _ in selection["history"]] == [0, 1]
    assert selection["source"] == "ground_truth" and selection["images"] == 3
    assert result["task"] == task and result["test_images"] == 3
    assert result["pretrain_steps"] == 2 and result["tune_steps"] == 1
    assert not result["mle_cached"] and result["threads"] in (1, 2)
    assert json.dumps(result)  # one JSON line
    again = run_task_benchmark(task, quick=True, runs_dir=tmp_path, progress=False,
                               plan=tiny_plan(task))
    assert again["mle_cached"] and again["mle_" + min(EXPECTED[task])] == \
        result["mle_" + min(EXPECTED[task])]
    assert again["pretrain_s"] == result["pretrain_s"]


def test_bench_command_prints_the_result_last(monkeypatch, capsys, tmp_path):
    calls = []

    def fake(task, **kwargs):
        calls.append((task, kwargs))
        return {"task": task, "mle_pq": 1.0, "tuned_pq": 2.0}

    monkeypatch.setattr(shapes_tasks, "run_task_benchmark", fake)
    assert cli.main(["bench", "panoptic", "--quick", "--quiet", "--runs", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {"task": "panoptic", "mle_pq": 1.0, "tuned_pq": 2.0}
    assert calls[0][0] == "panoptic" and calls[0][1]["quick"] is True
    assert calls[0][1]["use_cache"] is True
