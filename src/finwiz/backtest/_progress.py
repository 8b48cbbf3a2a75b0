"""Progress of a backtest in rebalance dates: the dates a policy's schedule checks, summed over
the policies of a comparison (a calendar policy: its rebalance dates; a band checked daily:
every trading day)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from finwiz.batch import Progress, _progress_callback, _ProgressBar

__all__ = ["DateProgress", "scheduled_dates"]


def scheduled_dates(policy: Any, dates: Any) -> int:
    """How many of ``dates`` ``policy`` checks (0 when its schedule cannot say: the run names why)."""
    try:
        return int(np.count_nonzero(np.asarray(policy.schedule(dates), dtype=bool)))
    except Exception:  # the simulation raises the schedule's error with the policy's name
        return 0


class DateProgress:
    """Counts rebalance dates done out of ``total`` for ``rebalance_many``'s reporters: a tqdm bar
    on stderr in dates (``progress=True``), ``progress(done, total)`` (a callable), or none."""

    def __init__(self, progress: Progress, total: int, description: str) -> None:
        self.total, self.done = total, 0
        self._report: Callable[[int, int], object] | None = (
            _ProgressBar(total, description, unit="date") if progress is True else _progress_callback(progress, total)
        )

    def advance(self, dates: int) -> None:
        """``dates`` more rebalance dates are done."""
        if dates <= 0 or self._report is None:
            return
        self.done += dates
        self._report(self.done, self.total)

    def close(self) -> None:
        """Close the bar (idempotent; also when the run stops early)."""
        if isinstance(self._report, _ProgressBar):
            self._report.close()
