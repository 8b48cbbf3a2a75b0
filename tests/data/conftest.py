"""Shared fixtures for the data layer: generated prices, Alpha Vantage payloads, a fake yfinance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from finwiz.data import AlphaVantagePriceProvider, RetryPolicy, sample_price_history

Handler = Callable[[httpx.Request], httpx.Response]


def make_prices(n_days: int = 300, n_assets: int = 5, seed: int = 0) -> pd.DataFrame:
    """Geometric random walks on business days, columns S0, S1, ..."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0003, 0.015, size=(n_days, n_assets))
    values = 50.0 * np.exp(np.cumsum(steps, axis=0))
    index = pd.bdate_range("2020-01-01", periods=n_days, name="date")
    return pd.DataFrame(values, index=index, columns=[f"S{i}" for i in range(n_assets)])


def av_quote(symbol: str, price: str = "123.4500", day: str = "2024-01-05") -> dict[str, Any]:
    """A GLOBAL_QUOTE body shaped like Alpha Vantage's (every number a string)."""
    return {
        "Global Quote": {
            "01. symbol": symbol,
            "02. open": "120.0000",
            "05. price": price,
            "06. volume": "4123456",
            "07. latest trading day": day,
            "08. previous close": "121.0000",
            "10. change percent": "1.9835%",
        }
    }


def av_daily(symbol: str, closes: dict[str, str]) -> dict[str, Any]:
    """A TIME_SERIES_DAILY body (newest first, as Alpha Vantage sends it)."""
    rows = {
        day: {"1. open": c, "2. high": c, "3. low": c, "4. close": c, "5. volume": "1000"}
        for day, c in sorted(closes.items(), reverse=True)
    }
    return {
        "Meta Data": {"1. Information": "Daily Prices", "2. Symbol": symbol},
        "Time Series (Daily)": rows,
    }


AV_ERROR = {"Error Message": "Invalid API call. Please retry or visit the documentation."}
AV_QUOTA = {
    "Information": "We have detected your API key as SECRETKEY and our standard API rate limit "
    "is 25 requests per day. Please subscribe to any of the premium plans."
}
AV_PREMIUM = {"Information": "Thank you for using Alpha Vantage! This is a premium endpoint."}
AV_BURST = {"Information": "Please consider spreading out your free API requests (1 per second)."}
AV_NOTE = {"Note": "Our standard API call frequency is 5 calls per minute and 500 calls per day."}
API_KEY = "SECRETKEY"


class Sleeps:
    """Records requested back-off delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def alpha_vantage(sleeps: Sleeps) -> Callable[[Handler], AlphaVantagePriceProvider]:
    """Build an Alpha Vantage provider over an ``httpx.MockTransport`` answering with a handler."""

    def build(handler: Handler, **options: Any) -> AlphaVantagePriceProvider:
        options.setdefault("retry", RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05))
        return AlphaVantagePriceProvider(
            API_KEY, transport=httpx.MockTransport(handler), sleep=sleeps, seed=1, **options
        )

    return build


class FakeYFinance:
    """Stands in for the yfinance module: ``download`` and ``shared._ERRORS`` with its quirks.

    ``prices`` maps ticker to a Series of closes; tickers not in it come back as NaN columns with
    ``errors[ticker]`` recorded in ``shared._ERRORS``, as yfinance does. ``raise_exc`` is raised
    from ``download`` (e.g. a rate-limit error); ``delay`` blocks the calling thread.
    """

    class YFRateLimitError(Exception):
        pass

    def __init__(self, prices: dict[str, pd.Series], errors: dict[str, str] | None = None):
        self.prices = prices
        self.errors = errors or {}
        self.raise_exc: Exception | None = None
        self.delay = 0.0
        self.calls: list[dict[str, Any]] = []
        self.shared = type("shared", (), {"_ERRORS": {}})()

    def download(self, tickers: list[str], **options: Any) -> pd.DataFrame:
        self.calls.append({"tickers": list(tickers), **options})
        self.shared._ERRORS = {}
        if self.delay:
            time.sleep(self.delay)
        if self.raise_exc is not None:
            raise self.raise_exc
        index = pd.DatetimeIndex(sorted({d for s in self.prices.values() for d in s.index}), name="Date")
        columns: dict[tuple[str, str], pd.Series] = {}
        for ticker in tickers:
            series = self.prices.get(ticker)
            if series is None:
                self.shared._ERRORS[ticker] = self.errors.get(ticker, "")
                if not self.shared._ERRORS[ticker]:
                    del self.shared._ERRORS[ticker]
                series = pd.Series(np.nan, index=index)
            for field in ("Close", "Open"):
                columns[(field, ticker)] = series.reindex(index)
        frame = pd.DataFrame(columns, index=index)
        frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["Price", "Ticker"])
        return frame


@pytest.fixture
def sample_prices() -> pd.DataFrame:
    return sample_price_history()


@pytest.fixture
def generated_prices() -> pd.DataFrame:
    return make_prices()
