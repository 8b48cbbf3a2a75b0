"""Blocking work awaited from async code without anything waiting for it on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["in_daemon_thread"]

T = TypeVar("T")


async def in_daemon_thread(function: Callable[..., T], *args: Any, name: str = "finwiz-worker", **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a daemon thread of its own, awaited without blocking the loop.

    Not ``asyncio.to_thread``: its executor's threads are joined by ``asyncio.run`` on the way
    out and again at interpreter exit, so work the caller stopped waiting for (a deadline, a
    cancellation) still held the process until it returned: a hung download for good, a solve
    for its whole time limit. A daemon thread is abandoned instead: it runs on until ``function``
    returns (Python cannot stop a thread), its result or error is dropped, and neither
    ``asyncio.run`` nor interpreter exit waits for it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()  # as asyncio.to_thread: the caller's context variables

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():  # the caller stopped waiting
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(T, value))

    def run() -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = context.run(function, *args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
