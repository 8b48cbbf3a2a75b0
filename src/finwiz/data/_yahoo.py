"""Yahoo Finance through yfinance, run in a worker thread because yfinance blocks.

yfinance's failure modes, and what this module makes of them:

* ``download()`` never raises for a bad ticker: it logs, fills the ticker's columns with NaN and
  records a message in ``yfinance.shared._ERRORS``. An all-NaN column is therefore a failure,
  and that message (when present) says whether the symbol looks delisted or the request failed.
* ``Ticker.history()`` swallows exceptions and returns an empty frame, so a network failure
  looks exactly like a delisted symbol. It is not used; ``download()`` at least keeps the cause.
* ``YFRateLimitError`` is always raised; it fails the whole batch with a "rate limited" reason.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd

from finwiz._threads import in_daemon_thread
from finwiz.data._parsing import as_price_data, clean_price_frame, close_timestamp
from finwiz.data._providers import DateLike, PriceDataProvider, day_bound
from finwiz.errors import ConfigurationError, PriceDataError
from finwiz.schemas import PriceData, canonical_symbol

__all__ = ["YahooFinancePriceProvider"]

_REQUESTS_PER_DOWNLOAD = 3
_NOT_LISTED = ("delisted", "no timezone", "not found", "no data found", "no price data")


def _load_yfinance() -> Any:
    try:
        return importlib.import_module("yfinance")
    except ImportError as exc:
        raise ConfigurationError("YahooFinancePriceProvider needs yfinance: pip install 'finwiz[yahoo]'") from exc


class YahooFinancePriceProvider(PriceDataProvider):
    """Prices from Yahoo Finance (adjusted daily closes) via yfinance, off the event loop.

    Parameters
    ----------
    timeout
        Seconds per HTTP request, passed to yfinance; a whole download gets three times that.
    yfinance_module
        The yfinance module or a stand-in with the same ``download`` function; by default
        yfinance is imported here, and a missing install raises :class:`ConfigurationError`.
    """

    name = "yahoo"
    batch_size = 100
    max_concurrency = 1  # yfinance keeps per-download errors in a global dict; one at a time

    def __init__(self, *, timeout: float = 10.0, yfinance_module: Any | None = None) -> None:
        self.timeout = timeout
        self._yf = yfinance_module if yfinance_module is not None else _load_yfinance()
        self._lock = threading.Lock()

    async def get_current_price(self, symbol: str) -> PriceData:
        """The last daily close of ``symbol`` in the past five days."""
        symbol = canonical_symbol(symbol)
        outcome = (await self.fetch_prices([symbol]))[symbol]
        if isinstance(outcome, PriceDataError):
            raise outcome
        return outcome

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
        """Last close per symbol from one ``download(period="5d")`` for the whole batch."""
        frame, failures = await self._closes(symbols, {"period": "5d"})
        out: dict[str, PriceData | PriceDataError] = dict(failures)
        for symbol in frame.columns:
            column = frame[symbol].dropna()
            out[str(symbol)] = as_price_data(
                str(symbol), column.iloc[-1], close_timestamp(column.index[-1]), provider=self.name
            )
        return {s: out[s] for s in symbols}

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        """Adjusted daily closes between ``start`` and ``end`` (inclusive), one download."""
        lo, hi = day_bound(start), day_bound(end)
        options: dict[str, Any] = {"period": "max"} if lo is None else {"start": lo.date()}
        if hi is not None:
            options["end"] = (hi + timedelta(days=1)).date()  # yfinance's end is exclusive
        frame, failures = await self._closes(symbols, options)
        return frame.loc[lo:hi], failures

    async def _closes(
        self, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        """Validated closes of the symbols that have any, and an error for every other one."""
        try:
            # yfinance makes a few requests per download, each with ``timeout``; the deadline
            # around the thread stops a hung download from stalling the event loop's caller.
            async with asyncio.timeout(self.timeout * _REQUESTS_PER_DOWNLOAD):
                raw, messages = await in_daemon_thread(self._download, list(symbols), options, name="finwiz-yfinance")
        except TimeoutError:
            waited = self.timeout * _REQUESTS_PER_DOWNLOAD
            return pd.DataFrame(), self._all_failed(symbols, f"timed out after {waited:g} s")
        except Exception as exc:  # yfinance raises anything; translated per symbol
            return pd.DataFrame(), self._all_failed(symbols, self._describe(exc))
        clean, failures = clean_price_frame(_close_table(raw, symbols), provider=self.name)
        for symbol in symbols:
            if symbol in failures:
                continue
            if symbol not in clean.columns or not clean[symbol].notna().any():
                failures[symbol] = PriceDataError(symbol, _no_data_reason(messages.get(symbol)), provider=self.name)
        found = [s for s in symbols if s not in failures]
        return clean[found], failures

    def _download(self, symbols: list[str], options: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
        # A download hung past its deadline still holds the lock: wait for it no longer than
        # this download's own deadline would, instead of queueing one more stuck thread.
        if not self._lock.acquire(timeout=self.timeout * _REQUESTS_PER_DOWNLOAD):
            raise _StillHungError("an earlier yfinance download is still hung; not started")
        try:
            frame = self._yf.download(
                symbols,
                interval="1d",
                auto_adjust=True,
                progress=False,
                threads=True,
                group_by="column",
                timeout=self.timeout,
                **options,
            )
            shared = getattr(self._yf, "shared", None)
            errors = dict(getattr(shared, "_ERRORS", None) or {})
        finally:
            self._lock.release()
        return frame, {str(k).upper(): str(v) for k, v in errors.items()}

    def _all_failed(self, symbols: Sequence[str], reason: str) -> dict[str, PriceDataError]:
        return {s: PriceDataError(s, reason, provider=self.name) for s in symbols}

    @staticmethod
    def _describe(exc: Exception) -> str:
        if type(exc).__name__ == "YFRateLimitError":
            return "rate limited by Yahoo Finance; try again later"
        if isinstance(exc, _StillHungError):
            return str(exc)
        return f"yfinance failed: {type(exc).__name__}: {exc}"


class _StillHungError(Exception):
    """The previous download has not returned yet."""


def _close_table(raw: object, symbols: Sequence[str]) -> pd.DataFrame:
    """The ``Close`` columns of a download, one per ticker, whatever the column layout."""
    if not isinstance(raw, pd.DataFrame) or raw.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([]))
    if isinstance(raw.columns, pd.MultiIndex):
        level = 0 if "Close" in raw.columns.get_level_values(0) else 1
        closes = pd.DataFrame(raw.xs("Close", axis=1, level=level))
    elif "Close" in raw.columns and len(symbols) == 1:
        closes = raw[["Close"]].set_axis(list(symbols), axis=1)
    else:
        return pd.DataFrame(index=raw.index)
    return closes.set_axis([str(c).upper() for c in closes.columns], axis=1)


def _no_data_reason(message: str | None) -> str:
    if message is None:
        return "no data (yfinance gave no reason: unknown symbol or failed request)"
    if any(marker in message.lower() for marker in _NOT_LISTED):
        return f"no data: unknown or delisted symbol (yfinance: {message})"
    return f"download failed (yfinance: {message})"
