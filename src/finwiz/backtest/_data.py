"""The validated history a backtest runs on: prices, cash flows, volumes and impact coefficients.

Everything is checked once, before any policy runs, and refused with a :class:`FinwizError` that
names the date, the symbol or the field: unsorted or duplicate dates, missing symbols, NaN
(gaps), non-numeric or non-positive prices, cash flows outside the range, bad volumes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from finwiz.backtest._lots import TaxOptions
from finwiz.errors import ConfigurationError, InvalidPortfolioError, PriceDataError
from finwiz.schemas import Holding, PortfolioConfiguration, canonical_symbol

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.optimizer import MarketImpactModel

__all__ = ["MarketHistory", "build_history", "parse_dates"]

IMPACT_WINDOW = 21
"""Trading days in the trailing windows of average dollar volume and volatility (about a month).
Both end on the trading day itself: trades are made at its close, when its volume is known."""


@dataclass(frozen=True, eq=False)
class MarketHistory:
    """Aligned arrays for one backtest (``prices``: days x symbols, float)."""

    frame: pd.DataFrame
    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    prices: np.ndarray
    flows: np.ndarray
    initial: PortfolioConfiguration
    volume: np.ndarray | None = None  # trailing mean daily dollar volume, days x symbols
    sigma: np.ndarray | None = None  # trailing volatility of daily returns, days x symbols
    impact_coefficient: float = 0.0
    static_impact: MarketImpactModel | None = None
    tax_options: TaxOptions = field(
        default_factory=TaxOptions
    )  # how a taxable account settles its tax, set by Backtest

    def __getstate__(self) -> dict[str, Any]:
        # ``prices`` is ``frame``'s own array: sent to a worker once, not twice.
        return {k: v for k, v in self.__dict__.items() if k != "prices"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, prices=state["frame"].to_numpy())

    def impact_coefficients(self, day: int) -> np.ndarray | None:
        """k_i with impact cost k_i |T_i|^1.5 on ``day`` (T in currency), or None without impact."""
        from finwiz.optimizer.describe._costs import square_root_impact

        if self.static_impact is not None:
            model = self.static_impact
            volume = model.daily_dollar_volume.reindex(list(self.symbols)).to_numpy(float)
            sigma = model.volatility.reindex(list(self.symbols)).to_numpy(float)
            return square_root_impact(model.coefficient, sigma, volume)
        if self.volume is None or self.sigma is None:
            return None
        return square_root_impact(self.impact_coefficient, self.sigma[day], self.volume[day])

    def impact_model(self, day: int) -> MarketImpactModel | None:
        """The engine's :class:`~finwiz.MarketImpactModel` for ``day`` (same numbers as above)."""
        if self.static_impact is not None:
            return self.static_impact
        if self.volume is None or self.sigma is None:
            return None
        from finwiz.optimizer import MarketImpactModel

        index = list(self.symbols)
        return MarketImpactModel(
            daily_dollar_volume=pd.Series(self.volume[day], index=index),
            volatility=pd.Series(self.sigma[day], index=index),
            coefficient=self.impact_coefficient,
        )


def _swap_day_month(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _strict(values: pd.Index, fmt: str) -> pd.DatetimeIndex | None:
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, format=fmt))
    except (TypeError, ValueError):
        return None


def _text_dates(values: pd.Index, what: str, date_format: str | None) -> pd.DatetimeIndex:
    """Text dates read one way only: ``date_format`` when given, ISO 8601, or a format whose day
    and month cannot be swapped; both readings valid and different is refused, naming a value."""
    if date_format is not None:
        parsed = _strict(values, date_format)
        if parsed is None:
            bad = next(v for v in values if _strict(pd.Index([v]), date_format) is None)
            raise InvalidPortfolioError(f"{what}: date {bad!r} does not match date_format {date_format!r}", field=what)
        return parsed
    iso = _strict(values, "ISO8601")
    if iso is not None:
        return iso
    with warnings.catch_warnings():  # pandas warns when the guess contradicts ``dayfirst``
        warnings.simplefilter("ignore")
        fmt = guess_datetime_format(str(values[0]))
    if fmt is None:
        raise InvalidPortfolioError(
            f"{what}: cannot tell the format of date {values[0]!r}; pass date_format= (e.g. '%d/%m/%y')", field=what
        )
    # Day and month can be swapped only when both are numbers (not with a month name).
    formats = (fmt, _swap_day_month(fmt)) if "%d" in fmt and "%m" in fmt else (fmt,)
    readings = [r for r in (_strict(values, f) for f in formats) if r is not None]
    if not readings:
        raise InvalidPortfolioError(
            f"{what}: the dates are not all in one format (first: {values[0]!r}); pass date_format=", field=what
        )
    if len(readings) == 2 and not readings[0].equals(readings[1]):
        i = int(np.argmax(readings[0].asi8 != readings[1].asi8))
        a, b = sorted((readings[0][i].date(), readings[1][i].date()))
        raise InvalidPortfolioError(
            f"{what}: date {values[i]!r} is ambiguous ({a} or {b}): every day is 12 or less, so day and "
            f"month cannot be told apart; pass date_format= (e.g. '%d/%m/%Y'; --date-format on the command line)",
            field=what,
        )
    return readings[0]


def parse_dates(index: Any, what: str, date_format: str | None = None) -> pd.DatetimeIndex:
    """``index`` as naive dates, refused by name (``what``) when a value is not a date or text
    dates are ambiguous (``01/03/2024``: 3 January or 1 March?) and no ``date_format`` says which."""
    values = pd.Index(index)
    try:
        if len(values) and all(isinstance(v, str) for v in values):
            dates = _text_dates(values.str.strip(), what, date_format)
        else:
            dates = pd.DatetimeIndex(pd.to_datetime(values))
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, InvalidPortfolioError):
            raise
        raise InvalidPortfolioError(f"{what}: the index must be dates ({exc})", field=what) from exc
    if dates.hasnans:
        raise InvalidPortfolioError(f"{what}: the index has a missing date", field=what)
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    return dates


def _sorted_unique(dates: pd.DatetimeIndex, what: str) -> None:
    duplicated = dates.duplicated()
    if duplicated.any():
        raise InvalidPortfolioError(f"{what}: date {dates[duplicated][0].date()} appears twice", field=what)
    if len(dates) > 1:
        down = np.flatnonzero(np.diff(dates.asi8) < 0)
        if len(down):
            i = int(down[0])
            raise InvalidPortfolioError(
                f"{what}: dates are not sorted ({dates[i + 1].date()} comes after {dates[i].date()})", field=what
            )


def _columns(frame: pd.DataFrame, what: str) -> list[str]:
    out: list[str] = []
    for raw in frame.columns:
        symbol = canonical_symbol(str(raw))
        if symbol in out:
            raise InvalidPortfolioError(f"{what}: symbol {symbol} is a column twice", field=what, symbol=symbol)
        out.append(symbol)
    return out


def _table(frame: Any, what: str, date_format: str | None = None) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidPortfolioError(f"{what} must be a pandas DataFrame of dates x symbols", field=what)
    table = frame.copy()
    table.index = parse_dates(frame.index, what, date_format)
    table.columns = pd.Index(_columns(frame, what))
    _sorted_unique(table.index, what)
    return table


def _numbers(table: pd.DataFrame, what: str) -> np.ndarray:
    try:
        return table.to_numpy(dtype=float)
    except (TypeError, ValueError):
        for symbol in table.columns:
            converted = pd.to_numeric(table[symbol], errors="coerce")
            bad = (converted.isna() & table[symbol].notna()).to_numpy()
            if bad.any():
                day = int(np.argmax(bad))
                raise PriceDataError(
                    str(symbol),
                    f"{what}: value {table[symbol].iloc[day]!r} on {table.index[day].date()} is not a number",
                ) from None
        raise


def _first_bad(table: pd.DataFrame, bad: np.ndarray) -> tuple[str, str]:
    day, col = np.argwhere(bad)[0]
    return str(table.columns[col]), str(table.index[day].date())


def _normalised(
    initial: PortfolioConfiguration, sectors: Mapping[str, str] | pd.Series | None
) -> PortfolioConfiguration:
    """Every symbol of the universe as a holding (0 shares where not held), sectors merged in."""
    if not isinstance(initial, PortfolioConfiguration):
        raise InvalidPortfolioError("initial must be a PortfolioConfiguration", field="initial")
    if initial.cash_flow != 0:
        raise InvalidPortfolioError(
            "initial: cash_flow must be 0 in a backtest; pass dated flows as Backtest(cash_flows=...)",
            field="cash_flow",
        )
    held = {h.symbol: h for h in initial.holdings}
    holdings = [held.get(s) or Holding(symbol=s, shares=0.0) for s in initial.symbols]
    update: dict[str, Any] = {"holdings": holdings}
    if sectors is not None:
        given = {canonical_symbol(str(k)): str(v) for k, v in dict(sectors).items()}
        update["sectors"] = {**{s: given[s] for s in initial.symbols if s in given}, **initial.sectors}
    fields = {k: getattr(initial, k) for k in initial.model_fields_set | {"holdings", "target_weights"}}
    fields.update(update)
    return PortfolioConfiguration(**fields)


def _flows(cash_flows: Any, dates: pd.DatetimeIndex, date_format: str | None = None) -> np.ndarray:
    flows = np.zeros(len(dates))
    if cash_flows is None:
        return flows
    if not isinstance(cash_flows, pd.Series):
        raise InvalidPortfolioError("cash_flows must be a pandas Series of date -> amount", field="cash_flows")
    when = parse_dates(cash_flows.index, "cash_flows", date_format)
    amounts = pd.to_numeric(cash_flows, errors="coerce").to_numpy(float)
    for day, amount in zip(when, amounts, strict=True):
        if not np.isfinite(amount):
            raise InvalidPortfolioError(
                f"cash_flows: the flow on {day.date()} is not a finite number", field="cash_flows"
            )
        if day < dates[0] or day > dates[-1]:
            raise InvalidPortfolioError(
                f"cash_flows: {day.date()} is outside the backtest ({dates[0].date()} to {dates[-1].date()})",
                field="cash_flows",
            )
    # A flow on a day without prices (a weekend) arrives on the next trading day.
    np.add.at(flows, np.searchsorted(dates.asi8, when.asi8, side="left"), amounts)
    return flows


def _volumes(
    volumes: Any, dates: pd.DatetimeIndex, symbols: list[str], prices: np.ndarray, date_format: str | None = None
) -> tuple[np.ndarray, ...]:
    table = _table(volumes, "volumes", date_format)
    missing = [s for s in symbols if s not in table.columns]
    if missing:
        raise InvalidPortfolioError(f"volumes: no column for {', '.join(missing)}", field="volumes", symbol=missing[0])
    absent = dates[~dates.isin(table.index)]
    if len(absent):
        raise InvalidPortfolioError(f"volumes: no row for {absent[0].date()}", field="volumes")
    table = table.loc[:, symbols]
    raw = _numbers(table, "volumes")
    bad = ~np.isfinite(raw) | (raw < 0)
    if bad.any():
        symbol, day = _first_bad(table, bad)
        raise InvalidPortfolioError(f"volumes: {symbol} has no usable volume on {day}", field="volumes", symbol=symbol)
    rolling = pd.DataFrame(raw, index=table.index).rolling(IMPACT_WINDOW, min_periods=1).mean().reindex(dates)
    volume = rolling.to_numpy()
    empty = volume <= 0
    if empty.any():
        day, col = np.argwhere(empty)[0]
        raise InvalidPortfolioError(
            f"volumes: {symbols[col]} traded nothing in the {IMPACT_WINDOW} days to {dates[day].date()}",
            field="volumes",
            symbol=symbols[col],
        )
    returns = pd.DataFrame(prices).pct_change()
    sigma = returns.rolling(IMPACT_WINDOW, min_periods=2).std().bfill().fillna(0.0).to_numpy()
    return volume, sigma


def build_history(
    prices: Any,
    initial: PortfolioConfiguration,
    *,
    volumes: Any,
    sectors: Mapping[str, str] | pd.Series | None,
    start: Any,
    end: Any,
    cash_flows: pd.Series | None,
    market_impact: float | MarketImpactModel | None,
    date_format: str | None,
) -> MarketHistory:
    """Validate everything a backtest needs (see the module docstring); ``date_format`` reads
    text dates (prices, volumes, cash flows), required when they are ambiguous. The arguments
    are :class:`~finwiz.backtest.Backtest`'s, whose signature holds their defaults."""
    config = _normalised(initial, sectors)
    symbols = config.symbols
    dates, P = _prices(prices, symbols, start, end, date_format)
    held = np.array([h.shares for h in config.holdings])
    if float(held @ P[0]) + config.cash <= 0:
        raise InvalidPortfolioError(
            f"initial: the book is worth nothing on {dates[0].date()}; start with cash or holdings", field="holdings"
        )
    frame = pd.DataFrame(P, index=dates, columns=pd.Index(symbols, name="symbol"))
    history = MarketHistory(frame, dates, tuple(symbols), P, _flows(cash_flows, dates, date_format), config)
    return _with_impact(history, volumes, market_impact, date_format)


def _prices(
    prices: Any, symbols: list[str], start: Any, end: Any, date_format: str | None
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The dates and prices (days x ``symbols``) from ``start`` to ``end``, every one positive and finite."""
    table = _table(prices, "prices", date_format)
    if start is not None or end is not None:
        table = table.loc[
            pd.Timestamp(start) if start is not None else None : pd.Timestamp(end) if end is not None else None
        ]
    if table.empty:
        raise InvalidPortfolioError("prices: no dates between start and end", field="prices")
    missing = [s for s in symbols if s not in table.columns]
    if missing:
        raise InvalidPortfolioError(
            f"prices: no column for {', '.join(missing)} (held or targeted in initial)",
            field="prices",
            symbol=missing[0],
        )
    table = table.loc[:, symbols]
    P = _numbers(table, "prices")
    gap = np.isnan(P)
    if gap.any():
        symbol, day = _first_bad(table, gap)
        raise PriceDataError(symbol, f"no price on {day} (a gap in the price table)")
    bad = ~np.isfinite(P) | (P <= 0)
    if bad.any():
        symbol, day = _first_bad(table, bad)
        raise PriceDataError(
            symbol, f"price {table.loc[pd.Timestamp(day), symbol]!r} on {day} is not positive and finite"
        )
    return pd.DatetimeIndex(table.index, name="date"), P


def _with_impact(history: MarketHistory, volumes: Any, market_impact: Any, date_format: str | None) -> MarketHistory:
    """``history`` with its market impact: a fixed model, estimated from volumes, or none."""
    from finwiz.optimizer import MarketImpactModel

    if isinstance(market_impact, MarketImpactModel):
        if volumes is not None:
            raise ConfigurationError("give volumes (impact estimated from them) or a fixed MarketImpactModel, not both")
        return replace(history, static_impact=market_impact)
    if market_impact is not None and not (isinstance(market_impact, int | float) and np.isfinite(market_impact)):
        raise ConfigurationError(f"market_impact must be a coefficient or a MarketImpactModel, not {market_impact!r}")
    if volumes is None:
        if market_impact:
            raise ConfigurationError("market_impact needs volumes= (daily dollar volume per symbol)")
        return history
    volume, sigma = _volumes(volumes, history.dates, list(history.symbols), history.prices, date_format)
    coefficient = 1.0 if market_impact is None else float(market_impact)
    if coefficient == 0:
        return history
    return replace(history, volume=volume, sigma=sigma, impact_coefficient=coefficient)
