"""An async publish/subscribe bus for rebalancing life-cycle events.

A failing or hanging subscriber is logged and skipped: it can never break, or stall for
long, the rebalance that published the event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeAlias

__all__ = [
    "ALL_EVENTS",
    "EventHandler",
    "RebalancingEvent",
    "RebalancingEventBus",
    "RebalancingEventType",
]

logger = logging.getLogger("finwiz.events")

ALL_EVENTS = "*"
"""Subscribe to this name to receive every event."""


class RebalancingEventType(StrEnum):
    """The events :class:`~finwiz.PortfolioRebalancingOrchestrator` publishes, in order."""

    STARTED = "rebalancing_started"
    COMPLETED = "rebalancing_completed"
    FAILED = "rebalancing_failed"


@dataclass(frozen=True)
class RebalancingEvent:
    """One event: its ``name``, the portfolio it concerns, and a read-only ``payload``."""

    name: str
    portfolio_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        # Subscribers share the event; a read-only view stops one from changing what the next sees.
        object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))


EventHandler: TypeAlias = Callable[[RebalancingEvent], Awaitable[None] | None]
"""A subscriber: a coroutine function or a plain function taking the event."""


class RebalancingEventBus:
    """Delivers events to subscribers; async and plain callables both work.

    Subscribers of one event run concurrently; each gets at most ``subscriber_timeout``
    seconds. Exceptions and timeouts are logged on the ``finwiz.events`` logger and counted in
    :attr:`subscriber_failures`, never raised to the publisher.

    Example::

        bus = RebalancingEventBus()

        async def audit(event: RebalancingEvent) -> None:
            print(event.name, event.portfolio_id)

        bus.subscribe("rebalancing_completed", audit)
    """

    def __init__(self, *, subscriber_timeout: float = 5.0) -> None:
        self.subscriber_timeout = subscriber_timeout
        self.subscriber_failures = 0
        self._handlers: dict[str, list[EventHandler]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(subscriber_timeout={self.subscriber_timeout!r})"

    def subscribe(self, event_name: str, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` for each event named ``event_name`` (``"*"`` for all).

        Returns a function that unsubscribes the handler.
        """
        if not callable(handler):
            raise TypeError(f"event handler for {event_name!r} must be callable")
        self._handlers.setdefault(str(event_name), []).append(handler)
        return lambda: self.unsubscribe(event_name, handler)

    def unsubscribe(self, event_name: str, handler: EventHandler) -> None:
        """Stop calling ``handler`` for ``event_name`` (no error if it was not subscribed)."""
        handlers = self._handlers.get(str(event_name), [])
        if handler in handlers:
            handlers.remove(handler)

    def subscribers(self, event_name: str) -> list[EventHandler]:
        """The handlers an event named ``event_name`` reaches, specific ones first."""
        return [*self._handlers.get(str(event_name), []), *self._handlers.get(ALL_EVENTS, [])]

    async def publish(self, event: RebalancingEvent) -> None:
        """Deliver ``event`` to its subscribers and wait for them (each within the timeout)."""
        handlers = self.subscribers(event.name)
        if handlers:
            await asyncio.gather(*(self._deliver(handler, event) for handler in handlers))

    async def emit(self, name: str, portfolio_id: str | None = None, **payload: Any) -> RebalancingEvent:
        """Build a :class:`RebalancingEvent` from the arguments, publish it and return it."""
        event = RebalancingEvent(str(name), portfolio_id, payload)
        await self.publish(event)
        return event

    async def _deliver(self, handler: EventHandler, event: RebalancingEvent) -> None:
        try:
            outcome = handler(event)
            if inspect.isawaitable(outcome):
                await asyncio.wait_for(_as_coroutine(outcome), self.subscriber_timeout)
        except TimeoutError:
            self.subscriber_failures += 1
            logger.warning(
                "event subscriber %r timed out on %s after %.1f s",
                handler,
                event.name,
                self.subscriber_timeout,
            )
        except Exception:
            self.subscriber_failures += 1
            logger.exception("event subscriber %r failed on %s", handler, event.name)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable
