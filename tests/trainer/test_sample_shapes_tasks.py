"""`sample` for captioning, panoptic and colorization checkpoints: the files the platform
imports, one per sample index, holding the model's outputs on the eval scenes."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.cli import main
from trainer.data.coco_panoptic import read_coco_panoptic
from trainer.data.shapes import ShapesConfig, generate_scene, scene_seed
from trainer.tasks.panoptic import segment
from trainer.train.checkpoint import load_checkpoint

TINY = {
    "captioning": ["image_size=32", "d_model=32", "heads=2", "encoder_layers=1",
                   "decoder_layers=1", "max_words=24", "idf_images=8"],
    "panoptic": ["image_size=32", "width=8", "blocks=1", "patch=2"],
    "colorization": ["image_size=32", "width=8", "blocks=1"],
}
RUN = ["steps=2", "batch_size=2", "warmup=1", "eval_images=3", "max_objects=3"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sample")
    paths = {}
    for task, sizes in TINY.items():
        paths[task] = str(root / f"{task}.pt")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["pretrain", "--task", task, "--runs", str(root), "--quiet",
                         "--save", paths[task], "--config", *sizes, *RUN]) == 0
    return paths


def sample(capsys, checkpoint: str, out, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["sample", "--checkpoint", checkpoint, "--out", str(out), *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_captions_one_results_file_per_sample(checkpoints, tmp_path, capsys):
    report = sample(capsys, checkpoints["captioning"], tmp_path / "caps.json", "--n", "2")
    assert report["files"] == 2 and report["samples"] == 6
    seeds = {scene_seed("test", i) for i in range(3)}
    for k in range(2):
        results = json.loads((tmp_path / f"caps-{k}.json").read_text())
        assert {r["image_id"] for r in results} == seeds
        assert all(isinstance(r["caption"], str) for r in results)


def test_greedy_panoptic_samples_read_back_as_the_models_maps(checkpoints, tmp_path, capsys):
    out = tmp_path / "pan.json"
    report = sample(capsys, checkpoints["panoptic"], out, "--temperature", "0")
    assert report["files"] == 1
    images, categories = read_coco_panoptic(out)
    assert len(categories) == 9 and len(images) == 3
    model, task = load_checkpoint(checkpoints["panoptic"]).build()
    scenes = [generate_scene(scene_seed("test", i), ShapesConfig(max_objects=3))
              for i in range(3)]
    maps = segment(model, task.codec, task.collate(scenes, 32).images)
    for image, expected, scene in zip(images, maps, scenes, strict=True):
        assert image.image_id == scene.seed
        # Same categories and segments, whatever the instance numbers in the file.
        read = torch.from_numpy(image.panoptic)
        assert torch.equal(read[..., 0], expected[..., 0])
        segment_of = [(m[..., 0] * 1000 + m[..., 1]).flatten().tolist() for m in (read, expected)]
        pairs = set(zip(*segment_of, strict=True))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}) > 1


def test_colorized_samples_are_pngs(checkpoints, tmp_path, capsys):
    report = sample(capsys, checkpoints["colorization"], tmp_path / "colour", "--n", "2")
    assert report["files"] == 6
    pngs = sorted((tmp_path / "colour").glob("*.png"))
    assert len(pngs) == 6 and pngs[0].name.endswith("-0.png")
    with Image.open(pngs[0]) as image:
        assert image.size == (32, 32) and np.asarray(image).shape == (32, 32, 3)


def test_shapes_tasks_refuse_a_data_folder(checkpoints, tiny_coco_dir, tmp_path, capsys):
    code = main(["sample", "--checkpoint", checkpoints["panoptic"], "--data",
                 str(tiny_coco_dir), "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Synthetic Shapes" in err


def test_fill_tuning_is_refused_for_one_output_tasks(checkpoints, tmp_path, capsys):
    code = main(["tune", "--checkpoint", checkpoints["captioning"], "--quiet",
                 "--save", str(tmp_path / "t.pt"), "--config", "steps=1", "fill=true"])
    err = capsys.readouterr().err
    assert code == 2 and "fill=true" in err and not (tmp_path / "t.pt").exists()
