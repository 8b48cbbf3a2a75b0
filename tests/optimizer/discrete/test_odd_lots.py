"""Lot sizes: trades are whole lots, except that an odd lot below the lot size may be sold out."""

from __future__ import annotations

import pytest

from finwiz import PortfolioConfiguration, TradeAction, rebalance


@pytest.mark.parametrize("held", [7, 17])
def test_an_odd_lot_may_be_sold_out(held: int) -> None:
    config = PortfolioConfiguration(
        holdings=[{"symbol": "RAI", "shares": held}, {"symbol": "KO", "shares": 100}],
        target_weights={"KO": 0.99},
        lot_sizes={"RAI": 10, "KO": 10},
        cash=0.0,
        tolerance=0.0,
        min_trade_size=0.0,
    )
    result = rebalance(config, {"RAI": 50.0, "KO": 60.0})
    (sale,) = [t for t in result.trades if t.symbol == "RAI"]
    # Selling out (7 of a lot of 10, or 17 = 1 lot + 7) is the one trade that is not whole lots.
    assert sale.action is TradeAction.SELL
    assert sale.shares == held
    assert result.post_trade_holdings["RAI"] == 0.0
    assert all(t.shares % 10 == 0 for t in result.trades if t.symbol != "RAI")
