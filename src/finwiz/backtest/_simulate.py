"""The simulation: a held book drifting with prices, rebalanced by a policy, day by day in blocks.

Between two events (a day the policy fires, a cash flow) nothing trades, so the book's value over
that interval is one matrix-vector product of the price block with the (constant) shares; no
per-day, per-asset Python loop. A policy with a trigger (bands) is asked about whole blocks of
candidate days at once, as weight matrices. On an event day, in this order: the cash flow arrives,
the policy trades at that day's price (whole shares, the configured cost model plus market impact
from the volumes), and if cash is still negative (a withdrawal beyond it) positions are sold pro
rata to raise it. ``values`` is the book at each day's close, after all of that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finwiz.backtest._lots import LotLedger
from finwiz.backtest._policies import FRACTIONAL_STEP, RebalanceContext
from finwiz.backtest._results import REBALANCE_COLUMNS, TRADE_COLUMNS, BacktestResult
from finwiz.errors import FinwizError, InvalidPortfolioError, PolicyError
from finwiz.schemas import CASH, LotSale, PortfolioConfiguration, RebalancingResult

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.backtest._data import MarketHistory

__all__ = ["refuse_taxable", "simulate"]

_BLOCK = 64  # candidate days evaluated per trigger block (doubles while nothing fires)
_CASH_SLACK = 1e-7  # currency: float noise tolerated below zero cash before raising it


def refuse_taxable(config: PortfolioConfiguration) -> None:
    """Refuse holdings with lots but no ``tax`` by name: a backtest carries lots only for a taxable
    account. (Not a configuration: left to ``build_history``, which refuses it.)"""
    if not isinstance(config, PortfolioConfiguration) or config.tax is not None:
        return
    held = next((h for h in config.holdings if h.lots), None)
    if held is not None:
        raise InvalidPortfolioError(
            f"holdings: {held.symbol} has lots but the configuration has no `tax`: give tax settings "
            "to carry the lots through the backtest, or drop the lots",
            field="holdings",
            symbol=held.symbol,
        )


def _ledger(history: MarketHistory) -> LotLedger | None:
    settings = history.initial.tax
    if settings is None:
        return None
    first_day = history.dates[0].date()
    return LotLedger(tuple(history.initial.holdings), settings, first_day=first_day, options=history.tax_options)


def _chosen_lots(decision: Any) -> dict[str, list[LotSale]]:
    """The lots each sell of an engine result relieves (the symbols that name them)."""
    if not isinstance(decision, RebalancingResult):
        return {}
    return {t.symbol: list(t.lots) for t in decision.trades if t.lots and t.signed_shares < 0}


def _base_config(initial: PortfolioConfiguration, overrides: dict[str, Any], name: str) -> PortfolioConfiguration:
    if overrides.get("tax") is not None:  # tax=None: a tax-blind policy on the taxable account
        raise PolicyError(
            f"policy {name!r}: its override tax= is refused: the account's tax settings are the "
            "backtest's (tax=None makes the policy tax-blind; the account is still taxed)"
        )
    if not overrides:
        return initial
    fields = {k: getattr(initial, k) for k in initial.model_fields_set | {"holdings", "target_weights"}}
    fields.update(overrides)
    try:
        config = PortfolioConfiguration(**fields)
    except FinwizError as exc:
        raise PolicyError(f"policy {name!r}: its overrides are refused: {exc}") from exc
    if config.symbols != initial.symbols:
        raise PolicyError(f"policy {name!r}: overrides may not change the universe of symbols")
    return config


def _as_trades(decision: Any, ctx: RebalanceContext, name: str) -> np.ndarray:
    """Signed shares per symbol, checked: finite, whole (or millionths), no sale beyond holdings."""
    n = len(ctx.symbols)
    where = f"policy {name!r} on {ctx.date.date()}"
    if decision is None:
        return np.zeros(n)
    if isinstance(decision, RebalancingResult):
        index = {s: i for i, s in enumerate(ctx.symbols)}
        trades = np.zeros(n)
        for t in decision.trades:
            if t.symbol not in index:
                raise PolicyError(f"{where}: traded {t.symbol}, which is not in the backtest")
            trades[index[t.symbol]] += t.signed_shares
        decision = trades
    if isinstance(decision, pd.Series):
        unknown = [s for s in decision.index if s not in set(ctx.symbols)]
        if unknown:
            raise PolicyError(f"{where}: traded {unknown[0]}, which is not in the backtest")
        decision = decision.reindex(list(ctx.symbols), fill_value=0.0).to_numpy(float)
    try:
        trades = np.asarray(decision, dtype=float).reshape(n)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: returned {type(decision).__name__}, not {n} signed share trades") from exc
    bad = ~np.isfinite(trades)
    step = FRACTIONAL_STEP if ctx.config.allow_fractional_shares else 1.0
    units = trades / step
    bad |= np.abs(units - np.round(units)) > 1e-6 + 1e-12 * np.abs(units)  # float noise of large trades
    if bad.any():
        i = int(np.argmax(bad))
        unit = "millionths of a share" if step < 1 else "whole shares"
        raise PolicyError(f"{where}: trade of {float(trades[i]):g} {ctx.symbols[i]} is not in {unit}")
    short = ctx.shares + trades < -1e-9
    if short.any() and not ctx.config.allow_short:
        i = int(np.argmax(short))
        raise PolicyError(f"{where}: sells {-trades[i]:g} {ctx.symbols[i]} but holds {ctx.shares[i]:g}")
    return trades


def _raise_cash(ctx: RebalanceContext) -> np.ndarray:
    """Whole-share sales, pro rata to the positions, covering a negative cash and their costs."""
    step = FRACTIONAL_STEP if ctx.config.allow_fractional_shares else 1.0
    sellable = np.floor(np.maximum(ctx.shares, 0.0) / step + 1e-9) * step  # long positions only
    worth = float(sellable @ ctx.prices)
    if worth <= 0:
        return np.zeros(len(ctx.symbols))
    fraction = min(1.0, -ctx.cash / worth * (1 + 2 * float(ctx.cost_rates.max(initial=0.0))))
    sell = np.minimum(np.ceil(fraction * sellable / step) * step, sellable)
    for _ in range(len(sell) + 1):  # costs may leave a few cents short: one more share at a time
        values = -sell * ctx.prices
        if ctx.cash - values.sum() - ctx.costs(values).sum() >= 0 or np.all(sell >= sellable):
            break
        i = int(np.argmax(np.where(sell < sellable, ctx.prices, -np.inf)))
        sell[i] += step
    return np.asarray(-sell)


def simulate(
    history: MarketHistory, policy: Any, name: str, on_dates: Callable[[int], object] | None = None
) -> BacktestResult:
    """Play ``policy`` over ``history``; see the module docstring for the order of a day.

    ``on_dates(n)`` is told each time ``n`` more of the policy's scheduled dates are behind."""
    if not (callable(getattr(policy, "schedule", None)) and callable(getattr(policy, "rebalance", None))):
        raise PolicyError(f"policy {name!r} ({type(policy).__name__}) has no schedule() and rebalance() methods")
    return _Run(history, policy, name, on_dates).play()


class _Run:
    """One policy played over one history: the book (shares, cash, lots) and the rows it leaves."""

    def __init__(
        self, history: MarketHistory, policy: Any, name: str, on_dates: Callable[[int], object] | None
    ) -> None:
        self.history, self.policy, self.name, self.on_dates = history, policy, name, on_dates
        config = _base_config(history.initial, dict(getattr(policy, "overrides", {}) or {}), name)
        self.config = config
        self.dates, self.P, self.flows = history.dates, history.prices, history.flows
        self.T = T = len(self.P)
        self.symbols = symbols = history.symbols
        self.target = np.array([config.target_weights.get(s, 0.0) for s in symbols])
        self.cash_target = config.cash_target
        self.rates = np.array([config.transaction_cost_rates.get(s, config.transaction_cost_rate) for s in symbols])
        self.check = self._schedule()
        self.trigger = getattr(policy, "triggered", None)
        self.holdings = tuple(config.holdings)
        self.shares = np.array([h.shares for h in self.holdings], dtype=float)
        self.cash = float(config.cash)
        self.values = np.empty(T)
        self.cash_days = np.empty(T)
        self.starts, self.books = [0], [self.shares.copy()]
        self.trade_rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # day, idx, signed shares, costs
        self.rebalance_rows: list[tuple[pd.Timestamp, dict[str, Any]]] = []
        self.ledger = ledger = _ledger(history)
        flow_days = np.flatnonzero(self.flows != 0)
        if ledger is not None:  # a taxable account settles its year on the first trading day of the next
            years = self.dates.year.to_numpy()
            flow_days = np.union1d(flow_days, np.flatnonzero(years[1:] != years[:-1]) + 1)
        self.flow_days = flow_days
        self.check_days = np.flatnonzero(self.check)
        self.passed = 0

    def _schedule(self) -> np.ndarray:
        try:
            return np.asarray(self.policy.schedule(self.dates), dtype=bool).reshape(self.T)
        except FinwizError:
            raise
        except Exception as exc:
            raise PolicyError(f"policy {self.name!r}: schedule() failed: {type(exc).__name__}: {exc}") from exc

    def fires(self, days: np.ndarray, cash_now: float) -> np.ndarray:
        if self.trigger is None or len(days) == 0:
            return np.ones(len(days), dtype=bool)
        block = self.P[days] * self.shares
        total = block.sum(axis=1) + cash_now
        try:
            hit = self.trigger(block / total[:, None], cash_now / total, self.target, self.cash_target)
            return np.asarray(hit, dtype=bool).reshape(len(days))
        except FinwizError:
            raise
        except Exception as exc:
            raise PolicyError(
                f"policy {self.name!r}: triggered() failed near {self.dates[days[0]].date()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def next_event(self, t: int) -> tuple[int, bool]:
        """The next day >= t with a cash flow or a firing policy, and whether the policy fires."""
        flow_days, check_days = self.flow_days, self.check_days
        f = int(flow_days[np.searchsorted(flow_days, t)]) if np.searchsorted(flow_days, t) < len(flow_days) else self.T
        lo, hi = np.searchsorted(check_days, t), np.searchsorted(check_days, f)
        size = _BLOCK
        while lo < hi:
            days = check_days[lo : min(hi, lo + size)]
            hit = self.fires(days, self.cash)
            if hit.any():
                return int(days[int(np.argmax(hit))]), True
            lo += len(days)
            size *= 2
        return f, False

    def apply(
        self, day: int, trades: np.ndarray, costs: np.ndarray, chosen: dict[str, list[LotSale]] | None = None
    ) -> float:
        P = self.P
        idx = np.flatnonzero(trades)
        trade_values = trades[idx] * P[day, idx]
        cost = costs[idx]
        if self.ledger is not None:  # sales first: a purchase after a loss sale of its group sees it
            where = f"policy {self.name!r} on {self.dates[day].date()}"
            for i in sorted(idx.tolist(), key=lambda i: trades[i] > 0):
                lots = (chosen or {}).get(self.symbols[i])
                self.ledger.trade(i, float(trades[i]), float(P[day, i]), lots, where)
        self.shares = self.shares + trades
        self.cash = self.cash - float(trade_values.sum()) - float(cost.sum())
        if len(idx):
            self.trade_rows.append((day, idx, trades[idx], cost))
        return float(np.abs(trade_values).sum())

    def context(self, day: int) -> RebalanceContext:
        config, ledger = self.config, self.ledger
        today, held = config, self.holdings
        if ledger is not None:  # the day's lots, and tax settings for a policy that sees the tax
            held = ledger.holdings(self.shares)
            if config.tax is not None:
                today = config.model_copy(update={"tax": ledger.settings()})
        return RebalanceContext(
            date=self.dates[day],
            day=day,
            symbols=self.symbols,
            prices=self.P[day],
            shares=self.shares.copy(),
            cash=self.cash,
            cash_flow=float(self.flows[day]),
            config=today,
            target=self.target,
            cash_target=self.cash_target,
            cost_rates=self.rates,
            impact=self.history.impact_coefficients(day),
            market_impact=self.history.impact_model(day),
            _holdings=held,
        )

    def record(self, day: int, trigger_name: str, value: float, *, status: str = "ok", reason: str = "",
               count: int = 0, traded: float = 0.0, cost: float = 0.0, seconds: float = 0.0) -> None:  # fmt: skip
        turnover = traded / value if value > 0 else 0.0
        fields = (trigger_name, status, reason, count, turnover, cost, value, seconds)
        self.rebalance_rows.append((self.dates[day], dict(zip(REBALANCE_COLUMNS, fields, strict=True))))

    def report(self, upto: int) -> None:
        now = int(np.searchsorted(self.check_days, upto))
        if self.on_dates is not None and now > self.passed:
            self.on_dates(now - self.passed)
        self.passed = now

    def play(self) -> BacktestResult:
        P, T = self.P, self.T
        t = 0
        while t < T:
            e, fired = self.next_event(t)
            self.values[t:e] = P[t:e] @ self.shares + self.cash
            self.cash_days[t:e] = self.cash
            if e >= T:
                self.report(T)
                break
            self._event(e, fired)
            t = e + 1
            self.report(t)
        return self._result()

    def _event(self, e: int, fired: bool) -> None:
        """Day ``e``: the cash flow (and a taxable year's settlement), the policy, a shortfall's sale."""
        flows, ledger = self.flows, self.ledger
        self.cash += float(flows[e])
        paid = 0.0
        if ledger is not None:
            paid = ledger.new_day(self.dates[e].date())
            if ledger.pay_taxes:  # last year's tax (negative: a refund of the ordinary deduction)
                self.cash -= paid
        if not fired and (flows[e] != 0 or paid != 0) and self.check[e]:
            fired = bool(self.fires(np.array([e]), self.cash)[0])
        if fired:
            self._rebalance(e)
        if self.cash < -_CASH_SLACK:
            self._cover_shortfall(e)
        self.values[e] = self.P[e] @ self.shares + self.cash
        self.cash_days[e] = self.cash
        if self.starts[-1] == e:
            self.books[-1] = self.shares.copy()
        else:
            self.starts.append(e)
            self.books.append(self.shares.copy())

    def _rebalance(self, e: int) -> None:
        """Ask the policy on day ``e`` and trade what it returns; an engine refusal is recorded."""
        ctx = self.context(e)
        start = time.perf_counter()
        chosen: dict[str, list[LotSale]] = {}
        try:
            decision = self.policy.rebalance(ctx)
            chosen = _chosen_lots(decision)
            trades = _as_trades(decision, ctx, self.name)
        except PolicyError:
            raise
        except FinwizError as exc:  # infeasible limits, a solver failure: recorded, the book carries on
            reason = f"{type(exc).__name__}: {exc}"
            self.record(e, "policy", ctx.value, status="failed", reason=reason, seconds=time.perf_counter() - start)
        except Exception as exc:
            raise PolicyError(
                f"policy {self.name!r} raised on {self.dates[e].date()}: {type(exc).__name__}: {exc}"
            ) from exc
        else:
            seconds = time.perf_counter() - start
            # The cost model is the engine's (rate x |T| + k |T|^1.5, tested equal): one truth
            # for every policy, and impact is charged even when the policy ignored it.
            costs = ctx.costs(trades * self.P[e])
            traded = self.apply(e, trades, costs, chosen)
            count = int(np.count_nonzero(trades))
            self.record(e, "policy", ctx.value, count=count, traded=traded, cost=float(costs.sum()), seconds=seconds)

    def _cover_shortfall(self, e: int) -> None:
        """Negative cash after the day's flow and trades: sell pro rata to raise it."""
        ctx = self.context(e)
        sell = _raise_cash(ctx)
        costs = ctx.costs(sell * self.P[e])
        traded = self.apply(e, sell, costs)
        short = self.cash < -_CASH_SLACK
        self.record(
            e,
            "cash_shortfall",
            ctx.value,
            status="failed" if short else "ok",
            reason=f"cash still {self.cash:,.2f} after selling everything" if short else "",
            count=int(np.count_nonzero(sell)),
            traded=traded,
            cost=float(costs.sum()),
        )

    def _result(self) -> BacktestResult:
        with np.errstate(divide="ignore", invalid="ignore"):  # a book emptied by withdrawals is worth 0
            result = _assemble(self)
        ledger, dates = self.ledger, self.dates
        if ledger is not None:
            if self.T and ledger.today != dates[-1].date():
                ledger.today = dates[-1].date()  # terms on the last day (no year closes: that is owed)
            taxed = ledger.finish(self.P[-1], float(self.values[-1]))
            result.taxes, result.lot_sales, result.lots = taxed["taxes"], taxed["lot_sales"], taxed["lots"]
            result.tax_metrics = taxed["metrics"]
        return result


def _assemble(run: _Run) -> BacktestResult:
    """The run's rows and arrays as the result's frames and series."""
    history, values, cash, target, cash_target = run.history, run.values, run.cash_days, run.target, run.cash_target
    starts, books = np.array(run.starts, dtype=np.int64), np.array(run.books)
    drift = _drift(history.prices, values, cash, starts, books, target, cash_target)
    # Daily active return against the target portfolio rebalanced daily at no cost.
    P = history.prices
    benchmark = (P[1:] / P[:-1] - 1.0) @ target
    own = (values[1:] - history.flows[1:]) / values[:-1] - 1.0
    active = np.concatenate([[0.0], own - benchmark])
    rebalance_rows = run.rebalance_rows
    rebalances = pd.DataFrame(
        [r for _, r in rebalance_rows],
        index=pd.DatetimeIndex([d for d, _ in rebalance_rows], name="date"),
        columns=REBALANCE_COLUMNS,
    )
    index = pd.DatetimeIndex(history.dates, name="date")
    return BacktestResult(
        name=run.name,
        policy=repr(run.policy),
        values=pd.Series(values, index=index, name="value"),
        cash=pd.Series(cash, index=index, name="cash"),
        cash_flows=pd.Series(history.flows, index=index, name="cash_flow"),
        trades=_trades_frame(history, run.trade_rows),
        rebalances=rebalances,
        target=pd.Series([*target.tolist(), cash_target], index=[*history.symbols, CASH], name="target"),
        drift=pd.Series(drift, index=index, name="drift"),
        active_returns=pd.Series(active, index=index, name="active_return"),
        segment_starts=starts,
        segment_shares=books,
        prices=history.frame,
    )


def _drift(
    P: np.ndarray,
    values: np.ndarray,
    cash: np.ndarray,
    starts: np.ndarray,
    books: np.ndarray,
    target: np.ndarray,
    cash_target: float,
) -> np.ndarray:
    """Distance from the target per day, one segment of constant shares at a time."""
    T = len(values)
    drift = np.empty(T)
    bounds = [*starts.tolist(), T]
    for k in range(len(starts)):
        a, b = bounds[k], bounds[k + 1]
        if a >= b:
            continue
        w = P[a:b] * books[k] / values[a:b, None]
        cw = cash[a:b] / values[a:b]
        drift[a:b] = 0.5 * (np.abs(w - target).sum(axis=1) + np.abs(cw - cash_target))
    return drift


def _trades_frame(
    history: MarketHistory, trade_rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """One row per traded symbol and day, from the simulation's (day, idx, shares, costs) rows."""
    if trade_rows:
        day = np.concatenate([np.full(len(r[1]), r[0]) for r in trade_rows])
        idx = np.concatenate([r[1] for r in trade_rows])
        qty = np.concatenate([r[2] for r in trade_rows])
        cost = np.concatenate([r[3] for r in trade_rows])
    else:
        day = idx = np.zeros(0, dtype=np.int64)
        qty = cost = np.zeros(0)
    return pd.DataFrame(
        {
            "date": history.dates[day],
            "symbol": pd.Categorical.from_codes(idx, categories=pd.Index(list(history.symbols))),
            "side": pd.Categorical(np.where(qty > 0, "buy", "sell"), categories=["buy", "sell"]),
            "shares": np.abs(qty),
            "price": history.prices[day, idx],
            "cost": cost,
        },
        columns=TRADE_COLUMNS,
    )
