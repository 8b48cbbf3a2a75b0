"""Solvers that print to the process's standard output in C/C++ (HiGHS's MIP solver prints
``transformNewIntegerFeasibleSolution`` lines whatever its options say) are silenced at the file
descriptor: no solver may print unless the user asks."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["quiet_stdout"]

_lock = threading.Lock()


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to the null device while the block runs (Python's own
    ``sys.stdout`` is flushed first and keeps working when it is not that descriptor)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
    except (AttributeError, OSError, ValueError):  # no real descriptor (embedded interpreters)
        yield
        return
    with _lock:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        saved = os.dup(fd)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)
                try:
                    yield
                finally:
                    os.dup2(saved, fd)
        finally:
            os.close(saved)
