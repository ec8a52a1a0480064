"""Data-parallel tuning: two gloo processes started by torchrun take the steps one process takes
with the same global batch; a batch the processes cannot share equally is refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from trainer.cli import main
from trainer.configs import DataConfig, TuneConfig, from_dict
from trainer.train.checkpoint import Checkpoint, load_checkpoint
from trainer.train.launch import tune_in_processes
from trainer.train.loops import tune

# Sampling temperature 2 on a barely trained model: the samples' lengths (valid boxes) differ
# from image to image, so the shards' confidence losses average over different counts.
# select_every=0: the updates themselves are compared (selection could keep the start).
TUNE = TuneConfig(steps=3, batch_size=4, samples=3, warmup=1, log_every=1, threads=1,
                  temperature=2.0, lr=1e-3, select_every=0)


@pytest.fixture
def start(tiny_detection_mle) -> Checkpoint:
    return load_checkpoint(tiny_detection_mle)


def data_of(checkpoint: Checkpoint) -> DataConfig:
    return from_dict(DataConfig, checkpoint.data_config)


class Recorder:
    """A metrics log that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, int, dict[str, Any]]] = []

    def write(self, stage: str, step: int, **metrics: Any) -> None:
        self.lines.append((stage, step, metrics))


def test_two_gloo_processes_take_the_steps_of_one_with_the_same_global_batch(
    start, tmp_path, one_thread
) -> None:
    data = data_of(start)
    alone, shared = Recorder(), Recorder()
    one = tune(start, data, TUNE, checkpoint_path=tmp_path / "one.pt", log=alone,
               progress=False)
    two = tune_in_processes(start, data, dataclasses.replace(TUNE, processes=2),
                            checkpoint_path=tmp_path / "two.pt", log=shared, progress=False)
    assert two.steps == 3
    moved = [k for k, v in one.model.state_dict().items() if not torch.equal(v, start.state[k])]
    assert moved
    for key, weight in one.model.state_dict().items():
        torch.testing.assert_close(two.model.state_dict()[key], weight, rtol=1e-4, atol=1e-6)
    assert [(stage, step) for stage, step, _ in shared.lines] == [("tune", 0), ("tune", 1),
                                                                  ("tune", 2)]
    for (_, _, mine), (_, _, theirs) in zip(alone.lines, shared.lines, strict=True):
        for name in ("reward", "pg_loss", "aux_loss", "logp", "grad_norm", "lr"):
            assert theirs[name] == pytest.approx(mine[name], rel=1e-4, abs=1e-6), name
    assert any(line["aux_loss"] > 0 for _, _, line in alone.lines)
    # Rank 0's checkpoint resumes like one process's: same step and stream position.
    saved = load_checkpoint(tmp_path / "two.pt")
    assert (saved.stage, saved.step, saved.run_config["processes"]) == ("tune", 3, 2)
    assert saved.run_config["stream_position"] == load_checkpoint(
        tmp_path / "one.pt").run_config["stream_position"]


def test_a_failing_log_stops_the_processes(start, tmp_path) -> None:
    """The platform's log raises when a run is cancelled: the launcher ends torchrun and passes
    the exception on."""

    class Cancelled(Exception):
        pass

    class CancelAtOnce:
        def write(self, stage: str, step: int, **metrics: Any) -> None:
            raise Cancelled

    config = dataclasses.replace(TUNE, processes=2, steps=1000)
    with pytest.raises(Cancelled):
        tune_in_processes(start, data_of(start), config,
                          checkpoint_path=tmp_path / "t.pt", log=CancelAtOnce(), progress=False)
    assert not (tmp_path / "t.pt").exists()  # stopped long before its final checkpoint


def test_a_batch_the_processes_cannot_share_equally_is_refused(tiny_detection_mle,
                                                              capsys) -> None:
    with pytest.raises(ValueError, match="batch_size=6 is not divisible by processes=4"):
        TuneConfig(batch_size=6, processes=4)
    code = main(["tune", "--checkpoint", str(tiny_detection_mle), "--quiet",
                 "--config", "batch_size=3", "processes=2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ("error: batch_size=3 is not divisible by processes=2: each process "
                           "takes an equal share of the batch")


def test_tune_in_one_process_refuses_more_processes_without_torchrun(start, one_thread) -> None:
    config = dataclasses.replace(TUNE, processes=2)
    with pytest.raises(ValueError, match="processes=2: start them with torchrun"):
        tune(start, data_of(start), config, checkpoint_path="unused.pt", progress=False)
