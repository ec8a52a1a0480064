"""A heartbeat for background jobs: a thread that says "alive" every few seconds while a job
runs, independent of how long one training step takes. It dies with the worker process, which
is what lets the reaper tell a slow job from a dead worker."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def beating(beat: Callable[[], bool], every_s: float | None, name: str) -> Iterator[None]:
    """Call `beat()` every `every_s` seconds inside the block (never when `every_s` is falsy);
    it stops early when `beat()` returns False (the job is no longer this worker's)."""
    if not every_s:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(every_s) and beat():
                pass
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
