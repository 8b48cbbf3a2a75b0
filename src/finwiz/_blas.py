"""One BLAS thread for the dense linear algebra of a full-rank covariance."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import numpy  # noqa: F401 - numpy's and scipy's BLAS loaded before the controller looks for them
import scipy.linalg  # noqa: F401

__all__ = ["one_thread", "single_threaded", "single_threaded_given"]

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_depth = 0
_restore: Any = None


@functools.cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and LAPACK on one thread inside the block (threadpoolctl; restored by the last of
    nested or concurrent blocks to leave).

    Why: the dense products here are bound by memory, not by cores, and OpenBLAS's threads on a
    busy machine wait on each other (figures: docs/decisions/dense-covariance.md)."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = _controller().limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore.restore_original_limits()
                _restore = None


def single_threaded(function: Callable[P, T]) -> Callable[P, T]:
    """``function`` run inside :func:`one_thread`."""

    @functools.wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
        with one_thread():
            return function(*args, **kwargs)

    return wrapped


def single_threaded_given(keyword: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """``function`` run inside :func:`one_thread` when it is called with ``keyword`` not None
    (e.g. a rebalance given a dense ``covariance``: its products are n x n matrix-vector ones)."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
            if kwargs.get(keyword) is None:
                return function(*args, **kwargs)
            with one_thread():
                return function(*args, **kwargs)

        return wrapped

    return decorate
