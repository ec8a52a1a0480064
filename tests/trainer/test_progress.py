"""A time-budgeted run's progress bar counts the seconds of its budget, not steps toward a
step bound it will never reach (which showed an ETA of hours)."""

from __future__ import annotations

from tests.trainer.test_cli import TINY
from trainer.cli import main
from trainer.train.progress import RunProgress


def test_a_budgeted_bar_shows_the_budget_used_and_the_step(capsys) -> None:
    bar = RunProgress("tune", start=0, steps=100_000, max_seconds=600, enabled=True)
    bar.step_done(0, reward="0.512")
    bar.step_done(1)
    bar.close()
    err = capsys.readouterr().err
    assert "/600 s of the budget" in err and "step=2" in err and "reward=0.512" in err
    assert "100000" not in err


def test_a_bar_without_budget_counts_steps(capsys) -> None:
    bar = RunProgress("pretrain", start=3, steps=10, max_seconds=0, enabled=True)
    bar.step_done(3, loss="1.000")
    bar.close()
    assert "4/10" in capsys.readouterr().err


def test_the_pretrain_command_shows_its_budget(capsys, tmp_path) -> None:
    code = main(["pretrain", "--runs", str(tmp_path), "--save", str(tmp_path / "m.pt"),
                 "--config", "steps=2", "batch_size=2", "warmup=1", "max_seconds=900", *TINY])
    assert code == 0
    err = capsys.readouterr().err
    assert "/900 s of the budget" in err and "step=2" in err
