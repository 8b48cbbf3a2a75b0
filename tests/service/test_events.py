"""The event bus: delivery, wildcard, unsubscribe, and isolation from failing subscribers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from finwiz.service._events import RebalancingEvent, RebalancingEventBus, RebalancingEventType


async def test_async_and_plain_subscribers_receive_the_event() -> None:
    bus = RebalancingEventBus()
    seen: list[str] = []

    async def on_async(event: RebalancingEvent) -> None:
        seen.append(f"async:{event.name}:{event.payload['n']}")

    bus.subscribe("rebalancing_started", on_async)
    bus.subscribe(RebalancingEventType.STARTED, lambda e: seen.append(f"plain:{e.portfolio_id}"))
    bus.subscribe("*", lambda e: seen.append(f"all:{e.name}"))
    event = await bus.emit(RebalancingEventType.STARTED, "p1", n=3)
    assert event.name == "rebalancing_started"
    assert sorted(seen) == ["all:rebalancing_started", "async:rebalancing_started:3", "plain:p1"]


async def test_unsubscribe_stops_delivery() -> None:
    bus = RebalancingEventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe("x", lambda e: seen.append(e.name))
    await bus.emit("x")
    unsubscribe()
    unsubscribe()  # idempotent
    await bus.emit("x")
    assert seen == ["x"]


async def test_failing_and_hanging_subscribers_are_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = RebalancingEventBus(subscriber_timeout=0.05)
    seen: list[str] = []

    async def broken(event: RebalancingEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def hangs(event: RebalancingEvent) -> None:
        await asyncio.sleep(10)

    def broken_sync(event: RebalancingEvent) -> None:
        raise ValueError("sync bug")

    bus.subscribe("x", broken)
    bus.subscribe("x", hangs)
    bus.subscribe("x", broken_sync)
    bus.subscribe("x", lambda e: seen.append("ok"))
    with caplog.at_level(logging.WARNING, logger="finwiz.events"):
        await bus.emit("x")
    assert seen == ["ok"]
    assert bus.subscriber_failures == 3
    assert "subscriber bug" in caplog.text
    assert "timed out" in caplog.text


def test_event_payload_is_read_only() -> None:
    event = RebalancingEvent("x", payload={"a": 1})
    with pytest.raises(TypeError):
        event.payload["a"] = 2  # type: ignore[index]


def test_subscribe_refuses_non_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        RebalancingEventBus().subscribe("x", 42)  # type: ignore[arg-type]
