"""`--task panoptic` through the command line: pretrain, resume, tune and eval on Synthetic
Shapes, with the task's fixed settings guarded and its configs listed by --help-config."""

from __future__ import annotations

import json

from trainer.cli import main
from trainer.train.checkpoint import load_checkpoint

TINY = ["image_size=32", "width=8", "blocks=1", "steps=2", "batch_size=2", "warmup=1",
        "log_every=1", "eval_images=3", "max_objects=3"]


def test_pretrain_tune_and_eval(tmp_path, capsys):
    args = ["--runs", str(tmp_path), "--name", "pan", "--quiet"]
    assert main(["pretrain", "--task", "panoptic", *args, "--config", *TINY]) == 0
    path = tmp_path / "pan" / "pretrain.pt"
    mle = load_checkpoint(path)
    assert mle.task_name == "panoptic" and mle.step == 2
    assert main(["tune", "--checkpoint", str(path), *args, "--config", "steps=2",
                 "batch_size=2", "samples=3"]) == 0
    tuned = load_checkpoint(tmp_path / "pan" / "tune.pt")
    assert tuned.task_name == "panoptic" and tuned.stage == "tune" and tuned.step == 2
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "pan" / "tune.pt"), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "panoptic" and report["images"] == 3
    assert {"pq", "sq", "rq", "reward"} <= set(report)
    assert 0 <= report["pq"] <= 100


def test_tune_refuses_to_change_the_output_grid(tmp_path, capsys):
    path = tmp_path / "mle.pt"
    assert main(["pretrain", "--task", "panoptic", "--save", str(path), "--runs", str(tmp_path),
                 "--quiet", "--config", *TINY]) == 0
    capsys.readouterr()
    code = main(["tune", "--checkpoint", str(path), "--runs", str(tmp_path), "--quiet",
                 "--config", "slot_grid=3"])
    err = capsys.readouterr().err
    assert code == 2 and "fixed by the checkpoint" in err and "Traceback" not in err


def test_help_config_lists_each_tasks_configs(capsys):
    assert main(["--help-config"]) == 0
    out = capsys.readouterr().out
    assert "PanopticTaskConfig (--task panoptic):" in out
    assert "ColorizerConfig (--task colorization|panoptic):" in out
    assert "ModelConfig (--task detection|captioning):" in out
    assert "  slot_grid=4" in out and "  ab_bins=17" in out and "  coord_bins=64" in out
