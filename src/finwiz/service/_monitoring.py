"""Timing: ``monitor_performance`` logs how long an operation took and whether it failed."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

__all__ = ["monitor_performance"]

logger = logging.getLogger("finwiz.performance")

P = ParamSpec("P")
R = TypeVar("R")


def _log_outcome(operation: str, started: float, error: BaseException | None) -> None:
    elapsed = time.perf_counter() - started
    extra = {"operation": operation, "duration_seconds": elapsed, "succeeded": error is None}
    if error is None:
        logger.info("%s finished in %.3f s", operation, elapsed, extra=extra)
    else:
        logger.warning(
            "%s failed after %.3f s: %s: %s",
            operation,
            elapsed,
            type(error).__name__,
            error,
            extra=extra,
        )


def _wrap(function: Callable[P, R], operation: str) -> Callable[P, R]:
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                outcome = await function(*args, **kwargs)
            except BaseException as exc:
                _log_outcome(operation, started, exc)
                raise
            _log_outcome(operation, started, None)
            return outcome

        return timed_async  # type: ignore[return-value]

    @functools.wraps(function)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            outcome = function(*args, **kwargs)
        except BaseException as exc:
            _log_outcome(operation, started, exc)
            raise
        _log_outcome(operation, started, None)
        return outcome

    return timed


@overload
def monitor_performance(function: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def monitor_performance(
    function: None = None, /, *, name: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def monitor_performance(
    function: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Log how long each call of the decorated function takes, and its failures.

    Works on plain and ``async`` functions, bare (``@monitor_performance``) or with a name
    (``@monitor_performance(name="fetch prices")``). Durations go to the
    ``finwiz.performance`` logger at INFO, failures at WARNING (the exception is re-raised);
    each record carries ``operation``, ``duration_seconds`` and ``succeeded`` attributes for
    structured log handlers.
    """
    if function is not None:
        return _wrap(function, name or function.__qualname__)

    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        return _wrap(inner, name or inner.__qualname__)

    return decorate
