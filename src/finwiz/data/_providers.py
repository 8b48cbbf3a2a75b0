"""The provider interface and the providers that read tables: in memory, CSV files, the sample."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

import pandas as pd

from finwiz.data._parsing import (
    as_price_data,
    clean_price_frame,
    close_timestamp,
    parse_symbols,
    require_columns,
)
from finwiz.data.sample import sample_price_history
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from finwiz.schemas import PriceData
from finwiz.schemas._inputs import refuse_other_currencies

__all__ = [
    "CSVPriceProvider",
    "DateLike",
    "InMemoryPriceProvider",
    "PriceDataProvider",
    "SamplePriceProvider",
    "check_currency",
    "day_bound",
    "gather_each",
]

T = TypeVar("T")

DateLike = date | datetime | str | pd.Timestamp | None
"""A day bound for historical requests: a date, an ISO string, or None for open-ended."""


check_currency = refuse_other_currencies
"""Refuse quotes in another currency than the portfolio's (``schemas._inputs.refuse_other_currencies``)."""


def day_bound(value: DateLike) -> pd.Timestamp | None:
    """``value`` as a naive day for slicing a daily index (None stays open-ended)."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert(None) if stamp.tz is not None else stamp).normalize()


async def gather_each(
    symbols: Sequence[str], call: Callable[[str], Awaitable[T]], limit: int
) -> dict[str, T | PriceDataError]:
    """``call(symbol)`` for every symbol, at most ``limit`` at once; errors kept per symbol."""
    gate = asyncio.Semaphore(limit)

    async def one(symbol: str) -> T | PriceDataError:
        async with gate:
            try:
                return await call(symbol)
            except PriceDataError as exc:
                return exc

    outcomes = await asyncio.gather(*(one(s) for s in symbols))
    return dict(zip(symbols, outcomes, strict=True))


class AsyncClosing:
    """``async with`` support for anything with an ``aclose()`` (providers, the price service)."""

    async def aclose(self) -> None:  # optional hook: most holders have nothing to close
        """Release what the object holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class PriceDataProvider(AsyncClosing, ABC):
    """Source of prices: current quotes and daily history, all validated before they leave.

    Subclasses implement :meth:`get_current_price`; sources with daily history (backtests, risk
    estimates) also implement :meth:`fetch_history`, whose default serves none and says so, naming
    the provider, when history is asked for. Batch sources also override :meth:`fetch_prices`.
    ``batch_size`` is how many symbols one request may carry and ``max_concurrency`` how many
    requests may run at once. Use as ``async with provider: ...`` to
    close connections on exit.
    """

    name: str = "provider"
    batch_size: int = 1
    max_concurrency: int = 10

    @abstractmethod
    async def get_current_price(self, symbol: str) -> PriceData:
        """The latest price of ``symbol``; raises :class:`PriceDataError` naming both."""

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        """Daily prices of canonical ``symbols`` between ``start`` and ``end`` (inclusive).

        Returns the symbols found (index: date, columns: symbol, positive floats or NaN) and one
        error per symbol that could not be served. Never raises for a single symbol. The default
        serves no history: every symbol gets an error saying this provider has none, so
        :meth:`get_historical_prices` raises naming the provider and the method to implement.
        """
        reason = f"{type(self).__name__} serves no price history (implement fetch_history to provide it)"
        return pd.DataFrame(index=pd.DatetimeIndex([])), {
            s: PriceDataError(s, reason, provider=self.name) for s in symbols
        }

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
        """Latest price or error for each canonical symbol; never raises for a single symbol."""
        return await gather_each(symbols, self.get_current_price, self.max_concurrency)

    async def get_multiple_prices(self, symbols: Iterable[str]) -> dict[str, PriceData]:
        """Latest prices of ``symbols``; raises :class:`InsufficientPriceDataError` naming every
        symbol that could not be priced (no partial answer, so no price is silently missing)."""
        outcomes = await self.fetch_prices(parse_symbols(symbols))
        failures = {s: o.reason for s, o in outcomes.items() if isinstance(o, PriceDataError)}
        if failures:
            raise InsufficientPriceDataError(failures, provider=self.name)
        return {s: o for s, o in outcomes.items() if isinstance(o, PriceData)}

    async def get_historical_prices(
        self, symbols: Iterable[str], start: DateLike = None, end: DateLike = None
    ) -> pd.DataFrame:
        """Daily prices (index: date, columns: symbols in request order); raises
        :class:`InsufficientPriceDataError` naming every symbol without data."""
        wanted = parse_symbols(symbols)
        frame, failures = await self.fetch_history(wanted, start, end)
        if failures:
            raise InsufficientPriceDataError({s: e.reason for s, e in failures.items()}, provider=self.name)
        return frame[wanted]

    async def aclose(self) -> None:
        """Release connections; the base provider holds none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _TableProvider(PriceDataProvider):
    """A provider over a validated wide table; the latest observation is the current price."""

    batch_size = 10_000

    def __init__(self, history: pd.DataFrame, problems: Mapping[str, PriceDataError]) -> None:
        self._history = history
        self._problems = dict(problems)
        self._latest: dict[str, PriceData] = {}
        # The last observed value is the current price; its date is its timestamp, so a price
        # that stopped updating shows its age instead of passing for today's.
        for symbol in history.columns:
            column = history[symbol].dropna()
            if column.empty:
                continue
            self._latest[str(symbol)] = as_price_data(
                str(symbol), column.iloc[-1], close_timestamp(column.index[-1]), provider=self.name
            )

    @property
    def symbols(self) -> list[str]:
        """Symbols this provider can price."""
        return list(self._latest)

    async def get_current_price(self, symbol: str) -> PriceData:
        """The latest observation of ``symbol``."""
        (canonical,) = parse_symbols([symbol])
        if canonical in self._problems:
            raise self._problems[canonical]
        if canonical not in self._latest:
            raise PriceDataError(canonical, "unknown symbol", provider=self.name)
        return self._latest[canonical]

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
        """Latest price or error per symbol, straight from the table (no I/O)."""
        out: dict[str, PriceData | PriceDataError] = {}
        for symbol in symbols:
            try:
                out[symbol] = await self.get_current_price(symbol)
            except PriceDataError as exc:
                out[symbol] = exc
        return out

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        """Rows of the table between ``start`` and ``end`` for the symbols it holds."""
        lo, hi = day_bound(start), day_bound(end)
        rows = self._history.loc[lo:hi]
        failures = {s: self._problems[s] for s in symbols if s in self._problems}
        failures.update(require_columns(rows, [s for s in symbols if s not in failures], self.name))
        found = [s for s in symbols if s not in failures]
        return rows[found].copy(), failures


class InMemoryPriceProvider(_TableProvider):
    """Prices held in memory: a mapping or Series of symbol to price, and/or a history table.

    Values are parsed as strictly as any remote payload; a bad one makes its symbol fail with
    :class:`PriceDataError` (the others still work). Current prices given as a mapping are
    stamped with ``timestamp`` (default: now).
    """

    name = "memory"

    def __init__(
        self,
        prices: Mapping[str, object] | pd.Series | None = None,
        *,
        history: pd.DataFrame | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        frame = pd.DataFrame() if history is None else history
        clean, problems = clean_price_frame(frame, provider=self.name)
        super().__init__(clean, problems)
        when = timestamp or datetime.now(UTC)
        items = prices.items() if prices is not None else ()
        for raw, value in items:
            (symbol,) = parse_symbols([str(raw)])
            self._problems.pop(symbol, None)
            try:
                self._latest[symbol] = as_price_data(symbol, value, when, provider=self.name)
            except PriceDataError as exc:
                self._latest.pop(symbol, None)
                self._problems[symbol] = exc


class CSVPriceProvider(_TableProvider):
    """Daily prices from a CSV file (optionally gzipped), read once and validated cell by cell.

    Two layouts: *wide* (first column the date, then one column per symbol) or *long*
    (columns ``symbol``, ``date``, ``price``; ``close`` is accepted for ``price``).
    ``layout="auto"`` picks long when those columns are present. A symbol with any bad cell
    (text, zero, negative, infinite), a duplicate column or two prices on one date is refused
    with :class:`PriceDataError`; empty cells mean no observation.
    """

    name = "csv"

    def __init__(self, path: str | Path, *, layout: Literal["auto", "wide", "long"] = "auto") -> None:
        self.path = Path(path)
        raw = _read_text_table(self.path)
        header = [str(c).strip().lower() for c in raw.columns]
        is_long = {"symbol", "date"} <= set(header) and bool({"price", "close"} & set(header))
        if layout == "long" or (layout == "auto" and is_long):
            wide = _long_to_wide(raw, self.path)
        else:
            wide = raw.set_index(raw.columns[0])
        clean, problems = clean_price_frame(wide, provider=self.name)
        super().__init__(clean, problems)

    def __repr__(self) -> str:
        return f"CSVPriceProvider({str(self.path)!r})"


def _read_text_table(path: Path) -> pd.DataFrame:
    """Every cell as text with the header kept verbatim (pandas would rename duplicate columns)."""
    try:
        cells = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read price file {path}: {exc}") from exc
    if cells.shape[0] < 1 or cells.shape[1] < 2:
        raise ConfigurationError(f"price file {path} needs a header and at least two columns")
    table = cells.iloc[1:].reset_index(drop=True)
    table.columns = pd.Index([str(c).strip() for c in cells.iloc[0]])
    return table


def _long_to_wide(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    names = {str(c).strip().lower(): c for c in raw.columns}
    value = names.get("price", names.get("close"))
    table = pd.DataFrame(
        {
            "symbol": raw[names["symbol"]].str.strip().str.upper(),
            "date": raw[names["date"]].str.strip(),
            "price": raw[value],
        }
    )
    # Conflicting duplicates must survive the pivot so that validation can refuse them.
    table["copy"] = table.groupby(["symbol", "date"]).cumcount()
    try:
        wide = table.pivot(index=["date", "copy"], columns="symbol", values="price")
    except ValueError as exc:
        raise ConfigurationError(f"price file {path}: {exc}") from exc
    wide = wide.droplevel("copy")
    return wide.where(wide.notna(), "")


class SamplePriceProvider(_TableProvider):
    """The bundled 20-stock sample (daily adjusted closes, 1990-2022) as a provider, offline;
    its quotes are in USD."""

    name = "sample"
    currency = "USD"

    def __init__(self) -> None:
        clean, problems = clean_price_frame(sample_price_history(), provider=self.name)
        super().__init__(clean, problems)
        self._latest = {s: q.model_copy(update={"currency": self.currency}) for s, q in self._latest.items()}
