"""Objects a process pool worker cannot load, as it cannot load a class defined in a notebook.

In its own small module so that pool workers import it without importing a test module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from finwiz.optimizer import OptimizationConstraint


def _load(made_in: int) -> NotLoadableInWorker:
    if os.getpid() != made_in:  # a pool worker (its arguments are loaded before it knows it is one)
        raise AttributeError("Can't get attribute 'NotLoadableInWorker' on <module '__main__'>")
    return NotLoadableInWorker()


class NotLoadableInWorker(OptimizationConstraint):
    """A constraint that loads in the process that made it and in no pool worker."""

    name = "not_loadable_in_worker"

    def limits(self) -> Mapping[str, float]:
        return {}

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (_load, (os.getpid(),))
