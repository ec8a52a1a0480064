"""The command line: clean one-line errors, and eval --out writes a COCO results file that
pycocotools loads against the ground truth."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from trainer.cli import main
from trainer.data.coco import export_shapes_coco

TINY = ["image_size=32", "d_model=32", "heads=2", "encoder_layers=1", "decoder_layers=1",
        "coord_bins=16", "max_boxes=3", "max_objects=3", "eval_images=4"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("cli")
    path = root / "mle.pt"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["pretrain", "--quiet", "--runs", str(root), "--save", str(path),
                     "--config", "steps=2", "batch_size=2", "warmup=1", *TINY])
    assert code == 0
    assert (root / "pretrain" / "metrics.jsonl").is_file()
    return str(path)


def test_missing_checkpoint_is_a_clean_error(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "nope.pt"))
    assert code == 2 and "checkpoint not found" in err and "Traceback" not in err


def test_corrupt_checkpoint_is_a_clean_error(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    code, _, err = run(capsys, "tune", "--checkpoint", str(bad))
    assert code == 2 and "cannot read checkpoint" in err


def test_truncated_checkpoint_is_a_clean_error(capsys, tmp_path, checkpoint) -> None:
    cut = tmp_path / "cut.pt"
    data = Path(checkpoint).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "eval", "--checkpoint", str(cut))
    assert code == 2 and "cannot read checkpoint" in err


def test_bad_settings_are_clean_errors(capsys, checkpoint) -> None:
    code, _, err = run(capsys, "tune", "--checkpoint", checkpoint, "--config", "nosuch=1")
    assert code == 2 and "unknown setting" in err and "nosuch" in err
    code, _, err = run(capsys, "tune", "--checkpoint", checkpoint, "--config", "lr=fast")
    assert code == 2 and "lr='fast'" in err
    code, _, err = run(capsys, "tune", "--checkpoint", checkpoint, "--config", "lr")
    assert code == 2 and "key=value" in err
    code, _, err = run(capsys, "eval", "--checkpoint", checkpoint, "--data", "/no/such/dir")
    assert code == 2 and "not a folder" in err
    code, _, err = run(capsys)
    assert code == 2 and "give a command" in err


def test_settings_that_rule_each_other_out_are_one_line_errors(capsys, checkpoint) -> None:
    code, _, err = run(capsys, "tune", "--checkpoint", checkpoint, "--config", "samples=1")
    assert code == 2 and "samples=1" in err and "baseline" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "tune", "--checkpoint", checkpoint, "--config", "threads=1000000")
    assert code == 2 and "threads must be" in err


def test_argparse_errors_exit_with_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval"])  # --checkpoint is required
    assert exc.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_eval_out_writes_coco_results_pycocotools_loads(capsys, tmp_path, checkpoint) -> None:
    folder = tmp_path / "coco"
    export_shapes_coco(folder, "val", 3)
    out = tmp_path / "results.json"
    code, stdout, err = run(capsys, "eval", "--checkpoint", checkpoint, "--quiet",
                            "--data", str(folder), "--out", str(out))
    assert code == 0, err
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["images"] == 3 and report["out"] == str(out)
    results = json.loads(out.read_text())
    assert results, "a 2-step model still decodes some boxes"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(folder / "instances.json"))
        loaded = gt.loadRes(str(out))
    assert len(loaded.getAnnIds()) == len(results)
    assert {r["image_id"] for r in results} <= set(gt.getImgIds())


def test_sample_writes_n_sets_per_image(capsys, tmp_path, checkpoint) -> None:
    out = tmp_path / "samples.json"
    code, stdout, _ = run(capsys, "sample", "--checkpoint", checkpoint, "--quiet", "--out",
                          str(out), "--n", "2", "--config", "eval_images=3")
    assert code == 0
    assert json.loads(stdout)["detections"] == len(json.loads(out.read_text()))
    code, _, err = run(capsys, "sample", "--checkpoint", checkpoint, "--out", str(out),
                       "--n", "0")
    assert code == 2 and "--n" in err


def test_tune_prints_what_its_held_out_selection_kept(capsys, tmp_path, checkpoint) -> None:
    code, stdout, err = run(capsys, "tune", "--checkpoint", checkpoint, "--quiet", "--runs",
                            str(tmp_path), "--config", "steps=2", "batch_size=2", "samples=2",
                            "select_every=1", "select_images=4")
    assert code == 0, err
    selection = json.loads(stdout.strip().splitlines()[-1])["selection"]
    assert (selection["metric"], selection["source"], selection["images"]) == \
        ("map", "ground_truth", 4)
    assert [step for step, _ in selection["history"]] == [0, 1, 2]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"held-out mAP (4 images, ground truth): start "
                           f"{selection['start_metric']:.4g}")
    if selection["improved"]:
        assert last.endswith(f"at step {selection['best_step']}")
    else:
        assert last.endswith("no step beat the start: the tuned checkpoint is the starting model")


def test_a_data_folder_tunes_without_its_held_out_images(capsys, tmp_path, checkpoint) -> None:
    """`--data DIR` still pretrains, tunes and evaluates; a seeded val_fraction of its images is
    held out of training, and tuning selects on them; eval reports every image."""
    folder = tmp_path / "coco"
    export_shapes_coco(folder, "val", 10)
    mle = tmp_path / "mle.pt"
    code, _, err = run(capsys, "pretrain", "--quiet", "--data", str(folder), "--runs",
                       str(tmp_path), "--save", str(mle), "--config", "steps=2",
                       "batch_size=2", "warmup=1", "val_fraction=0.2", *TINY)
    assert code == 0, err
    code, stdout, err = run(capsys, "tune", "--checkpoint", str(mle), "--quiet", "--data",
                            str(folder), "--runs", str(tmp_path), "--config", "steps=1",
                            "batch_size=2", "samples=2", "select_every=1")
    assert code == 0, err
    selection = json.loads(stdout.strip().splitlines()[-1])["selection"]
    assert (selection["metric"], selection["source"], selection["images"]) == \
        ("map", "ground_truth", 2)
    code, stdout, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "tune" / "tune.pt"),
                            "--quiet", "--data", str(folder), "--out", str(tmp_path / "r.json"))
    assert code == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["images"] == 10
    code, _, err = run(capsys, "tune", "--checkpoint", str(mle), "--quiet", "--data",
                       str(folder), "--runs", str(tmp_path), "--config", "val_fraction=0")
    assert code == 2 and "holds none out (val_fraction=0.0)" in err and "select_every=0" in err
