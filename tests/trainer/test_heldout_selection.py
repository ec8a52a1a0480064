"""Held-out selection: a tuning run that hurts the model ends with the starting model (its best
held-out step), in the returned model and in its checkpoint; a resumed run keeps the best
weights of the attempt before it; the metrics log has a held-out entry at each selection step.

Tuning is made to hurt on colorization, whose held-out figure (the task's reward) is a
continuous number for any model: a reward that is minus the task's and a huge learning rate.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from trainer.configs import DataConfig, PretrainConfig, RewardModelConfig, TuneConfig
from trainer.data.coco import export_shapes_coco
from trainer.data.splits import write_heldout
from trainer.models.colorizer import ColorizerConfig
from trainer.reward_model.model import RewardModel
from trainer.tasks.colorization import ColorizationTask, ColorizationTaskConfig
from trainer.train import loops
from trainer.train.checkpoint import load_checkpoint
from trainer.train.data import TrainStream
from trainer.train.metrics import MetricsLog
from trainer.train.selection import heldout_for

DATA = DataConfig(max_objects=3, eval_images=4)
# A learning rate of 0.9 with no gradient clipping wrecks the colorizer within two steps.
HURTING = TuneConfig(steps=4, batch_size=2, samples=4, warmup=0, lr=0.9, grad_clip=1e9,
                     log_every=1, threads=1, select_every=2, select_images=6)


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("colorizer") / "mle.pt"
    loops.pretrain(ColorizerConfig(image_size=32, width=8, blocks=1), ColorizationTaskConfig(),
                   DATA, PretrainConfig(steps=2, batch_size=4, warmup=1), checkpoint_path=path,
                   task_name="colorization", progress=False)
    return path


@pytest.fixture
def minus_the_metric(monkeypatch):
    """Tuning rewards the opposite of the task's reward (the held-out figure is unchanged)."""
    real = ColorizationTask.reward

    def minus(self, tokens, batch, n):
        scored = real(self, tokens, batch, n)
        return dataclasses.replace(scored, reward=-scored.reward)

    monkeypatch.setattr(ColorizationTask, "reward", minus)


def held_out_score(checkpoint_or_model, config: TuneConfig = HURTING) -> float:
    model, task = checkpoint_or_model
    heldout = heldout_for("colorization", DATA, config, TrainStream(DATA))
    return heldout.score(model, task)


def same_weights(state: dict, other: dict) -> bool:
    return state.keys() == other.keys() and all(torch.equal(state[k].cpu(), other[k].cpu())
                                                for k in state)


def test_tuning_that_hurts_ends_with_the_starting_model(
    colorizer, minus_the_metric, tmp_path, one_thread
):
    start = load_checkpoint(colorizer)
    result = loops.tune(start, DATA, HURTING, checkpoint_path=tmp_path / "tuned.pt",
                        log=MetricsLog(tmp_path / "metrics.jsonl"), progress=False)
    record = result.selection
    scores = dict(record.scores)
    assert sorted(scores) == [0, 2, 4]
    assert max(scores[2], scores[4]) < scores[0], "the set-up is meant to hurt"
    assert (record.metric, record.source, record.images) == ("reward", "ground_truth", 6)
    assert (record.best_step, record.improved) == (0, False)
    assert record.start_metric == record.best_metric == scores[0]
    # The returned model and the run's checkpoint are the starting model.
    assert same_weights(result.model.state_dict(), start.state)
    tuned = load_checkpoint(tmp_path / "tuned.pt")
    assert (tuned.stage, tuned.step) == ("tune", 4)
    assert same_weights(tuned.state, start.state)
    assert tuned.run_config["selection"]["best_step"] == 0
    assert held_out_score(tuned.build()) >= record.start_metric
    assert "no step beat the start" in record.summary()
    # A held-out entry at each selection step: with the step's line, and after the last.
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    entries = [(line["stage"], line["step"], line["heldout_reward"])
               for line in lines if "heldout_reward" in line]
    assert entries == [("tune", 0, scores[0]), ("tune", 2, scores[2]), ("select", 4, scores[4])]


def test_without_selection_the_run_ends_with_its_last_step(
    colorizer, minus_the_metric, tmp_path, one_thread
):
    start = load_checkpoint(colorizer)
    result = loops.tune(start, DATA, dataclasses.replace(HURTING, select_every=0),
                        checkpoint_path=tmp_path / "last.pt", progress=False)
    assert result.selection is None
    assert not same_weights(result.model.state_dict(), start.state)
    assert load_checkpoint(tmp_path / "last.pt").run_config["selection"] is None


def test_the_returned_model_scores_the_best_held_out_figure(colorizer, tmp_path, one_thread):
    config = dataclasses.replace(HURTING, lr=1e-2, grad_clip=1.0, select_every=1)
    result = loops.tune(load_checkpoint(colorizer), DATA, config,
                        checkpoint_path=tmp_path / "tuned.pt", progress=False)
    record = result.selection
    assert sorted(record.scores) == [0, 1, 2, 3, 4]
    assert record.best_metric == max(record.scores.values())
    assert held_out_score((result.model, result.task)) == pytest.approx(record.best_metric)


class DiesAtStep3:
    """A metrics log whose worker dies at step 3 (after the checkpoint of step 2)."""

    def write(self, stage: str, step: int, **metrics) -> None:
        if step == 3:
            raise KeyboardInterrupt


def test_a_resumed_run_keeps_the_best_weights_of_the_attempt_before(
    colorizer, minus_the_metric, tmp_path, one_thread
):
    start = load_checkpoint(colorizer)
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        loops.tune(start, DATA, HURTING, checkpoint_path=path, log=DiesAtStep3(),
                   progress=False, save_every=2)
    saved = load_checkpoint(path)
    assert saved.step == 2 and not same_weights(saved.state, start.state)
    # The best so far is the start, whose weights only the checkpoint's best_model holds.
    assert saved.run_config["selection"]["best_step"] == 0
    assert same_weights(saved.best_state, start.state)
    first_score = saved.run_config["selection"]["start_metric"]

    resumed = loops.tune(saved, DATA, HURTING, checkpoint_path=path, progress=False,
                         save_every=2)
    record = resumed.selection
    assert resumed.steps == 4 and sorted(record.scores) == [0, 2, 4]
    assert record.scores[0] == first_score  # kept from the first attempt, not scored again
    assert record.best_step == 0
    assert same_weights(resumed.model.state_dict(), start.state)
    assert same_weights(load_checkpoint(path).state, start.state)


def test_held_out_images_without_ground_truth_are_scored_by_the_learned_reward(
    tiny_detection_mle, tmp_path, one_thread
):
    """A folder whose held-out images have no ground truth (heldout.json says so, as the
    platform's export of unannotated project images does): selection scores the policy's
    greedy outputs with the learned reward, and says so; without a reward model it is refused."""
    folder = tmp_path / "unannotated"
    instances = json.loads(export_shapes_coco(folder, "val", 6).read_text())
    write_heldout(folder, [image["id"] for image in instances["images"][:2]],
                  ground_truth=False)
    start = load_checkpoint(tiny_detection_mle)
    data = dataclasses.replace(DataConfig(max_objects=3), data_dir=str(folder))
    config = TuneConfig(steps=2, batch_size=2, samples=2, warmup=1, select_every=1)
    torch.manual_seed(0)
    reward_model = RewardModel(RewardModelConfig(num_classes=8, image_size=32, width=8,
                                                 stages=2))
    result = loops.tune(start, data, config, checkpoint_path=tmp_path / "t.pt",
                        reward_model=reward_model, progress=False)
    record = result.selection
    assert (record.metric, record.source, record.images) == ("learned_reward",
                                                             "learned_reward", 2)
    assert sorted(record.scores) == [0, 1, 2]
    assert "the learned reward's mean score, no ground truth" in record.summary()
    with pytest.raises(ValueError, match="no ground truth, and no learned reward"):
        loops.tune(start, data, config, checkpoint_path=tmp_path / "u.pt", progress=False)
