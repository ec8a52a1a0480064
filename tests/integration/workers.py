"""Handles on real Celery worker processes, and waiting on what they do (integration tests)."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# Beats every second, presumed dead after three silent seconds: a kill is noticed quickly.
HEARTBEAT_S, STALE_S = 1, 3


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """kill -9 of the worker's process group: no handler, no acknowledgement, nothing."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Cold shutdown (SIGQUIT): the test is over, nothing is left in flight."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for(condition: Callable[[], bool], *, what: str, worker: Worker | None = None,
             timeout: float = 45.0) -> None:
    """Poll until `condition()`; fail with the worker's log when it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{worker.output() if worker else ''}")
