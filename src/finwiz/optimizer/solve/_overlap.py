"""One kept worker thread for the work of a cold first solve that does not need Clarabel's point.

Clarabel releases the GIL while it iterates, so a new OSQP workspace (it needs only the QP) can be
set up on another core meanwhile, and so can what a caller hands over with :func:`beside` (the
whole-share stage's pieces of the model). Where no core is free the worker has not started a job
by the time Clarabel returns: the caller then takes it back (:meth:`Job.result` gives None) and
does the work itself, as it would have without the worker; on a machine whose load leaves no core
free nothing is handed over at all (:func:`_spare_core`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Job", "beside", "collect", "submit"]

T = TypeVar("T")


class Job(Generic[T]):
    """A call run once, by the worker or not at all: whoever claims it first decides. It runs in
    its caller's context, so what it counts and notes goes to the caller's stage (``_trace``)."""

    __slots__ = ("_call", "_claim", "_context", "_done", "_value")

    def __init__(self, call: Callable[[], T]) -> None:
        self._call: Callable[[], T] | None = call
        self._context = contextvars.copy_context()
        self._claim = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()  # released once the call has returned or raised, or the job was taken back
        self._value: T | None = None

    def run(self) -> None:
        """The worker's side: the call, unless the caller took the job back."""
        if not self._claim.acquire(blocking=False):
            return
        try:
            assert self._call is not None
            self._value = self._context.run(self._call)
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
            self._done.release()
            return None
        with self._done:
            return self._value


_jobs: queue.SimpleQueue[Job[Any]] = queue.SimpleQueue()
_worker: list[threading.Thread] = []
_start_lock = threading.Lock()
_pending = threading.local()  # this thread's jobs handed over by ``beside``, not yet queued
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _spare_core() -> bool:
    """Whether another core is likely free (the last minute's load leaves one). On a busy machine a
    job the worker has started can be descheduled holding the GIL that Clarabel's caller needs back
    (its wait grew by ~1-4 ms at load ~6): there the caller does the work itself, as before."""
    if _CORES < 2 or not hasattr(os, "getloadavg"):  # no load to read (Windows): the caller works alone
        return False
    try:
        return os.getloadavg()[0] < _CORES - 0.5
    except OSError:
        return False


def _serve() -> None:
    while True:
        _jobs.get().run()


def _waiting() -> list[Job[Any]]:
    if not hasattr(_pending, "jobs"):
        _pending.jobs = []
    jobs: list[Job[Any]] = _pending.jobs
    return jobs


def submit(call: Callable[[], T]) -> list[Job[Any]]:
    """``call`` handed to the worker (started once, a daemon), then the jobs this thread handed over
    with :func:`beside`: the first job is ``call``'s. Without a spare core none is queued
    (:func:`collect` takes them back)."""
    waiting = _waiting()
    jobs: list[Job[Any]] = [Job(call), *waiting]
    waiting.clear()
    if not _spare_core() or threading.current_thread() in _worker:  # the worker never waits for itself
        return jobs
    if not _worker:
        with _start_lock:
            if not _worker:
                thread = threading.Thread(target=_serve, name="finwiz-solve-overlap", daemon=True)
                thread.start()
                _worker.append(thread)
    for job in jobs:
        _jobs.put(job)
    return jobs


def collect(jobs: list[Job[Any]]) -> Any:
    """Each job run (waited for) or taken back, so no work of the worker's is left behind; the first one's value."""
    values = [job.result() for job in jobs]
    return values[0] if values else None


@contextlib.contextmanager
def beside(call: Callable[[], T], when: bool = True) -> Iterator[Job[T]]:
    """``call`` handed to the worker by the first cold interior solve of this thread within the
    block, to run while Clarabel iterates; after the block the job's :meth:`Job.result` is its
    value, or None where no such solve ran it, or ``when`` is False (the caller then does the work itself)."""
    job: Job[T] = Job(call)
    waiting = _waiting()
    if when:
        waiting.append(job)
    try:
        yield job
    finally:
        if job in waiting:
            waiting.remove(job)


def _forget() -> None:
    """In a forked child: the parent's worker does not exist there, nor do its queued jobs."""
    global _jobs, _start_lock
    _jobs, _start_lock = queue.SimpleQueue(), threading.Lock()
    _worker.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
