"""Yahoo Finance through a fake yfinance: NaN columns, hidden errors, rate limits, blocking."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

import pandas as pd
import pytest

from finwiz.data import YahooFinancePriceProvider
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from tests.data.conftest import FakeYFinance


def closes(*values: float) -> pd.Series:
    return pd.Series(values, index=pd.bdate_range("2024-01-02", periods=len(values)))


@pytest.fixture
def fake() -> FakeYFinance:
    return FakeYFinance(
        {"AAPL": closes(190.0, 191.5, float("nan")), "MSFT": closes(370.0, 371.0, 372.0)},
        errors={
            "GONE": "YFTzMissingError('$GONE: possibly delisted; no timezone found')",
            "NET": "ConnectionError('Failed to resolve query1.finance.yahoo.com')",
        },
    )


async def test_batch_of_current_prices_uses_last_valid_close(fake: FakeYFinance) -> None:
    provider = YahooFinancePriceProvider(yfinance_module=fake)
    prices = await provider.get_multiple_prices(["aapl", "MSFT"])
    assert prices["AAPL"].price == 191.5
    assert prices["AAPL"].timestamp == datetime(2024, 1, 3, tzinfo=UTC)
    assert prices["MSFT"].price == 372.0
    assert prices["MSFT"].source == "yahoo"
    assert len(fake.calls) == 1
    assert fake.calls[0]["tickers"] == ["AAPL", "MSFT"]
    assert fake.calls[0]["progress"] is False


async def test_nan_columns_become_errors_that_say_why(fake: FakeYFinance) -> None:
    provider = YahooFinancePriceProvider(yfinance_module=fake)
    outcomes = await provider.fetch_prices(["MSFT", "GONE", "NET", "SILENT"])
    assert outcomes["MSFT"].price == 372.0  # type: ignore[union-attr]
    reasons = {s: o.reason for s, o in outcomes.items() if isinstance(o, PriceDataError)}
    assert "unknown or delisted" in reasons["GONE"]
    assert "download failed" in reasons["NET"]
    assert "Failed to resolve" in reasons["NET"]
    assert "gave no reason" in reasons["SILENT"]


async def test_rate_limit_fails_the_batch_with_a_clear_reason(fake: FakeYFinance) -> None:
    fake.raise_exc = FakeYFinance.YFRateLimitError("Too Many Requests. Rate limited.")
    provider = YahooFinancePriceProvider(yfinance_module=fake)
    with pytest.raises(InsufficientPriceDataError) as info:
        await provider.get_multiple_prices(["AAPL", "MSFT"])
    assert info.value.symbols == ["AAPL", "MSFT"]
    assert all("rate limited" in why for why in info.value.failures.values())
    assert info.value.provider == "yahoo"


async def test_bad_close_values_are_refused() -> None:
    fake = FakeYFinance({"ZERO": closes(5.0, 0.0), "NEG": closes(-1.0, 2.0)})
    outcomes = await YahooFinancePriceProvider(yfinance_module=fake).fetch_prices(["ZERO", "NEG"])
    assert all(isinstance(o, PriceDataError) for o in outcomes.values())


async def test_blocking_download_runs_off_the_event_loop(fake: FakeYFinance) -> None:
    fake.delay = 0.3
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await YahooFinancePriceProvider(yfinance_module=fake).get_current_price("MSFT")
    task.cancel()
    assert ticks >= 10  # the loop kept running while yfinance blocked its thread


async def test_hanging_download_times_out(fake: FakeYFinance) -> None:
    fake.delay = 0.6
    provider = YahooFinancePriceProvider(yfinance_module=fake, timeout=0.1)
    with pytest.raises(PriceDataError, match="timed out"):
        await provider.get_current_price("MSFT")


async def test_history_passes_an_inclusive_end(fake: FakeYFinance) -> None:
    provider = YahooFinancePriceProvider(yfinance_module=fake)
    frame = await provider.get_historical_prices(["MSFT"], "2024-01-02", "2024-01-03")
    assert frame["MSFT"].tolist() == [370.0, 371.0]
    assert str(fake.calls[0]["end"]) == "2024-01-04"  # yfinance's end is exclusive


def test_missing_yfinance_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    with pytest.raises(ConfigurationError, match="finwiz\\[yahoo\\]"):
        YahooFinancePriceProvider()


HUNG_SCRIPT = """
import asyncio, threading, types
from finwiz.data import InMemoryPriceProvider, PortfolioPriceService, YahooFinancePriceProvider

hung = threading.Event()  # never set: the download blocks for as long as the process lives

def download(tickers, **options):
    hung.wait()

fake = types.SimpleNamespace(download=download)
yahoo = YahooFinancePriceProvider(yfinance_module=fake, timeout=0.05)
service = PortfolioPriceService([yahoo, InMemoryPriceProvider({"MSFT": 42.0})])
result = asyncio.run(service.fetch_prices(["MSFT"]))
print(result.status["MSFT"].provider, result.prices["MSFT"].price, result.status["MSFT"].reason)
"""


def test_a_hung_download_does_not_keep_the_process_alive() -> None:
    # The fallback answers once yfinance's deadline passes; the download's thread, blocked for
    # good, must then keep neither asyncio.run (which joins its default executor) nor the
    # interpreter's exit (which joins executor threads) waiting. The timeout only stops a hang.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", HUNG_SCRIPT], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 2)[:2] == ["memory", "42.0"]
    assert "yahoo: timed out" in done.stdout
