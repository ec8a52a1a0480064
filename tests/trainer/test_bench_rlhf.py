"""`bench rlhf`: the --quick benchmark runs end to end through the command line and prints one
JSON line with every figure in range, starting from the detection benchmark's cached MLE
checkpoint; settings it cannot run with are one-line errors (exit 2) before anything trains."""

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
from trainer.train.metrics import MetricsLog

POLICIES = ("mle", "tuned_learned", "tuned_metric")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The --quick benchmark through the command line (60 pairs at noise 0.1, one thread,
    tunings of exactly 10 steps: a step count, not the quick run's 20 s budget, so a loaded
    machine does the same work): its printed result and its runs folder."""
    runs = tmp_path_factory.mktemp("runs")
    out, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["bench", "rlhf", "--quick", "--quiet", "--threads", "1", "--pairs",
                         "60", "--noise", "0.1", "--tune-steps", "10", "--runs", str(runs)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return json.loads(out.getvalue().strip().splitlines()[-1]), runs


def test_quick_benchmark_reports_every_figure(quick_run):
    result, runs = quick_run
    json.dumps(result, allow_nan=False)  # strict JSON: unmeasured figures are null, not NaN
    assert result["quick"] and result["noise"] == 0.1 and result["pairs"] == 60
    assert result["threads"] == 1 and not result["mle_cached"]
    assert result["train_pairs"] + result["heldout_pairs"] == 60 and result["heldout_pairs"] > 0
    assert 0 <= result["tie_share"] <= 1
    # A policy this weak may give every pair the same gold score: nothing to measure then.
    assert (result["label_gold_agreement"] is None) == (result["tie_share"] == 1)
    for name in ("rm_heldout_acc", "rm_heldout_gold_acc", "label_gold_agreement"):
        assert result[name] is None or 0 <= result[name] <= 1
    for policy in POLICIES:
        assert 0 <= result[f"gold_map_{policy}"] <= 100
        assert result["decodings"][policy] in result["by_decoding"][policy]
        assert math.isfinite(result[f"rm_score_{policy}"])
        assert math.isfinite(result[f"gold_score_{policy}"])
    assert "kl_to_mle_mle" not in result and math.isfinite(result["kl_to_mle_tuned_learned"])
    assert result["tune_steps_learned"] == result["tune_steps_metric"] == 10
    assert result["learned_gain"] == pytest.approx(
        result["gold_map_tuned_learned"] - result["gold_map_mle"], abs=0.01)
    assert (result["gain_ratio"] is None) == (result["metric_gain"] <= 0)
    assert not result["meets_gain_target"] or result["metric_gain"] > 0
    assert result["meets_time_target"] and result["total_s"] < 120
    # The reward model is kept for `tune --reward-model`, with its held-out figures.
    _, figures = load_reward_model(runs / "bench-rlhf-quick" / "rm.pt")
    assert figures["rm_heldout_acc"] == result["rm_heldout_acc"]


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
    (["--tune-steps", "0"], "--tune-steps must be at least 1"),
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
                 "--tune-steps", "5", "--runs", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--noise, --pairs, --tune-steps: only for bench rlhf" in err
    assert not any(tmp_path.iterdir())
