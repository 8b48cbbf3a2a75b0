"""Progress of a backtest in rebalance dates: the dates a policy's schedule checks, summed over
the policies of a comparison (a calendar policy: its rebalance dates; a band checked daily:
every trading day)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from finwiz.errors import ConfigurationError

__all__ = ["DateProgress", "Progress", "scheduled_dates"]

Progress = bool | Callable[[int, int], object] | None


def scheduled_dates(policy: Any, dates: Any) -> int:
    """How many of ``dates`` ``policy`` checks (0 when its schedule cannot say: the run names why)."""
    try:
        return int(np.count_nonzero(np.asarray(policy.schedule(dates), dtype=bool)))
    except Exception:  # the simulation raises the schedule's error with the policy's name
        return 0


class DateProgress:
    """Counts rebalance dates done out of ``total`` and reports them: to a tqdm bar on stderr
    (``progress=True``), to ``progress(done, total)`` (a callable), or nowhere (``False``)."""

    def __init__(self, progress: Progress, total: int, description: str) -> None:
        self.total, self.done = total, 0
        self._bar: Any = None
        self._callback: Callable[[int, int], object] | None = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=description, unit="date", file=sys.stderr, dynamic_ncols=True)
        elif callable(progress):
            self._callback = progress
        elif progress not in (False, None):
            raise ConfigurationError("progress must be True, False or a callable (done, total)")

    @property
    def active(self) -> bool:
        """Whether anything listens (so a caller can skip counting)."""
        return self._bar is not None or self._callback is not None

    def advance(self, dates: int) -> None:
        """``dates`` more rebalance dates are done."""
        if dates <= 0:
            return
        self.done += dates
        if self._bar is not None:
            self._bar.update(dates)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
