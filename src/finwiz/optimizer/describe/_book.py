"""The book: prices read and checked, what is held in shares and value (``x0`` as fractions of
``V_ref``), and the size ceilings a request must keep."""

from __future__ import annotations

import functools
import math
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError, PriceDataError
from finwiz.schemas import PortfolioConfiguration
from finwiz.settings import RebalancingSettings

__all__ = ["check_size", "coerce_prices"]

_SHARES = operator.attrgetter("shares")


def coerce_prices(prices: Mapping[str, Any] | pd.Series, symbols: Sequence[str]) -> np.ndarray:
    """Prices for ``symbols`` as a float array; refuse missing, non-numeric, non-finite or <= 0.

    ``prices`` may map symbols to numbers or to objects with a ``price`` attribute (``PriceData``).
    """
    if (
        isinstance(prices, pd.Series)
        and pd.api.types.is_numeric_dtype(prices.dtype)
        and not pd.api.types.is_bool_dtype(prices.dtype)
    ):
        fast = _numeric_series(prices, symbols)
        if fast is not None:
            return fast
    if type(prices) is dict:
        fast = _plain_dict(prices, symbols)
        if fast is not None:
            return fast
    if isinstance(prices, pd.Series):
        items: list[tuple[Any, Any]] = list(prices.items())
    elif isinstance(prices, Mapping):
        items = list(prices.items())
    else:
        raise InvalidPortfolioError("prices must be a mapping or a pandas Series of symbol -> price", field="prices")
    table: dict[str, Any] = {}
    for raw, value in items:
        symbol = str(raw).strip().upper()
        if symbol in table:
            raise InvalidPortfolioError(f"prices: symbol {symbol} is given twice", field="prices", symbol=symbol)
        table[symbol] = getattr(value, "price", value)
    missing = [s for s in symbols if s not in table]
    if missing:
        raise InsufficientPriceDataError(dict.fromkeys(missing, "no price given"))
    out = np.empty(len(symbols))
    for i, symbol in enumerate(symbols):
        value = table[symbol]
        # Text ("110.3", "1,234.5") is the data layer's to parse (finwiz.data.parse_price), and a
        # boolean is no price: float() would quietly take both.
        if isinstance(value, str | bytes | bool | np.bool_):
            raise PriceDataError(symbol, f"price {value!r} is not a number (text and booleans are refused)")
        try:
            price = float(value)
        except (TypeError, ValueError) as exc:
            raise PriceDataError(symbol, f"price {value!r} is not a number") from exc
        if not math.isfinite(price) or price <= 0:
            raise PriceDataError(symbol, f"price {price} is not a positive finite number")
        out[i] = price
    return out


def _numeric_series(prices: pd.Series, symbols: Sequence[str]) -> np.ndarray | None:
    """The common case without a per-item loop: a numeric Series whose labels are canonical,
    unique and cover ``symbols``, with positive finite values for them. None otherwise: the
    general path then names the missing, repeated or bad symbol."""
    labels = prices.index.tolist()
    if labels == list(symbols):  # the same universe in the same order (symbols are canonical)
        picked = prices.to_numpy(dtype=float)
    else:
        if not prices.index.is_unique or not all(isinstance(s, str) and s.strip().upper() == s for s in labels):
            return None
        picked = prices.reindex(list(symbols)).to_numpy(dtype=float)
    if not (np.isfinite(picked).all() and (picked > 0).all()):
        return None
    return np.asarray(picked)


_PLAIN_NUMBERS = frozenset({float, int, np.float64})  # what float() reads exactly as numpy does


def _plain_dict(prices: dict[Any, Any], symbols: Sequence[str]) -> np.ndarray | None:
    """The common case of a mapping, without a per-item loop in Python: a dict whose keys are
    canonical symbols and whose values for ``symbols`` are plain positive finite numbers. None
    otherwise: the general path then names the missing, repeated or bad symbol."""
    keys = list(prices)
    if set(map(type, keys)) != {str} or list(map(str.upper, map(str.strip, keys))) != keys:
        return None  # a key the general path must canonicalise (or refuse as given twice)
    try:
        values = list(map(prices.__getitem__, symbols))
        if not set(map(type, values)) <= _PLAIN_NUMBERS:
            return None
        picked = np.array(values, dtype=float)
    except (KeyError, OverflowError):  # a missing symbol, an int past float: the general path says so
        return None
    if not (np.isfinite(picked).all() and (picked > 0).all()):
        return None
    return picked


def _per_symbol(values: Mapping[str, float], symbols: Sequence[str], default: float) -> np.ndarray:
    if not values:  # the usual case (no per-symbol rates, lots, caps): no per-asset loop
        return np.full(len(symbols), default, dtype=float)
    return np.array(list(map(values.get, symbols, repeat(default))), dtype=float)  # no bytecode per symbol


def _mask(selected: Sequence[str], symbols: Sequence[str]) -> np.ndarray:
    if not selected:
        return np.zeros(len(symbols), dtype=bool)
    chosen = set(selected)
    return np.fromiter(map(chosen.__contains__, symbols), bool, len(symbols))  # no bytecode per symbol


@functools.lru_cache(maxsize=4)
def _settings_for(max_assets: str | None, max_lots: str | None) -> RebalancingSettings:
    # Reading settings costs milliseconds (environment, .env): read once per value of the two
    # variables, so a changed REBALANCING_MAX_ASSETS or REBALANCING_MAX_LOTS is still seen.
    return RebalancingSettings()


def _process_settings() -> RebalancingSettings:
    return _settings_for(os.environ.get("REBALANCING_MAX_ASSETS"), os.environ.get("REBALANCING_MAX_LOTS"))


def check_size(config: PortfolioConfiguration, settings: RebalancingSettings | None = None) -> None:
    """Refuse a book past the size ceilings (``max_assets``, ``max_lots`` of ``settings``, default
    the process's settings) before any work, naming the setting that raises them."""
    limits = settings if settings is not None else _process_settings()
    bound = len(config.holdings) + len(config.target_weights)  # at least the number of assets
    assets = len(config.symbols) if bound > limits.max_assets else bound
    if assets > limits.max_assets:
        raise InvalidPortfolioError(
            f"the book has {assets:,} assets, above max_assets {limits.max_assets:,} "
            f"(raise it with REBALANCING_MAX_ASSETS or RebalancingSettings(max_assets=...))",
            field="holdings",
        )
    if config.tax is None:
        return  # lots are read only by a tax-aware rebalance
    lots = sum(len(h.lots) for h in config.holdings if h.lots)
    if lots > limits.max_lots:
        raise InvalidPortfolioError(
            f"the book has {lots:,} tax lots, above max_lots {limits.max_lots:,} "
            f"(raise it with REBALANCING_MAX_LOTS or RebalancingSettings(max_lots=...))",
            field="lots",
        )


@dataclass(frozen=True)
class _Book:
    """What is held, in shares and value: ``x0`` as fractions of ``V_ref``."""

    shares: np.ndarray
    position_value: np.ndarray
    value: float
    ref_value: float
    x0: np.ndarray
    symbols: list[str]  # config.symbols, read once: the property rebuilds the list on every read


def _book(config: PortfolioConfiguration, price: np.ndarray, symbols: list[str]) -> _Book:
    """``symbols``: ``config.symbols``, which starts with the holdings' symbols in their order."""
    holdings = config.holdings  # config.shares_by_symbol() without its own universe, no bytecode per symbol
    values = list(map(_SHARES, holdings))
    if len(set(symbols[: len(holdings)])) == len(holdings):  # each holding once (as validated): in order
        shares = np.zeros(len(symbols))
        shares[: len(holdings)] = values
    else:  # a symbol held twice: its last holding's shares, wherever it is listed
        held = dict(zip(symbols[: len(holdings)], values, strict=True))
        shares = np.array(list(map(held.get, symbols, repeat(0.0))), dtype=float)
    position_value = shares * price
    value = float(position_value.sum() + config.cash)
    if value <= 0:
        raise InvalidPortfolioError("portfolio value is zero: nothing held and no cash", field="holdings")
    ref_value = value + config.cash_flow
    if ref_value <= 0:
        raise InvalidPortfolioError(
            f"cash_flow: withdrawal of {-config.cash_flow:,.2f} is not below the portfolio value {value:,.2f}",
            field="cash_flow",
        )
    if config.min_trade_size > value:
        raise InvalidPortfolioError(
            f"min_trade_size {config.min_trade_size:,.2f} exceeds the whole portfolio value {value:,.2f}",
            field="min_trade_size",
        )
    return _Book(shares, position_value, value, ref_value, position_value / ref_value, symbols)
