"""Limits that only whole shares break: a clear error saying so, and by how much each limit would
have to give (issue 11, bad input)."""

from __future__ import annotations

import pytest

from finwiz import Holding, InfeasibleRebalanceError, PortfolioConfiguration, rebalance


def _request(**overrides: object) -> PortfolioConfiguration:
    """Two $1,000 shares, no cash, a $500 withdrawal and a 30 % turnover cap: fractional shares sell
    $500 (25 % of the $2,000 book); one whole share is $1,000, 50 %."""
    fields: dict[str, object] = {
        "holdings": [Holding(symbol="A", shares=1.0), Holding(symbol="B", shares=1.0)],
        "target_weights": {"A": 0.5, "B": 0.5},
        "cash": 0.0,
        "cash_flow": -500.0,
        "max_turnover": 0.3,
        "tolerance": 0.0,
        "method": "minimize_costs",
        "transaction_cost_rate": 0.0,
        "allow_fractional_shares": False,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


PRICES = {"A": 1000.0, "B": 1000.0}


def test_fractional_shares_keep_every_limit() -> None:
    result = rebalance(_request(allow_fractional_shares=True), PRICES)
    assert result.is_compliant
    assert sum(t.trade_value for t in result.trades) == pytest.approx(500.0, abs=0.01)


def test_only_whole_shares_break_the_limits_and_the_error_says_how_much_each_must_give() -> None:
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(_request(), PRICES)
    error = caught.value
    assert "only whole shares" in str(error)
    # Selling one share is the cheapest way out: the turnover cap would have to let $1,000 trade
    # instead of $600 (30 % of $2,000), i.e. give $400, a fifth of the value before trading.
    # Selling nothing would leave the $500 withdrawal unpaid: a larger give.
    by_name = {c.name: c for c in error.conflicts}
    assert set(by_name) == {"turnover_cap"}
    assert by_name["turnover_cap"].dollars == pytest.approx(400.0, rel=1e-6)
    assert by_name["turnover_cap"].relaxation == pytest.approx(0.2, rel=1e-6)


def test_a_position_smaller_than_its_lot_is_said_to_sell_out_whole_only() -> None:
    """30 shares of B, lots of 100, B overweight: it cannot be trimmed, only sold out; the result
    says so instead of silently leaving it."""
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=10.0), Holding(symbol="B", shares=30.0)],
        target_weights={"A": 0.5, "B": 0.5},
        cash=0.0,
        tolerance=0.0,
        method="minimize_costs",
        allow_fractional_shares=False,
        lot_sizes={"B": 100.0},
    )
    result = rebalance(config, {"A": 100.0, "B": 100.0})
    assert any("B (30 held, lot 100)" in w for w in result.warnings), result.warnings
    b = next((t for t in result.trades if t.symbol == "B"), None)
    assert b is None or b.shares == 30.0  # untouched, or sold out whole
    # An underweight position smaller than its lot is not worth a word.
    underweight = config.model_copy(update={"target_weights": {"A": 0.2, "B": 0.8}})
    assert not any("smaller than their lot" in w for w in rebalance(underweight, {"A": 100.0, "B": 100.0}).warnings)
