"""Checkpoints written before the confidence readout existed, or under the format's former
name, still load; other gaps do not."""

from __future__ import annotations

import pytest
import torch

from trainer.configs import DataConfig, DetectionTaskConfig, ModelConfig
from trainer.models.pix2seq import Pix2SeqModel
from trainer.tasks.detection import DetectionTask
from trainer.train.checkpoint import load_checkpoint, save_checkpoint


def saved_without(tmp_path, prefix: str):
    task = DetectionTask(DetectionTaskConfig(max_boxes=2), num_classes=8)
    model = Pix2SeqModel(ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                                     decoder_layers=1), task.spec)
    path = tmp_path / "old.pt"
    save_checkpoint(path, model=model, task=task, class_names=tuple("abcdefgh"),
                    stage="pretrain", step=1, run_config={}, data_config=DataConfig())
    payload = torch.load(path, weights_only=True)
    payload["model"] = {k: v for k, v in payload["model"].items() if not k.startswith(prefix)}
    torch.save(payload, path)
    return model, load_checkpoint(path)


def test_checkpoint_without_readout_loads_its_policy(tmp_path) -> None:
    original, checkpoint = saved_without(tmp_path, "readout.")
    model, _ = checkpoint.build()
    assert torch.equal(model.head.weight, original.head.weight)


def test_checkpoint_missing_policy_weights_is_refused(tmp_path) -> None:
    _, checkpoint = saved_without(tmp_path, "head.")
    with pytest.raises(RuntimeError, match=r"head\.weight"):
        checkpoint.build()


def test_checkpoint_under_the_format_s_former_name_loads(tmp_path) -> None:
    original, _ = saved_without(tmp_path, "nothing.")
    path = tmp_path / "old.pt"
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "tunelab-checkpoint/1"
    payload["format"] = "tunelab-pix2seq-detection/1"
    torch.save(payload, path)
    model, _ = load_checkpoint(path).build()
    assert torch.equal(model.head.weight, original.head.weight)
