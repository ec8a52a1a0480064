"""`tune` with a learned reward model and a KL reference: the CLI run logs the metric beside
the learned reward, and a resumed run keeps the starting policy as its KL reference."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from trainer.cli import main
from trainer.configs import (
    DataConfig,
    DetectionTaskConfig,
    ModelConfig,
    PretrainConfig,
    RewardModelConfig,
    TuneConfig,
)
from trainer.reward_model.model import RewardModel, save_reward_model
from trainer.train import loops
from trainer.train.checkpoint import load_checkpoint

TINY_MODEL = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1)
TINY_TASK = DetectionTaskConfig(coord_bins=16, max_boxes=3)
TINY_DATA = DataConfig(max_objects=3, eval_images=2)
TINY_RM = RewardModelConfig(num_classes=8, image_size=32, width=8, stages=2)
# select_every=0: a resumed run starts from weights that moved (selection could keep the start).
KL_TUNE = TuneConfig(steps=2, batch_size=2, samples=2, warmup=1, kl_coef=0.1, log_every=1,
                     select_every=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    loops.pretrain(TINY_MODEL, TINY_TASK, TINY_DATA,
                   PretrainConfig(steps=2, batch_size=2, warmup=1),
                   checkpoint_path=root / "mle.pt", progress=False)
    torch.manual_seed(0)
    save_reward_model(root / "rm.pt", RewardModel(TINY_RM), {})
    loops.tune(load_checkpoint(root / "mle.pt"), TINY_DATA, KL_TUNE,
               checkpoint_path=root / "kl.pt", progress=False)
    return root


def test_cli_tune_with_a_reward_model_logs_the_metric_beside_it(runs, capsys):
    code = main(["tune", "--checkpoint", str(runs / "mle.pt"), "--reward-model",
                 str(runs / "rm.pt"), "--reward-scale", "2", "--runs", str(runs), "--name",
                 "learned", "--quiet", "--config", "steps=2", "batch_size=2", "samples=2",
                 "log_every=1"])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (runs / "learned" / "metrics.jsonl").read_text().splitlines()]
    lines = [line for line in lines if line["stage"] == "tune"]  # not held-out selection's
    assert [line["step"] for line in lines] == [0, 1]
    assert all("metric_reward" in line and "reward" in line for line in lines)
    assert load_checkpoint(runs / "learned" / "tune.pt").stage == "tune"


def test_cli_refuses_a_missing_reward_model(runs, capsys):
    code = main(["tune", "--checkpoint", str(runs / "mle.pt"), "--reward-model",
                 str(runs / "nosuch.pt"), "--runs", str(runs), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "reward model not found" in err and "Traceback" not in err


def test_resumed_tune_keeps_the_starting_policy_as_kl_reference(runs, monkeypatch):
    start = load_checkpoint(runs / "mle.pt")
    first = load_checkpoint(runs / "kl.pt")
    assert any(not torch.equal(start.state[k], v) for k, v in first.state.items())
    seen = []
    real_step = loops.reinforce_step

    def spy(model, optimizer, task, batch, config, generator, reference):
        seen.append({k: v.detach().cpu().clone() for k, v in reference.state_dict().items()})
        return real_step(model, optimizer, task, batch, config, generator, reference)

    monkeypatch.setattr(loops, "reinforce_step", spy)
    resumed = loops.tune(first, TINY_DATA, dataclasses.replace(KL_TUNE, steps=3),
                         checkpoint_path=runs / "kl2.pt", reference=start, progress=False)
    assert resumed.steps == 3 and len(seen) == 1
    assert all(torch.equal(seen[0][k], start.state[k]) for k in start.state)


def test_resuming_with_kl_and_no_reference_is_refused(runs, capsys):
    code = main(["tune", "--checkpoint", str(runs / "kl.pt"), "--runs", str(runs), "--quiet",
                 "--config", "steps=3"])
    err = capsys.readouterr().err
    assert code == 2 and "--reference" in err and "Traceback" not in err

