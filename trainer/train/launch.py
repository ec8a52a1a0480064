"""`tune` in several data-parallel processes started by torchrun (`TuneConfig.processes`).

`tune_in_processes` takes `tune`'s arguments and returns its result. It writes them to a private
folder (one `torch.save`d job), runs

    torchrun --standalone --nproc_per_node K -m trainer.train.launch JOB

whose processes each run `tune` (`trainer.train.distributed` says how they share the work),
passes rank 0's metrics lines to `log` as they come (a log that raises, as the platform's does
when a run is cancelled, stops the processes) and rebuilds the result from rank 0's final
checkpoint (its held-out selection record included). The processes exit when the launcher
dies, so a killed worker leaves no run behind to overwrite the checkpoint a resumed run is
writing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from trainer.configs import DataConfig, TuneConfig
from trainer.train.checkpoint import Checkpoint, load_checkpoint
from trainer.train.distributed import leave
from trainer.train.loops import RunResult, pick_device, tune
from trainer.train.metrics import MetricsLog
from trainer.train.selection import Selection

JOB, METRICS, RESULT = "job.pt", "metrics.jsonl", "result.json"
POLL_S = 0.5  # how often the launcher reads new metrics lines and checks on the processes


def tune_in_processes(pretrained: Checkpoint, data: DataConfig, config: TuneConfig, *,
                      checkpoint_path: str | Path, log: Any = None, **options: Any) -> RunResult:
    """`tune(pretrained, data, config, checkpoint_path=..., log=log, **options)` (its other
    keyword arguments) in `config.processes` processes."""
    options["checkpoint_path"] = checkpoint_path
    if "WORLD_SIZE" in os.environ:  # already one of torchrun's processes
        return tune(pretrained, data, config, log=log, **options)
    log = log or MetricsLog(None)
    with tempfile.TemporaryDirectory(prefix="tunelab-tune-") as tmp:
        folder = Path(tmp)
        torch.save({"args": (pretrained, data, config), "options": options,
                    "launcher": os.getpid()}, folder / JOB)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={config.processes}", "-m", __name__, str(folder / JOB)]
        with subprocess.Popen(command) as process:
            try:
                _relay(process, folder / METRICS, log)
            finally:
                _stop(process)
        if process.returncode:
            raise _failure(folder, process.returncode, config.processes)
        outcome = json.loads((folder / RESULT).read_text())
    final = load_checkpoint(checkpoint_path)
    model, task = final.build(pick_device())
    return RunResult(model, task, final.class_names, **outcome,
                     selection=Selection.from_dict(final.run_config.get("selection")))


def _relay(process: subprocess.Popen, path: Path, log: Any) -> None:
    """Pass the metrics lines rank 0 writes to `log` until the processes end."""
    offset = 0
    while True:
        ended = process.poll() is not None  # before reading: the last read gets every line
        if path.is_file():
            with path.open("rb") as file:
                file.seek(offset)
                chunk = file.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
            offset += len(complete)
            for line in complete.splitlines():
                entry = json.loads(line)
                entry.pop("time")
                log.write(entry.pop("stage"), entry.pop("step"), **entry)
        if ended:
            return
        time.sleep(POLL_S)


def _stop(process: subprocess.Popen) -> None:
    """End torchrun (it ends its processes) if it still runs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _failure(folder: Path, status: int, processes: int) -> Exception:
    """The first error a process recorded: ValueError for a setting the run cannot use (a
    one-line message, as in one process), else RuntimeError."""
    for path in sorted(folder.glob("error-*.txt")):
        kind, _, message = path.read_text().partition(": ")
        if kind == "ValueError":
            return ValueError(message)
        return RuntimeError(f"tuning in {processes} processes failed: {kind}: {message}")
    return RuntimeError(f"tuning in {processes} processes failed (torchrun exit status {status})")


def _exit_with(launcher: int) -> None:
    """Exit this process when the launcher's process is gone."""
    def watch() -> None:
        while True:
            time.sleep(2)
            try:
                os.kill(launcher, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, as another user's: not ours to judge
                pass

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def main(job_path: str) -> None:
    """One torchrun process: run the job's `tune`, rank 0 writing metrics and the result."""
    folder = Path(job_path).parent
    job = torch.load(job_path, weights_only=False)  # written by tune_in_processes just now
    _exit_with(job["launcher"])
    rank = int(os.environ["RANK"])
    try:
        result = tune(*job["args"], log=MetricsLog(folder / METRICS), **job["options"])
    except Exception as error:
        (folder / f"error-{rank}.txt").write_text(f"{type(error).__name__}: {error}")
        leave(synchronise=False)
        raise
    leave()
    if rank == 0:
        (folder / RESULT).write_text(json.dumps(
            {"seconds": result.seconds, "step_s": result.step_s, "steps": result.steps}))


if __name__ == "__main__":
    main(sys.argv[1])
