"""A JSON-lines metrics log per run: one object per line, `runs/<name>/metrics.jsonl`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends `{"time", "stage", "step", ...metrics}` lines; flushes each one (a crash keeps
    everything logged so far)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, stage: str, step: int, **metrics: Any) -> None:
        if not self.path:
            return
        line = {"time": round(time.time(), 3), "stage": stage, "step": step, **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")
