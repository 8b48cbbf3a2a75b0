"""What each stage of a rebalance ran: solver calls, descent rounds, seconds, a note on a fallback.

Deep code counts (``count("solves")`` in the solver policy, ``count("highs")`` per HiGHS call,
``count("descent")`` per descent round) into the stage that is running, through a context
variable, so no counter is threaded through the calls (and threads or tasks each count their own).
"""

from __future__ import annotations

import time
from collections import Counter
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

    def stage(self, name: str) -> _Stage:
        """Run a stage (``with stages.stage(name):``): what it counts and notes, and its seconds,
        become its record."""
        return _Stage(self.records, name)


class _Stage:
    __slots__ = ("counts", "name", "notes", "records", "start", "token")

    def __init__(self, records: list[StageRecord], name: str) -> None:
        self.records, self.name = records, name
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []

    def __enter__(self) -> None:
        self.token = _running.set((self.counts, self.notes))
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self.start
        _running.reset(self.token)
        counts = self.counts
        record = StageRecord.trusted(
            name=self.name,
            seconds=seconds,
            solver_calls=counts["solves"] + counts["highs"],
            rounds=counts["descent"],
            note="; ".join(self.notes),
        )
        self.records.append(record)
