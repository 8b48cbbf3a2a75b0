"""Rebalancing policies: when a book is rebalanced, and to which trades.

A policy answers two questions, each vectorised where it can be:

* ``schedule(dates) -> bool array``: the days it is consulted on (every day, month starts, ...);
* ``triggered(weights, cash_weights, target, cash_target) -> bool array``: on which of those days
  (given the drifted weights of each, a ``k x n`` block) it wants to trade; optional, default all;
* ``rebalance(context) -> trades``: the trades on a day it fired, as signed shares per symbol (a
  numpy array or a Series), a :class:`~finwiz.RebalancingResult` from the engine, or ``None``.

Any object with ``schedule`` and ``rebalance`` (and optionally ``triggered`` and ``overrides``) is
a policy; :class:`RebalancePolicy` is a convenient base class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from finwiz.errors import ConfigurationError
from finwiz.schemas import Holding, PortfolioConfiguration, RebalancingMethod, RebalancingResult

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.optimizer import MarketImpactModel, RebalancingEngine
    from finwiz.optimizer.describe._costs import CostModel

# The public names are listed once, in finwiz.backtest.__all__ (every one is re-exported there).

Decision = np.ndarray | pd.Series | RebalancingResult | None
"""What ``rebalance`` returns: signed shares per symbol, an engine result, or no trade."""

_FREQUENCIES = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y", "A": "Y"}
FRACTIONAL_STEP = 1e-6  # fractional trades are in millionths of a share, like the engine's


@dataclass(frozen=True, eq=False)
class RebalanceContext:
    """The book on a day a policy fired, after that day's cash flow, at that day's close.

    ``prices``, ``shares``, ``target`` and ``cost_rates`` are aligned to ``symbols``; ``cash`` may
    be negative when a withdrawal exceeded it (the policy should raise cash).
    ``impact`` holds the per-asset impact coefficients ``k_i`` (cost ``k_i |T_i|^1.5``) or None.
    """

    date: pd.Timestamp
    day: int
    symbols: tuple[str, ...]
    prices: np.ndarray
    shares: np.ndarray
    cash: float
    cash_flow: float
    config: PortfolioConfiguration
    target: np.ndarray
    cash_target: float
    cost_rates: np.ndarray
    impact: np.ndarray | None = None
    market_impact: MarketImpactModel | None = None
    _holdings: tuple[Holding, ...] = field(default=(), repr=False)

    @cached_property
    def value(self) -> float:
        """Total value: positions at today's prices plus cash."""
        return float(self.shares @ self.prices + self.cash)

    @cached_property
    def weights(self) -> np.ndarray:
        """Current weights of the assets (fractions of :attr:`value`)."""
        return np.asarray(self.shares * self.prices / self.value)

    @cached_property
    def price_series(self) -> pd.Series:
        """Today's prices as a Series symbol -> price (what the engine takes)."""
        return pd.Series(self.prices, index=list(self.symbols), name=str(self.date.date()))

    @cached_property
    def cost_model(self) -> CostModel:
        """The engine's cost model with today's rates and impact coefficients (currency)."""
        from finwiz.optimizer.describe._costs import CostModel

        return CostModel(self.cost_rates, self.impact)

    def costs(self, trade_values: np.ndarray) -> np.ndarray:
        """Cost in currency of signed ``trade_values``: rate x |T| (+ k |T|^1.5 with impact)."""
        return self.cost_model(trade_values)

    def configuration(self, **updates: Any) -> PortfolioConfiguration:
        """The run's configuration with today's drifted holdings and cash (and ``updates``).

        A negative cash (a withdrawal beyond it) becomes ``cash=0`` plus ``cash_flow`` = the
        shortfall, so the engine raises it by selling.
        """
        holdings = [  # a taxable book's records already hold today's shares: kept as they are
            base if base.shares == s else Holding.trusted(**{**base.__dict__, "shares": float(s)})
            for base, s in zip(self._holdings, self.shares.tolist(), strict=True)
        ]
        fields: dict[str, Any] = {"holdings": holdings, "cash": max(self.cash, 0.0), "cash_flow": min(self.cash, 0.0)}
        fields.update(updates)
        return self.config.model_copy(update=fields)


@runtime_checkable
class Policy(Protocol):
    """What :meth:`Backtest.run` needs of a policy (``triggered`` and ``overrides`` are optional)."""

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray: ...

    def rebalance(self, context: RebalanceContext) -> Decision: ...


class RebalancePolicy:
    """Base class: consulted every day, always fires, trades to target in whole shares.

    ``overrides`` are fields of :class:`~finwiz.PortfolioConfiguration` (e.g.
    ``transaction_cost_rate``, ``min_trade_size``, ``max_turnover``) applied to the backtest's
    initial configuration for this policy's run, so one backtest sweeps cost rates or limits.
    """

    def __init__(self, **overrides: Any) -> None:
        self.overrides: dict[str, Any] = dict(overrides)

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Days on which the policy is consulted (default: every day)."""
        return np.ones(len(dates), dtype=bool)

    def triggered(
        self, weights: np.ndarray, cash_weights: np.ndarray, target: np.ndarray, cash_target: float
    ) -> np.ndarray:
        """Which of ``k`` consulted days (rows of ``weights``) the policy trades on (default: all)."""
        return np.ones(len(weights), dtype=bool)

    def rebalance(self, context: RebalanceContext) -> Decision:
        """The trades on a day the policy fired (default: back to target, see :func:`trade_to_target`)."""
        return trade_to_target(context)

    def _arguments(self) -> list[str]:
        return [f"{k}={v!r}" for k, v in self.overrides.items()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._arguments())})"


def _period_starts(dates: pd.DatetimeIndex, every: str | int, what: str) -> np.ndarray:
    """True on the first trading day of each period (the first day always)."""
    mask = np.zeros(len(dates), dtype=bool)
    if len(dates) == 0:
        return mask
    if isinstance(every, int) and not isinstance(every, bool):
        if every < 1:
            raise ConfigurationError(f"{what}: every={every} must be a positive number of trading days")
        mask[::every] = True
        return mask
    freq = _FREQUENCIES.get(str(every).strip().upper().rstrip("E") or "?")
    if freq is None:
        raise ConfigurationError(
            f"{what}: unknown frequency {every!r}; use 'D', 'W', 'M', 'Q', 'Y' or a number of days"
        )
    if freq == "D":
        mask[:] = True
        return mask
    periods = dates.to_period(freq).asi8
    mask[0] = True
    mask[1:] = periods[1:] != periods[:-1]
    return mask


def _check_frequency(every: str | int, what: str) -> str | int:
    """Refuse an unknown frequency when the policy is made, not in the middle of a run."""
    _period_starts(pd.DatetimeIndex(["2000-01-03", "2000-01-04"]), every, what)
    return every


class NeverRebalance(RebalancePolicy):
    """Buy and hold: never trades (cash flows still arrive; a withdrawal beyond cash sells pro rata)."""

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Never consulted."""
        return np.zeros(len(dates), dtype=bool)


class CalendarRebalance(RebalancePolicy):
    """Back to target on the first trading day of every period: ``every`` = ``"W"``, ``"M"``,
    ``"Q"``, ``"Y"`` or a number of trading days (the first day of the backtest included)."""

    def __init__(self, every: str | int = "M", **overrides: Any) -> None:
        super().__init__(**overrides)
        self.every = _check_frequency(every, "CalendarRebalance")

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """First trading day of each period."""
        return _period_starts(dates, self.every, "CalendarRebalance")

    def _arguments(self) -> list[str]:
        return [f"every={self.every!r}", *super()._arguments()]


class BandRebalance(RebalancePolicy):
    """Back to target whenever an asset's (or cash's) weight is more than ``tolerance`` away from
    its target, checked on every day (``check_every="D"``), week start or month start."""

    def __init__(self, tolerance: float = 0.05, check_every: str | int = "D", **overrides: Any) -> None:
        super().__init__(**overrides)
        if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and 0 <= tolerance <= 1):
            raise ConfigurationError(f"BandRebalance: tolerance {tolerance!r} must be a number in [0, 1]")
        self.tolerance = float(tolerance)
        self.check_every = _check_frequency(check_every, "BandRebalance")

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """The checking days."""
        return _period_starts(dates, self.check_every, "BandRebalance")

    def triggered(
        self, weights: np.ndarray, cash_weights: np.ndarray, target: np.ndarray, cash_target: float
    ) -> np.ndarray:
        """Days on which some |w_i - w*_i| (cash included) exceeds the tolerance."""
        drift = np.abs(weights - target).max(axis=1, initial=0.0)
        return np.asarray((drift > self.tolerance) | (np.abs(cash_weights - cash_target) > self.tolerance))

    def _arguments(self) -> list[str]:
        check = [] if self.check_every == "D" else [f"check_every={self.check_every!r}"]
        return [f"{self.tolerance!r}", *check, *super()._arguments()]


class OptimizedRebalance(RebalancePolicy):
    """finwiz's engine on each scheduled day: any strategy (``method``, the user's registered on
    ``engine`` included), every limit of the configuration, whole shares. ``overrides`` replace
    configuration fields (``max_turnover=0.1``, ``tolerance=0.0``, ...); ``options`` go to
    :func:`finwiz.rebalance` (e.g. ``factor_model=`` for ``RISK_AWARE``).

    Consecutive dates have the same problem structure, so the engine's caches (the OSQP workspace,
    the compiled problem) are reused and warm-started from one date to the next. ``solver``
    defaults to ``"OSQP"`` first on every date: the engine's ``"auto"`` moves a problem shape to
    Clarabel for good after one polish that does not verify, which made a long backtest about
    three times slower (answers are verified either way; ``solver=None`` restores the engine's
    choice).

    With ``impact_aware=True`` the engine sees the day's market impact model (from the backtest's
    volumes) and optimises with it; with ``False`` it does not, but the simulation still charges
    the impact of its trades.
    """

    def __init__(
        self,
        method: RebalancingMethod | str = RebalancingMethod.MINIMIZE_TRADES,
        every: str | int = "M",
        *,
        engine: RebalancingEngine | None = None,
        solver: str | None = "OSQP",
        impact_aware: bool = True,
        options: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(**overrides)
        self.method = method
        self.every = _check_frequency(every, "OptimizedRebalance")
        self.engine = engine
        self.solver = solver
        self.impact_aware = impact_aware
        self.options = dict(options or {})

    def schedule(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """First trading day of each period."""
        return _period_starts(dates, self.every, "OptimizedRebalance")

    def rebalance(self, context: RebalanceContext) -> Decision:
        """One call of :func:`finwiz.rebalance` on today's book."""
        from finwiz.optimizer import rebalance

        options = dict(self.options)
        if context.market_impact is not None and self.impact_aware:
            options["market_impact"] = context.market_impact
        if self.solver is not None:
            options["solver"] = self.solver
        if self.engine is not None:
            options["engine"] = self.engine
        config = context.configuration(method=self.method)
        return rebalance(config, context.price_series, portfolio_id=str(context.date.date()), **options)

    def _arguments(self) -> list[str]:
        method = self.method.value if isinstance(self.method, RebalancingMethod) else self.method
        extra = [] if self.impact_aware else ["impact_aware=False"]
        return [f"{method!r}", f"every={self.every!r}", *extra, *super()._arguments()]


def _round(trades: np.ndarray, fractional: bool) -> np.ndarray:
    if fractional:
        return np.asarray(np.round(trades / FRACTIONAL_STEP) * FRACTIONAL_STEP)
    return np.asarray(np.round(trades))


def trade_to_target(context: RebalanceContext) -> np.ndarray:
    """Signed trades that bring every asset to ``target x V`` at today's price, in whole shares
    (millionths with ``allow_fractional_shares``), costs paid from cash.

    Trades worth less than ``min_trade_size`` are dropped. When rounding and costs would leave cash
    below zero, the targets are scaled down by the estimated costs and rounded down, and if that
    is still short the largest buys are cut share by share: cash never goes negative by trading.
    With ``allow_short`` sells are not limited to the holding (short targets are sold short).
    The configuration's other limits (caps, restricted lists, lot sizes) are not applied here;
    :class:`OptimizedRebalance` keeps every one of them.
    """
    config = context.config
    fractional = config.allow_fractional_shares
    prices, shares = context.prices, context.shares
    value = context.value

    def settle(trades: np.ndarray) -> tuple[np.ndarray, float]:
        if not config.allow_short:  # never sell more than is held (a short book sells short)
            trades = np.maximum(trades, -shares)
            if not fractional:
                trades = np.where(trades < 0, np.maximum(trades, -np.floor(shares + 1e-9)), trades)
        trades = np.where(np.abs(trades * prices) < max(config.min_trade_size, 1e-9), 0.0, trades)
        values = trades * prices
        return trades, context.cash - float(values.sum() + context.costs(values).sum())

    trades, cash_after = settle(_round(context.target * value / prices - shares, fractional))
    if cash_after >= 0 or value <= 0:
        return trades
    wanted = context.target * value - shares * prices
    budget = value - float(context.costs(wanted).sum()) - float(prices.sum()) * (1e-6 if fractional else 1.0)
    desired = context.target * max(budget, 0.0) / prices - shares
    step = FRACTIONAL_STEP if fractional else 1.0
    trades, cash_after = settle(np.floor(desired / step) * step)
    while cash_after < 0 and (trades > 0).any():
        i = int(np.argmax(trades * prices))
        cut = min(trades[i], math.ceil(-cash_after / prices[i] / step) * step)
        trades[i] -= cut
        trades, cash_after = settle(trades)
    return trades
