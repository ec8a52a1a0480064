"""Tuning captioning, colorization and panoptic policies against a learned reward: a few
REINFORCE steps run with the KL penalty, the learned score is the reward, and the task's metric,
which the reward model never sees, is logged beside it as `gold_<metric>` at every logged step;
the command line does the same with `tune --reward-model`."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.cli import main
from trainer.configs import (
    CaptioningTaskConfig,
    ColorizationTaskConfig,
    ColorizerConfig,
    DataConfig,
    ModelConfig,
    PanopticTaskConfig,
    PretrainConfig,
    RewardModelConfig,
    TuneConfig,
    default_readout,
)
from trainer.reward_model.model import RewardModel, save_reward_model
from trainer.reward_model.tasks import judging
from trainer.train import loops
from trainer.train.checkpoint import load_checkpoint
from trainer.train.metrics import MetricsLog

TASKS = {
    "captioning": (ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                               decoder_layers=1), CaptioningTaskConfig(max_words=12, idf_images=8)),
    "colorization": (ColorizerConfig(image_size=32, width=8, blocks=1), ColorizationTaskConfig()),
    "panoptic": (ColorizerConfig(image_size=32, width=8, blocks=1), PanopticTaskConfig()),
}
DATA = DataConfig(max_objects=3, eval_images=2)
# No held-out selection: a 2-step run must end with its updated weights, which these tests check.
TUNE = TuneConfig(steps=2, batch_size=2, samples=2, warmup=1, kl_coef=0.1, log_every=1,
                  select_every=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step MLE checkpoint and an untrained reward model of each task."""
    root = tmp_path_factory.mktemp("runs")
    for task, (model, task_config) in TASKS.items():
        loops.pretrain(model, task_config, DATA, PretrainConfig(steps=2, batch_size=2, warmup=1),
                       checkpoint_path=root / f"{task}.pt", task_name=task, progress=False)
        torch.manual_seed(0)
        rm = RewardModel(RewardModelConfig(task=task, readout=default_readout(task),
                                           image_size=32, width=8, stages=2,
                                           max_words=task_config.max_words
                                           if task == "captioning" else 48))
        save_reward_model(root / f"rm-{task}.pt", rm, {})
    return root


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_tuning_against_a_learned_reward_logs_the_gold_metric(runs, task, one_thread):
    from trainer.reward_model.model import load_reward_model

    reward_model, _ = load_reward_model(runs / f"rm-{task}.pt")
    start = load_checkpoint(runs / f"{task}.pt")
    log = runs / f"{task}-learned.jsonl"
    result = loops.tune(start, DATA, TUNE, checkpoint_path=runs / f"{task}-tuned.pt",
                        reward_model=reward_model, reward_scale=2.0, log=MetricsLog(log),
                        progress=False)
    assert result.steps == 2
    moved = load_checkpoint(runs / f"{task}-tuned.pt").state
    assert any(not torch.equal(start.state[k], v) for k, v in moved.items())
    gold = f"gold_{judging(task).gold_name}"
    lines = _lines(log)
    assert [line["step"] for line in lines] == [0, 1]
    for line in lines:
        # The reward is the learned score, the metric the task's own reward beside it.
        assert line["reward"] != pytest.approx(line["metric_reward"])
        assert line[gold] == pytest.approx(line["metric_reward"])


def test_the_learned_reward_is_the_reward_models_score(runs, one_thread, monkeypatch):
    """With the reward model answering 0 for every output, the step's reward is 0 whatever the
    metric says: nothing of the metric leaks into the reward."""
    from trainer.reward_model.model import load_reward_model

    reward_model, _ = load_reward_model(runs / "rm-panoptic.pt")
    monkeypatch.setattr(RewardModel, "forward",
                        lambda self, images, outputs, index=None: torch.zeros(len(outputs)))
    log = runs / "zero.jsonl"
    loops.tune(load_checkpoint(runs / "panoptic.pt"), DATA, TUNE,
               checkpoint_path=runs / "zero.pt", reward_model=reward_model,
               log=MetricsLog(log), progress=False)
    assert all(line["reward"] == 0 and "gold_pq" in line for line in _lines(log))


def test_a_reward_model_of_another_task_is_refused(runs):
    from trainer.reward_model.model import load_reward_model

    reward_model, _ = load_reward_model(runs / "rm-colorization.pt")
    with pytest.raises(ValueError, match="scores colorization outputs, not panoptic"):
        loops.tune(load_checkpoint(runs / "panoptic.pt"), DATA, TUNE,
                   checkpoint_path=runs / "nope.pt", reward_model=reward_model, progress=False)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_cli_tune_with_a_reward_model_works_for_every_task(runs, task, capsys):
    code = main(["tune", "--checkpoint", str(runs / f"{task}.pt"), "--reward-model",
                 str(runs / f"rm-{task}.pt"), "--runs", str(runs), "--name", f"cli-{task}",
                 "--quiet", "--config", "steps=1", "batch_size=2", "samples=2", "log_every=1"])
    assert code == 0, capsys.readouterr().err
    (line,) = [line for line in _lines(runs / f"cli-{task}" / "metrics.jsonl")
               if line["stage"] == "tune"]  # beside the held-out selection's "select" line
    assert f"gold_{judging(task).gold_name}" in line and "reward" in line
