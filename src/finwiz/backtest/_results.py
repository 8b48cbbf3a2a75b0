"""What a backtest returns: one :class:`BacktestResult` per policy, and a :class:`BacktestComparison`.

Metrics (all computed from the simulated book, never from the policy's own claims):

* ``tracking_error``: annualised standard deviation (x sqrt N) of the period return difference
  against the target-weight portfolio rebalanced daily without costs (cash earning nothing);
  a day's return is ``(V_t - F_t) / V_{t-1} - 1`` with ``F_t`` that day's cash flow.
* ``mean_drift`` / ``max_drift``: half the sum of |w - w*| over assets and cash, averaged / at
  its worst over the days (0 = on target, 1 = nothing in common).
* ``turnover_per_year``: sum of |trade value| / V over the rebalances, per year.
* ``costs``, ``costs_per_year`` (currency) and ``costs_bp_per_year`` (per year, over the mean value).
* ``trades``, ``rebalances``, ``failed_rebalances``, ``final_value``, ``total_return``,
  ``annual_return``, ``years`` (periods / N: the index's span in years by default).
* ``volatility``: ``std(r) x sqrt(N)``, the annualised standard deviation (``ddof=1``) of the
  period returns ``r_t = (V_t - F_t) / V_{t-1} - 1`` (``F_t`` the period's cash flow, so a deposit
  is not a gain), with ``N`` periods per year (``periods_per_year``: the backtest's parameter, else
  the price index's own frequency, its observations per 365.25 days: about 252 for trading days,
  52 for weeks, 12 for months).
* ``max_drawdown``: the largest fall from a peak of the flow-adjusted wealth ``W_t = prod(1 + r)``,
  ``max_t (1 - W_t / max_{s<=t} W_s)``, as a positive fraction (0: never below a previous high).
* ``sharpe``: ``(mean(r) - rf / N) / std(r) x sqrt(N)`` with ``rf`` the annual risk-free rate
  (``risk_free_rate``, default 0); NaN when the returns do not vary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finwiz.errors import ConfigurationError
from finwiz.schemas import CASH

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["TRADE_COLUMNS", "BacktestComparison", "BacktestResult"]

TRADE_COLUMNS = ["date", "symbol", "side", "shares", "price", "cost"]
REBALANCE_COLUMNS = ["trigger", "status", "reason", "trades", "turnover", "cost", "value_before", "seconds"]
TRADING_DAYS = 252


def periods_per_year(index: pd.Index) -> float:
    """Observations of ``index`` (dates) per 365.25 days: ~252 for trading days, 12 for months
    (:data:`TRADING_DAYS` when it spans less than a day)."""
    if len(index) < 2:
        return float(TRADING_DAYS)
    days = (index[-1] - index[0]) / pd.Timedelta(days=1)
    return (len(index) - 1) / (days / 365.25) if days > 0 else float(TRADING_DAYS)


def _growth(value: float, invested: float, years: float) -> tuple[float, float]:
    """The total and annual return of ``invested`` grown to ``value`` over ``years`` (NaN when
    nothing was invested, or the annual one of a book worth nothing)."""
    if invested <= 0:
        return float("nan"), float("nan")
    annual = (value / invested) ** (1 / years) - 1.0 if value > 0 else float("nan")
    return value / invested - 1.0, float(annual)


@dataclass(eq=False)
class BacktestResult:
    """One policy played out over the price history.

    ``values`` (total value after each day's flows and trades, at the close), ``cash``,
    ``cash_flows``, ``trades`` (columns ``date, symbol, side, shares, price, cost``; ``shares`` > 0,
    ``side`` ``buy``/``sell``), ``rebalances`` (one row per day the policy fired or cash had to be
    raised: trigger, status ``ok``/``failed``, reason, trades, turnover, cost, value before,
    seconds), ``metrics`` (a Series, see the module docstring), ``weights`` and ``holdings``
    (daily DataFrames, computed on first use).

    A taxable account (``initial.tax`` set) also has ``taxes`` (one row per calendar year, index
    ``year``: short- and long-term gains and losses, losses harvested, wash-sale disallowed losses,
    carry-in, the tax by the netting rule, carry-forward, what was paid from cash and when; the
    last year is owed, not paid), ``lot_sales`` (one row per lot relieved: date, symbol, lot_id,
    shares, cost_basis, acquired, price, realized_gain, term, wash_sale_disallowed) and ``lots``
    (the open lots at the end); ``metrics`` then adds ``taxes_paid``, ``taxes_owed``,
    ``losses_harvested``, ``wash_sales``, ``after_tax_value`` (the final value less the tax owed),
    ``after_tax_return``, ``after_tax_annual_return``, ``liquidation_value`` (every remaining gain
    realised and taxed on the last day, transaction costs of the sale left out) and
    ``liquidation_annual_return``.
    """

    name: str
    policy: str
    values: pd.Series
    cash: pd.Series
    cash_flows: pd.Series
    trades: pd.DataFrame
    rebalances: pd.DataFrame
    target: pd.Series
    drift: pd.Series
    active_returns: pd.Series
    segment_starts: np.ndarray = field(repr=False)
    segment_shares: np.ndarray = field(repr=False)
    prices: pd.DataFrame | None = field(default=None, repr=False)
    periods_per_year: float | None = None
    risk_free_rate: float = 0.0
    taxes: pd.DataFrame | None = field(default=None, repr=False)
    lot_sales: pd.DataFrame | None = field(default=None, repr=False)
    lots: pd.DataFrame | None = field(default=None, repr=False)
    tax_metrics: dict[str, Any] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # The price table is the backtest's, and large (days x assets): a result sent back from a
        # worker leaves it behind and the comparison re-attaches its own.
        state = dict(self.__dict__)
        state["prices"] = None
        for cached in ("weights", "holdings", "metrics"):
            state.pop(cached, None)
        return state

    @cached_property
    def holdings(self) -> pd.DataFrame:
        """Shares held at each day's close (after its trades), one column per symbol."""
        dates = self.values.index
        which = np.searchsorted(self.segment_starts, np.arange(len(dates)), side="right") - 1
        return pd.DataFrame(self.segment_shares[which], index=dates, columns=self.target.index[:-1])

    @cached_property
    def weights(self) -> pd.DataFrame:
        """Daily weights (fractions of that day's value) of every symbol, and ``CASH`` last."""
        if self.prices is None:
            raise ConfigurationError("this result has no price table attached (it was unpickled); weights need it")
        positions = self.holdings.to_numpy() * self.prices.to_numpy()
        value = self.values.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):  # a book emptied by withdrawals is worth 0
            weights = np.column_stack([positions / value[:, None], self.cash.to_numpy() / value])
        return pd.DataFrame(weights, index=self.values.index, columns=[*self.holdings.columns, CASH])

    @cached_property
    def metrics(self) -> pd.Series:
        """Tracking error, drift, turnover, costs, trades and value figures (see the module docstring)."""
        values = self.values.to_numpy()
        per_year = self._per_year()
        years = max(len(values) - 1, 1) / per_year
        cost = float(self.trades["cost"].sum())
        ok = self.rebalances["status"] == "ok"
        invested = float(values[0] + self.cash_flows.sum())
        active = self.active_returns.to_numpy()[1:]
        total, annual = _growth(float(values[-1]), invested, years)
        out = {
            "final_value": float(values[-1]),
            "total_return": total,
            "annual_return": annual,
            "tracking_error": float(active.std(ddof=1) * np.sqrt(per_year)) if len(active) > 1 else 0.0,
            "mean_drift": float(self.drift.mean()),
            "max_drift": float(self.drift.max()),
            "turnover_per_year": float(self.rebalances["turnover"].sum()) / years,
            "costs": cost,
            "costs_per_year": cost / years,
            "costs_bp_per_year": cost / years / float(values.mean()) * 1e4,
            "trades": len(self.trades),
            "rebalances": int(ok.sum()),
            "failed_rebalances": int((~ok).sum()),
            "years": years,
            **self._risk_and_return(),
        }
        if self.tax_metrics:  # a taxable account: the ledger's figures (see _lots), the same returns
            after_tax = _growth(self.tax_metrics["after_tax_value"], invested, years)
            liquidation = _growth(self.tax_metrics["liquidation_value"], invested, years)
            out.update(self.tax_metrics)
            out.update(after_tax_return=after_tax[0], after_tax_annual_return=after_tax[1])
            out.update(liquidation_annual_return=liquidation[1])
        return pd.Series(out, name=self.name, dtype=object)

    def _per_year(self) -> float:
        """Return periods per year: the backtest's ``periods_per_year``, else the index's own."""
        return self.periods_per_year or periods_per_year(self.values.index)

    def _risk_and_return(self) -> dict[str, float]:
        """Volatility, maximum drawdown and Sharpe ratio (formulas in the module docstring)."""
        values = self.values.to_numpy()
        flows = self.cash_flows.to_numpy()
        per_year = self._per_year()
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = (values[1:] - flows[1:]) / values[:-1] - 1.0
        returns = returns[np.isfinite(returns)]  # a book emptied by withdrawals has no return
        if len(returns) < 2:
            return {"volatility": float("nan"), "max_drawdown": 0.0, "sharpe": float("nan")}
        spread = float(returns.std(ddof=1))
        wealth = np.cumprod(1.0 + returns)
        peaks = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
        excess = float(returns.mean()) - self.risk_free_rate / per_year
        return {
            "volatility": spread * float(np.sqrt(per_year)),
            "max_drawdown": float(max(0.0, (1.0 - wealth / peaks).max())),
            "sharpe": excess / spread * float(np.sqrt(per_year)) if spread > 0 else float("nan"),
        }

    @property
    def failures(self) -> pd.DataFrame:
        """The rebalances that failed, with their reason."""
        return self.rebalances[self.rebalances["status"] != "ok"]

    def to_frame(self) -> pd.DataFrame:
        """One row per day: value, cash, cash flow, drift, active return, day's and cumulative cost."""
        daily_cost = self.trades.groupby("date")["cost"].sum().reindex(self.values.index, fill_value=0.0)
        return pd.DataFrame(
            {
                "value": self.values,
                "cash": self.cash,
                "cash_flow": self.cash_flows,
                "drift": self.drift,
                "active_return": self.active_returns,
                "cost": daily_cost,
                "cumulative_cost": daily_cost.cumsum(),
            }
        )

    def plot(self) -> Figure:
        """Value, drift and rolling tracking error, and cumulative cost over time (matplotlib)."""
        from finwiz.reporting._backtest_report import result_figure

        return result_figure(self.name, self.to_frame())

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"BacktestResult({self.name!r}, final_value={m['final_value']:,.2f}, "
            f"tracking_error={m['tracking_error']:.4%}, costs={m['costs']:,.2f}, trades={m['trades']}, "
            f"rebalances={m['rebalances']}, failed={m['failed_rebalances']})"
        )


@dataclass(eq=False)
class BacktestComparison:
    """Several policies over the same history: ``results`` by name (in the order given),
    ``failures`` (name -> error message, for a policy that could not run at all), ``metrics``
    (one row per policy), ``plot()`` and a self-contained HTML report (``to_html``, ``write_html``)."""

    results: dict[str, BacktestResult]
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    executor: str = "local"
    workers: int = 1

    def __getitem__(self, name: str) -> BacktestResult:
        return self.results[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per policy (index: its name), the columns of :attr:`BacktestResult.metrics`."""
        rows = {name: result.metrics for name, result in self.results.items()}
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "policy"
        return frame.infer_objects()

    def plot(self) -> Figure:
        """The policies' values on common axes, and costs (bp/year) against tracking error."""
        from finwiz.reporting._backtest_report import comparison_figure

        return comparison_figure(self._values(), self.metrics)

    def _values(self) -> Mapping[str, pd.Series]:
        return {name: result.values for name, result in self.results.items()}

    def to_html(self, title: str = "Backtest comparison") -> str:
        """The comparison as one self-contained HTML page (charts embedded as PNG, inline CSS)."""
        from finwiz.reporting._backtest_report import backtest_report_html

        return backtest_report_html(
            title,
            self.metrics,
            self._values(),
            {name: result.to_frame() for name, result in self.results.items()},
            {name: result.policy for name, result in self.results.items()},
            {**self.failures, **self._failed_rebalances()},
        )

    def _failed_rebalances(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, result in self.results.items():
            failed = result.failures
            if len(failed):
                first = failed.iloc[0]
                out[name] = f"{len(failed)} failed rebalance(s); first on {failed.index[0].date()}: {first['reason']}"
        return out

    def write_html(self, path: str | Path, title: str = "Backtest comparison") -> Path:
        """Write :meth:`to_html` to ``path``; an unwritable path raises ConfigurationError naming it."""
        target = Path(path)
        try:
            target.write_text(self.to_html(title), encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot write the report to {str(target)!r}: {exc.strerror or exc}") from exc
        return target

    def __repr__(self) -> str:
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return f"BacktestComparison({len(self.results)} policies{failed}, {self.seconds:.2f} s, {self.executor})"
