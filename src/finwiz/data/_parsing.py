"""Strict parsing of prices from every source: one place decides what counts as a price.

A price is a plain positive finite decimal. Text such as ``"1,234.5"`` (is the comma a thousands
or a decimal separator?), ``"N/A"``, ``"inf"``, zero and negatives are refused with a reason, so a
wrong number can never slip through as a price. Empty cells in a history mean "no observation".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time

import numpy as np
import pandas as pd

from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError, PriceDataError
from finwiz.schemas import PriceData, canonical_symbol

__all__ = [
    "as_price_data",
    "clean_price_frame",
    "close_timestamp",
    "parse_date",
    "parse_price",
    "parse_symbols",
    "require_columns",
]

# Optional sign is refused later with a clearer message; no thousands separators, no words.
# ASCII digits only: Python's \d (and float()) would also accept digits of other scripts.
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _why_not_price(value: object) -> str | None:
    """Reason ``value`` is not a usable price, or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | np.number):
        return f"{value!r} is not a number"
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            return f"{value!r} is not a plain decimal number"
        number = float(text)
    else:
        number = float(value)
    if not math.isfinite(number):
        return f"{number} is not finite"
    if number <= 0:
        return f"{number} is not positive"
    return None


def parse_price(value: object, symbol: str, *, provider: str | None = None) -> float:
    """Return ``value`` as a positive finite float, or raise :class:`PriceDataError` saying why.

    Accepts numbers and plain decimal text (``"123.45"``, ``"1e3"``); refuses booleans, NaN,
    infinities, zero, negatives and text such as ``"1,234.5"`` or ``"N/A"``.
    """
    reason = _why_not_price(value)
    if reason is not None:
        raise PriceDataError(symbol, f"refused price: {reason}", provider=provider)
    return float(value)  # type: ignore[arg-type]  # checked by _why_not_price


def parse_date(value: object, symbol: str, *, provider: str | None = None) -> date:
    """Return an ISO ``YYYY-MM-DD`` date, or raise :class:`PriceDataError`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise PriceDataError(symbol, f"bad date {value!r}", provider=provider) from exc


def close_timestamp(day: date | pd.Timestamp) -> datetime:
    """Timestamp standing for a daily close: midnight UTC of that day (timezone-aware)."""
    if isinstance(day, pd.Timestamp):
        day = day.date()
    return datetime.combine(day, time(), UTC)


def parse_symbols(symbols: Iterable[str] | str) -> list[str]:
    """Canonical symbols in first-seen order, duplicates removed; refuses empty or non-text ones."""
    if isinstance(symbols, str):
        symbols = [symbols]
    return list(dict.fromkeys(canonical_symbol(s) for s in symbols))


def _numeric_column(column: pd.Series) -> tuple[pd.Series, str | None]:
    """Column as floats (NaN = no observation) and the reason of its first bad cell, if any."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype(float), "booleans are not prices"
    if pd.api.types.is_numeric_dtype(column):
        values = column.astype(float)
        unreadable = np.zeros(len(column), dtype=bool)
    else:
        text = column.astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
        plain = text.str.fullmatch(_DECIMAL.pattern).fillna(False).to_numpy(dtype=bool)
        values = pd.to_numeric(text.where(plain & ~missing), errors="coerce").astype(float)
        unreadable = ~missing & ~plain
    numbers = values.to_numpy()
    bad = unreadable | np.isinf(numbers) | (numbers <= 0)
    if bad.any():
        where = int(np.argmax(bad))
        raw = column.iloc[where]
        reason = _why_not_price(raw) or f"{raw!r} is not a price"
        return values, f"refused price on {_label(column.index[where])}: {reason}"
    return values, None


def _label(key: object) -> str:
    return key.date().isoformat() if isinstance(key, pd.Timestamp) else str(key)


def clean_price_frame(
    frame: pd.DataFrame, *, provider: str | None = None
) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
    """Validate a wide price table (index: dates, columns: symbols) cell by cell.

    Returns the usable part (float, dates sorted and unique, canonical symbols) and one
    :class:`PriceDataError` per refused symbol: a bad cell, a symbol listed twice, or two
    different prices on the same date. Identical duplicate rows are merged; NaN means no
    observation. A whole symbol is refused rather than silently dropping its bad cells, because
    a price series with holes punched by a parser is a wrong series.
    """
    problems: dict[str, PriceDataError] = {}
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame.index, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        failures = {str(c): f"unreadable dates: {exc}" for c in frame.columns}
        raise InsufficientPriceDataError(failures, provider=provider) from exc
    if index.tz is not None:
        index = index.tz_convert(None)
    columns: dict[str, pd.Series] = {}
    seen: set[str] = set()
    for position, raw in enumerate(frame.columns):
        try:
            symbol = canonical_symbol(raw)
        except InvalidPortfolioError as exc:
            raise PriceDataError(str(raw), f"bad symbol: {exc}", provider=provider) from exc
        if symbol in seen:
            problems[symbol] = PriceDataError(symbol, "listed twice", provider=provider)
            continue
        seen.add(symbol)
        values, reason = _numeric_column(pd.Series(frame.iloc[:, position].to_numpy(), index=index))
        if reason is not None:
            problems[symbol] = PriceDataError(symbol, reason, provider=provider)
        else:
            columns[symbol] = values
    clean = pd.DataFrame(columns, index=index, dtype=float)
    clean = clean.drop(columns=[s for s in problems if s in clean.columns])
    clean, conflicts = _merge_duplicate_dates(clean, provider)
    problems.update(conflicts)
    clean.index.name = "date"
    clean.columns.name = "symbol"
    return clean, problems


def _merge_duplicate_dates(frame: pd.DataFrame, provider: str | None) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
    frame = frame.sort_index(kind="stable")
    duplicated = frame.index.duplicated(keep=False)
    if not duplicated.any():
        return frame, {}
    # A symbol whose duplicate rows disagree is refused: we cannot know which price is right.
    # An empty cell next to a value is no disagreement; the value is kept.
    spread = frame[duplicated].groupby(level=0).nunique(dropna=True)
    conflicting = [str(s) for s in spread.columns[(spread > 1).any()]]
    problems = {s: PriceDataError(s, "two different prices on the same date", provider=provider) for s in conflicting}
    merged = frame.drop(columns=conflicting).groupby(level=0).first()
    return merged, problems


def require_columns(frame: pd.DataFrame, symbols: Sequence[str], provider: str | None) -> dict[str, PriceDataError]:
    """Errors for requested symbols that have no column, or only NaN, in ``frame``."""
    problems: dict[str, PriceDataError] = {}
    for symbol in symbols:
        if symbol not in frame.columns:
            problems[symbol] = PriceDataError(symbol, "unknown symbol", provider=provider)
        elif not frame[symbol].notna().any():
            problems[symbol] = PriceDataError(symbol, "no prices in range", provider=provider)
    return problems


def as_price_data(
    symbol: str, value: object, when: datetime, *, provider: str, volume: float | None = None
) -> PriceData:
    """A :class:`~finwiz.schemas.PriceData` after strict parsing of ``value``."""
    return PriceData(
        symbol=symbol,
        price=parse_price(value, symbol, provider=provider),
        timestamp=when,
        source=provider,
        volume=volume,
    )
