"""`python -m trainer.reward_model`: a tiny run prints its figures and saves a loadable model;
bad arguments end with one line and status 2."""

import json

import pytest

from trainer.reward_model.__main__ import main
from trainer.reward_model.model import load_reward_model


def test_tiny_run_prints_figures_and_saves_the_model(tmp_path, capsys):
    out = tmp_path / "rm.pt"
    status = main(["--pairs", "24", "--noise", "0.05", "--out", str(out), "--config",
                   "steps=3", "width=8", "window=8", "image_size=32", "batch_size=4",
                   "eval_every=3"])
    assert status == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["pairs"] == 24 and 0 <= figures["rm_heldout_acc"] <= 1
    assert figures["train_pairs"] + figures["heldout_pairs"] == 24
    model, metrics = load_reward_model(out)
    assert model.config.width == 8 and metrics["rm_heldout_acc"] == figures["rm_heldout_acc"]


def test_bad_arguments_end_with_one_line(capsys):
    assert main(["--config", "widht=8"]) == 2
    assert "unknown setting 'widht'" in capsys.readouterr().err
    assert main(["--config", "width=12"]) == 2
    assert "width must be a multiple of 8" in capsys.readouterr().err
    assert main(["--noise", "-1"]) == 2
    assert "noise" in capsys.readouterr().err


def test_help_lists_the_config_fields(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "lr: peak AdamW learning rate (linear warmup, cosine decay to 10%)" in text


@pytest.mark.parametrize("task", ["captioning", "colorization", "panoptic"])
def test_tiny_run_of_another_task_uses_its_readout_and_noise(task, tmp_path, capsys):
    from trainer.configs import default_readout
    from trainer.reward_model.tasks import judging

    status = main(["--task", task, "--pairs", "24", "--out", str(tmp_path / "rm.pt"),
                   "--config", "steps=2", "width=8", "image_size=32", "batch_size=4",
                   "eval_every=2"])
    assert status == 0, capsys.readouterr().err
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["task"] == task and figures["noise"] == judging(task).noise
    assert figures["readout"] == default_readout(task)
    model, _ = load_reward_model(tmp_path / "rm.pt")
    assert model.config.task == task
