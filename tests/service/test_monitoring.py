"""monitor_performance: durations and failures are logged; results and errors pass through."""

from __future__ import annotations

import logging

import pytest

from finwiz.service._monitoring import monitor_performance


def test_sync_function_is_timed(caplog: pytest.LogCaptureFixture) -> None:
    @monitor_performance
    def add(a: int, b: int) -> int:
        return a + b

    with caplog.at_level(logging.INFO, logger="finwiz.performance"):
        assert add(1, 2) == 3
    (record,) = caplog.records
    assert "add finished in" in record.getMessage()
    assert record.succeeded is True  # type: ignore[attr-defined]
    assert record.duration_seconds >= 0  # type: ignore[attr-defined]


async def test_async_function_failure_is_logged_and_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @monitor_performance(name="fetch prices")
    async def fetch() -> None:
        raise LookupError("no quote")

    with caplog.at_level(logging.INFO, logger="finwiz.performance"), pytest.raises(LookupError):
        await fetch()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "fetch prices failed after" in record.getMessage()
    assert "LookupError: no quote" in record.getMessage()
    assert record.operation == "fetch prices"  # type: ignore[attr-defined]


async def test_async_result_passes_through() -> None:
    @monitor_performance
    async def value() -> int:
        return 7

    assert await value() == 7
    assert value.__name__ == "value"
