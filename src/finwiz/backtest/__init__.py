"""Backtests: rebalancing policies played out over a price history, whole shares, costs and flows.

::

    from finwiz.backtest import Backtest, BandRebalance, CalendarRebalance, OptimizedRebalance

    backtest = Backtest(prices, initial=config, volumes=volumes, cash_flows=flows)
    result = backtest.run(CalendarRebalance("M"))
    comparison = backtest.compare({"monthly": CalendarRebalance("M"), "band 2%": BandRebalance(0.02)})
    comparison.metrics  # one row per policy: tracking error, drift, turnover, costs, trades
"""

from finwiz.backtest._backtest import Backtest
from finwiz.backtest._policies import (
    BandRebalance,
    CalendarRebalance,
    Decision,
    NeverRebalance,
    OptimizedRebalance,
    Policy,
    RebalanceContext,
    RebalancePolicy,
    trade_to_target,
)
from finwiz.backtest._results import TRADE_COLUMNS, BacktestComparison, BacktestResult
from finwiz.errors import PolicyError

__all__ = [
    "TRADE_COLUMNS",
    "Backtest",
    "BacktestComparison",
    "BacktestResult",
    "BandRebalance",
    "CalendarRebalance",
    "Decision",
    "NeverRebalance",
    "OptimizedRebalance",
    "Policy",
    "PolicyError",
    "RebalanceContext",
    "RebalancePolicy",
    "trade_to_target",
]
