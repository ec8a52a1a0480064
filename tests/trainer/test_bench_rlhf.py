"""`bench rlhf`: the --quick benchmark runs end to end through the command line and prints one
JSON line with every figure of every round in range, starting from the task benchmark's cached
MLE checkpoint (detection here, colorization in round two); settings it cannot run with are
one-line errors (exit 2) before anything trains."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
import torch

from trainer.bench import detection
from trainer.bench.rlhf import learned_start
from trainer.cli import main
from trainer.reward_model.model import load_reward_model
from trainer.reward_model.tasks import judging
from trainer.train.metrics import MetricsLog

# Every round reports these (`trainer.bench.rlhf`); rates lie in [0, 1] or are null where
# nothing could be measured (a weak policy may give every pair the same gold score).
RATES = ("rm_heldout_acc", "rm_heldout_gold_acc", "annotator_agreement", "label_gold_agreement",
         "rm_acc_on_policy_before", "rm_acc_on_policy_after")
FIGURES = ("gold_mle", "gold_learned", "gold_metric", "rm_score_mle", "rm_score_learned",
           "gold_score_mle", "gold_score_learned", "kl_to_mle", "learned_gain", "metric_gain")


def run_quick(runs, *argv: str) -> dict:
    """The --quick benchmark through the command line on one thread: its printed result."""
    out, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["bench", "rlhf", "--quick", "--quiet", "--threads", "1", "--runs",
                         str(runs), *argv])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


def check_rounds(result: dict, rounds: int, pairs: int, steps_per_round: int) -> None:
    json.dumps(result, allow_nan=False)  # strict JSON: unmeasured figures are null, not NaN
    assert len(result["rounds"]) == rounds and math.isfinite(result["seconds"])
    for r, figures in enumerate(result["rounds"], start=1):
        assert figures["round"] == r and figures["pairs"] == r * pairs  # each round adds pairs
        assert figures["train_pairs"] + figures["heldout_pairs"] == r * pairs
        assert figures["heldout_pairs"] > 0 and 0 <= figures["tie_share"] <= 1
        assert (figures["label_gold_agreement"] is None) == (figures["tie_share"] == 1)
        for name in RATES:
            assert figures[name] is None or 0 <= figures[name] <= 1, name
        for name in FIGURES:
            assert math.isfinite(figures[name]), name
        assert figures["learned_gain"] == pytest.approx(
            figures["gold_learned"] - figures["gold_mle"], abs=1e-3)
        assert (figures["gain_ratio"] is None) == (figures["metric_gain"] <= 0)
        # Both runs continue from the previous round's, with the same budget each round.
        assert figures["tune_steps_learned"] == figures["tune_steps_metric"] == \
            r * steps_per_round
        assert figures["gold_mle"] == result["rounds"][0]["gold_mle"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The --quick detection benchmark (60 pairs a round at noise 0.1): its printed result
    and its runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    return run_quick(runs, "--pairs", "60", "--noise", "0.1"), runs


def test_quick_benchmark_reports_every_figure(quick_run):
    result, runs = quick_run
    assert result["task"] == "detection" and result["metric"] == "map"
    assert result["quick"] and result["noise"] == 0.1 and result["pairs_per_round"] == 60
    assert result["threads"] == 1 and not result["mle_cached"]
    check_rounds(result, rounds=2, pairs=60, steps_per_round=5)
    for figures in result["rounds"]:
        for policy in ("mle", "learned", "metric"):
            assert 0 <= figures[f"gold_{policy}"] <= 100  # mAP in percent
            assert figures["figures"][policy]["decoding"] in ("class", "confidence",
                                                              "class_fill", "confidence_fill",
                                                              "every_class")
    # Each round's reward model is kept for `tune --reward-model`, with its held-out figures.
    for r, figures in enumerate(result["rounds"], start=1):
        _, saved = load_reward_model(runs / "bench-rlhf-detection-quick" / f"rm-round{r}.pt")
        assert saved["rm_heldout_acc"] == figures["rm_heldout_acc"]


def test_quick_benchmark_of_another_task(tmp_path):
    result = run_quick(tmp_path, "--task", "colorization", "--pairs", "40", "--rounds", "1")
    assert result["task"] == "colorization" and result["metric"] == "reward"
    assert result["noise"] == judging("colorization").noise  # the task's default
    check_rounds(result, rounds=1, pairs=40, steps_per_round=10)
    for policy in ("mle", "learned", "metric"):
        figures = result["rounds"][0]["figures"][policy]
        assert {"colorfulness", "psnr", "reward"} <= set(figures)


def test_it_starts_from_the_detection_benchmarks_cached_mle(quick_run):
    result, runs = quick_run
    again, _ = detection.pretrained_mle(True, runs, use_cache=True, threads=1,
                                        log=MetricsLog(None), progress=False)
    assert again.cached and again.checkpoint.step == result["pretrain_steps"]
    # Tuned against the reward model, the confidence token learns nothing: its only target
    # is the metric's IoU, from ground truth that annotators never give.
    mle = again.checkpoint
    assert learned_start(mle).task_config.confidence_weight == 0
    assert mle.task_config.confidence_weight > 0  # the metric's run keeps the recipe's


@pytest.mark.parametrize(("argv", "message"), [
    (["--noise", "-1"], "--noise must be > 0"),
    (["--noise", "0"], "--noise must be > 0"),
    (["--pairs", "5"], "--pairs must be at least"),
    (["--kl-coef", "-0.1"], "--kl-coef must be >= 0"),
    (["--rounds", "0"], "--rounds must lie in 1..10"),
])
def test_bad_settings_are_one_line_errors(capsys, tmp_path, argv, message):
    code = main(["bench", "rlhf", "--quick", "--quiet", "--runs", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything was trained or written


def test_unreadable_noise_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "rlhf", "--noise", "abc", "--runs", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid float value" in capsys.readouterr().err


def test_rlhf_settings_are_refused_for_other_benchmarks(capsys, tmp_path):
    code = main(["bench", "detection", "--quick", "--noise", "0.1", "--pairs", "100",
                 "--task", "panoptic", "--runs", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--noise, --pairs, --task: only for bench rlhf" in err
    assert not any(tmp_path.iterdir())
