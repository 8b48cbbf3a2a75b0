"""No solver prints to the process's standard output (file descriptor 1, where C and C++ solvers
write), on the paths that call SCIP, HiGHS or OSQP outside the continuous solve: exact mode and the
surprises warnings' closest-portfolio solve."""

from __future__ import annotations

import pandas as pd
import pytest

from finwiz import RebalancingEngine
from finwiz.optimizer import TransactionCostTerm, TurnoverPenaltyTerm


def _exact_config(make_config, prices: pd.Series):  # type: ignore[no-untyped-def]
    return make_config(prices, value=60_000.0, seed=3, min_trade_size=300.0, max_position_weight=0.15)


def test_exact_mode_with_scip_prints_nothing(
    capfd: pytest.CaptureFixture[str], sample_prices: pd.Series, make_config
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pyscipopt")
    prices = sample_prices.iloc[:8]
    engine = RebalancingEngine()
    capfd.readouterr()
    result = engine.rebalance(_exact_config(make_config, prices), prices, exact=True)
    assert result.rounding == "exact_mip"
    assert capfd.readouterr().out == ""


def test_exact_mode_with_highs_prints_nothing(
    capfd: pytest.CaptureFixture[str], sample_prices: pd.Series, make_config
) -> None:  # type: ignore[no-untyped-def]
    prices = sample_prices.iloc[:8]
    engine = RebalancingEngine()
    # A linear objective (costs and an L1 turnover, no quadratic tracking) sends exact mode to HiGHS.
    engine.strategies["linear"] = [TransactionCostTerm(), TurnoverPenaltyTerm(weight=1e-2)]
    config = _exact_config(make_config, prices).model_copy(update={"method": "linear"})
    capfd.readouterr()
    result = engine.rebalance(config, prices, exact=True)
    assert capfd.readouterr().out == ""
    assert result.rounding == "exact_mip"


def test_the_closest_portfolio_warning_prints_nothing(
    capfd: pytest.CaptureFixture[str], sample_prices: pd.Series, make_config
) -> None:  # type: ignore[no-untyped-def]
    prices = sample_prices.iloc[:8]
    config = make_config(prices, value=60_000.0, seed=4, max_position_weight=0.05)
    capfd.readouterr()
    result = RebalancingEngine().rebalance(config, prices)
    assert any("closest portfolio the caps allow" in w for w in result.warnings)
    assert capfd.readouterr().out == ""
