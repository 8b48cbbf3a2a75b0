"""What each stage of a rebalance ran: solver calls, descent rounds, seconds, a note on a fallback.

Deep code counts (``count("solves")`` in the solver policy, ``count("highs")`` per HiGHS call,
``count("descent")`` per descent round) into the stage that is running, through a context
variable, so no counter is threaded through the calls (and threads or tasks each count their own).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from finwiz.schemas import StageRecord

__all__ = ["Stages", "count", "note"]

_running: ContextVar[tuple[Counter[str], list[str]] | None] = ContextVar("finwiz_stage", default=None)


def count(kind: str, k: int = 1) -> None:
    """Add ``k`` to the running stage's ``kind`` counter (nothing outside a stage)."""
    running = _running.get()
    if running is not None:
        running[0][kind] += k


def note(text: str) -> None:
    """Say on the running stage's record that something worth knowing ran (e.g. a fallback)."""
    running = _running.get()
    if running is not None:
        running[1].append(text)


class Stages:
    """The records of one rebalance's stages, in the order they ran."""

    def __init__(self) -> None:
        self.records: list[StageRecord] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run a stage: what it counts and notes, and its seconds, become its record."""
        counts: Counter[str] = Counter()
        notes: list[str] = []
        token = _running.set((counts, notes))
        start = time.perf_counter()
        try:
            yield
        finally:
            _running.reset(token)
            self.records.append(
                StageRecord(
                    name=name,
                    seconds=time.perf_counter() - start,
                    solver_calls=counts["solves"] + counts["highs"],
                    rounds=counts["descent"],
                    note="; ".join(notes),
                )
            )
