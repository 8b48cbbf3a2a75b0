"""A custom constraint that kills the process pool worker running it, as the OOM killer would.

In its own small module so that pool workers unpickle it without importing a test module.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping

from finwiz.optimizer import OptimizationConstraint


class KillsItsWorker(OptimizationConstraint):
    """Ends the worker process abruptly (no exception, no cleanup) when it is used in one."""

    name = "kills_its_worker"

    def limits(self) -> Mapping[str, float]:
        if multiprocessing.parent_process() is not None:  # only ever in a pool worker
            os._exit(70)
        return {}


class InterruptsItsWorker(OptimizationConstraint):
    """Raises KeyboardInterrupt in the pool worker using it, as Ctrl-C does in every worker."""

    name = "interrupts_its_worker"

    def limits(self) -> Mapping[str, float]:
        if multiprocessing.parent_process() is not None:
            raise KeyboardInterrupt
        return {}
