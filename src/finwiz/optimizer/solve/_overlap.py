"""One kept worker thread for the work of a cold first solve that does not need Clarabel's point.

Clarabel releases the GIL while it iterates, so a new OSQP workspace (it needs only the QP) can be
set up on another core meanwhile. Where no core is free the worker has not started the job by the
time Clarabel returns: the caller then takes it back (:meth:`Job.result` gives None) and does the
work itself, as it would have without the worker, so a busy machine pays only the hand-over.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Job", "submit"]

T = TypeVar("T")


class Job(Generic[T]):
    """A call run once, by the worker or not at all: whoever claims it first decides."""

    __slots__ = ("_call", "_claim", "_done", "_value")

    def __init__(self, call: Callable[[], T]) -> None:
        self._call: Callable[[], T] | None = call
        self._claim = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()  # released by the worker once the call has returned or raised
        self._value: T | None = None

    def run(self) -> None:
        """The worker's side: the call, unless the caller took the job back."""
        if not self._claim.acquire(blocking=False):
            return
        try:
            assert self._call is not None
            self._value = self._call()
        except BaseException:  # the caller does the work again and meets the error itself
            self._value = None
        finally:
            self._call = None
            self._done.release()

    def result(self) -> T | None:
        """The call's value once the worker has run it; None where it raised, or had not started
        (taken back here: it never runs)."""
        if self._claim.acquire(blocking=False):
            self._call = None
            return None
        with self._done:
            return self._value


_jobs: queue.SimpleQueue[Job[object]] = queue.SimpleQueue()
_worker: list[threading.Thread] = []
_start_lock = threading.Lock()
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _serve() -> None:
    while True:
        _jobs.get().run()


def submit(call: Callable[[], T]) -> Job[T]:
    """``call`` handed to the worker (started once, a daemon); on one core it never runs (the
    caller's :meth:`Job.result` takes it back)."""
    job: Job[T] = Job(call)
    if _CORES < 2:
        return job
    if not _worker:
        with _start_lock:
            if not _worker:
                thread = threading.Thread(target=_serve, name="finwiz-solve-overlap", daemon=True)
                thread.start()
                _worker.append(thread)
    _jobs.put(job)  # type: ignore[arg-type]
    return job


def _forget() -> None:
    """In a forked child: the parent's worker does not exist there, nor do its queued jobs."""
    global _jobs, _start_lock
    _jobs, _start_lock = queue.SimpleQueue(), threading.Lock()
    _worker.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
