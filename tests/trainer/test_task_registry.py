"""`pretrain --task`: captioning and colorization train, resume, evaluate and tune through the
same CLI and checkpoints as detection; checkpoints without a task name load as detection."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.cli import main
from trainer.train.checkpoint import load_checkpoint

TINY = {
    "captioning": ["image_size=32", "d_model=32", "heads=2", "encoder_layers=1",
                   "decoder_layers=1", "max_words=24", "idf_images=8"],
    "colorization": ["image_size=32", "width=8", "blocks=1"],
}
RUN = ["steps=2", "batch_size=2", "warmup=1", "log_every=1", "eval_images=2", "max_objects=3"]


@pytest.mark.parametrize("task", ["captioning", "colorization"])
def test_pretrain_resume_and_eval_a_shapes_task(task, tmp_path, capsys):
    args = ["--runs", str(tmp_path), "--name", task, "--quiet"]
    assert main(["pretrain", "--task", task, *args, "--config", *TINY[task], *RUN]) == 0
    path = tmp_path / task / "pretrain.pt"
    first = load_checkpoint(path)
    assert first.task_name == task and first.step == 2
    assert main(["pretrain", "--checkpoint", str(path), "--save", str(tmp_path / "more.pt"),
                 *args, "--config", "steps=3"]) == 0
    more = load_checkpoint(tmp_path / "more.pt")
    assert more.task_name == task and more.step == 3
    assert any(not torch.equal(first.state[k], v) for k, v in more.state.items())
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "more.pt"), "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == task and report["images"] == 2
    assert all(isinstance(v, float) for k, v in report.items() if k not in
               ("task", "checkpoint_stage", "step", "images"))
    assert main(["tune", "--checkpoint", str(tmp_path / "more.pt"), *args, "--config",
                 "steps=1", "batch_size=2", "samples=2"]) == 0
    tuned = load_checkpoint(tmp_path / task / "tune.pt")
    assert tuned.task_name == task and tuned.stage == "tune"


def test_shapes_tasks_refuse_a_data_folder(tiny_coco_dir, tmp_path, capsys):
    code = main(["pretrain", "--task", "captioning", "--data", str(tiny_coco_dir),
                 "--runs", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Synthetic Shapes" in err and "Traceback" not in err


def test_a_checkpoint_without_a_task_name_is_detection(tmp_path):
    main(["pretrain", "--runs", str(tmp_path), "--name", "det", "--quiet", "--config",
          "image_size=32", "d_model=32", "heads=2", "encoder_layers=1", "decoder_layers=1",
          "coord_bins=16", "max_boxes=3", *RUN])
    path = tmp_path / "det" / "pretrain.pt"
    payload = torch.load(path, weights_only=True)
    assert payload["task"] == "detection"
    del payload["task"]  # as written before tasks had names
    torch.save(payload, path)
    old = load_checkpoint(path)
    assert old.task_name == "detection"
    _, task = old.build()
    assert type(task).__name__ == "DetectionTask"
