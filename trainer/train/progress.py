"""A training loop's progress bar in the terminal.

A run with a wall-time budget (`max_seconds`) stops at its budget long before its step bound
(100,000 steps in the benchmarks), so counting steps toward the bound would show an ETA of
hours: such a bar counts the seconds of the budget used instead, and names the step reached.
"""

from __future__ import annotations

import time
from typing import Any

from tqdm import tqdm


class RunProgress:
    """Steps toward `steps`, or the seconds used of `max_seconds` when it is set."""

    def __init__(self, desc: str, *, start: int, steps: int, max_seconds: float,
                 enabled: bool) -> None:
        self.budget = max_seconds
        self.began = time.perf_counter()
        if max_seconds > 0:
            self.bar = tqdm(total=max_seconds, desc=desc, disable=not enabled,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of the budget"
                                       "{postfix}")
        else:
            self.bar = tqdm(total=steps, initial=start, desc=desc, disable=not enabled)
        self.postfix: dict[str, Any] = {}

    def step_done(self, step: int, **postfix: Any) -> None:
        """Step `step` is done; `postfix` figures (e.g. the loss) are shown until replaced."""
        self.postfix |= postfix
        if self.budget > 0:
            self.bar.n = min(time.perf_counter() - self.began, self.budget)
            self.bar.set_postfix(step=step + 1, **self.postfix, refresh=False)
            self.bar.refresh()
        else:
            if postfix:
                self.bar.set_postfix(**self.postfix, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
