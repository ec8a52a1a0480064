"""A tiny end-to-end run: pretrain a few steps, resume, tune a few steps, evaluate."""

from __future__ import annotations

import json
import math

import pytest
import torch

from trainer.configs import (
    DataConfig,
    DetectionTaskConfig,
    ModelConfig,
    PretrainConfig,
    TuneConfig,
)
from trainer.train.checkpoint import load_checkpoint
from trainer.train.evaluate import DECODINGS, evaluate_checkpoint
from trainer.train.loops import pretrain, tune
from trainer.train.metrics import MetricsLog

TINY_MODEL = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1)
TINY_TASK = DetectionTaskConfig(coord_bins=16, max_boxes=3)
TINY_DATA = DataConfig(max_objects=3, eval_images=6)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    log = MetricsLog(root / "metrics.jsonl")
    config = PretrainConfig(steps=3, batch_size=4, warmup=1, log_every=1)
    pretrain(TINY_MODEL, TINY_TASK, TINY_DATA, config, checkpoint_path=root / "mle.pt",
             log=log, progress=False)
    return root


def test_pretrain_checkpoint_stores_its_configs(runs) -> None:
    checkpoint = load_checkpoint(runs / "mle.pt")
    assert checkpoint.stage == "pretrain" and checkpoint.step == 3
    assert checkpoint.model_config == TINY_MODEL and checkpoint.task_config == TINY_TASK
    assert checkpoint.run_config["steps"] == 3 and checkpoint.run_config["stream_position"] == 12
    lines = [json.loads(line) for line in (runs / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 1, 2]
    assert all(math.isfinite(line["loss"]) for line in lines)


def test_resume_continues_the_stream_and_the_step_count(runs) -> None:
    first = load_checkpoint(runs / "mle.pt")
    config = PretrainConfig(steps=5, batch_size=4, warmup=1)
    result = pretrain(TINY_MODEL, TINY_TASK, TINY_DATA, config, checkpoint_path=runs / "more.pt",
                      resume=first, progress=False)
    resumed = load_checkpoint(runs / "more.pt")
    assert resumed.step == 5 and resumed.run_config["stream_position"] == 20
    moved = any(not torch.equal(first.state[k], v) for k, v in result.model.state_dict().items())
    assert moved


def test_tune_moves_the_weights_and_eval_reports_coco_metrics(runs) -> None:
    pretrained = load_checkpoint(runs / "mle.pt")
    # select_every=0: the loop's own updates (selection would keep the start of a run this
    # short when no step beats it; tests/trainer/test_heldout_selection.py).
    config = TuneConfig(steps=2, batch_size=2, samples=3, warmup=1, select_every=0)
    result = tune(pretrained, TINY_DATA, config, checkpoint_path=runs / "tuned.pt",
                  progress=False)
    tuned = load_checkpoint(runs / "tuned.pt")
    assert tuned.stage == "tune" and tuned.step == 2
    assert any(not torch.equal(pretrained.state[k], v)
               for k, v in result.model.state_dict().items())
    report = evaluate_checkpoint(tuned, TINY_DATA, list(DECODINGS), out=str(runs / "res.json"),
                                 progress=False)
    assert report["images"] == 6 and report["best"] in DECODINGS
    for name in DECODINGS:
        assert 0 <= report[name]["map"] <= 100 and 0 <= report[name]["ar100"] <= 100
    # Filling forbids EOS until max_boxes boxes: every image gets exactly max_boxes.
    assert report["class_fill"]["boxes_per_image"] == TINY_TASK.max_boxes
    assert isinstance(json.loads((runs / "res.json").read_text()), list)


def test_fill_tunes_the_policy_that_writes_every_box(runs) -> None:
    """`fill` samples every sequence with max_boxes boxes during tuning (the metrics log
    says so) and is refused for a task whose sequence holds one output."""
    log = MetricsLog(runs / "fill.jsonl")
    config = TuneConfig(steps=2, batch_size=2, samples=3, warmup=1, log_every=1, fill=True)
    tune(load_checkpoint(runs / "mle.pt"), TINY_DATA, config, checkpoint_path=runs / "fill.pt",
         log=log, progress=False)
    lines = [json.loads(line) for line in (runs / "fill.jsonl").read_text().splitlines()]
    lines = [line for line in lines if line["stage"] == "tune"]  # not held-out selection's
    assert [line["boxes_per_sample"] for line in lines] == [TINY_TASK.max_boxes] * 2
