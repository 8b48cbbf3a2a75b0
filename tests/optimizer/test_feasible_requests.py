"""Requests some whole-share trades can meet are answered, never failed: a small long position
with a short target and a minimum trade above its size."""

from __future__ import annotations

import pandas as pd
import pytest

from finwiz import PortfolioConfiguration, RebalancingEngine

PRICES = pd.Series({"MAS": 6.0, "BBB": 50.0, "CCC": 80.0})


@pytest.mark.parametrize("held", [11, 16, 20])
@pytest.mark.parametrize("minimum", [150.0, 500.0])
@pytest.mark.parametrize("target", [-0.01, -0.002])
def test_a_small_long_position_with_a_short_target_crosses_sides(held: int, minimum: float, target: float) -> None:
    config = PortfolioConfiguration(
        holdings=[
            {"symbol": "MAS", "shares": held},
            {"symbol": "BBB", "shares": 100},
            {"symbol": "CCC", "shares": 50},
        ],
        target_weights={"MAS": target, "BBB": 0.55, "CCC": 0.4},
        cash=2000.0,
        tolerance=0.0,
        allow_short=True,
        min_trade_size=minimum,
    )
    # Before: "SolverError: final trades breach side_change[MAS] by 16 shares" (the re-solve that
    # fixed MAS as too small to trade kept it long; the rounding then had no trade to offer).
    result = RebalancingEngine().rebalance(config, PRICES)
    trades = {t.symbol: t.signed_shares for t in result.trades}
    assert held + trades.get("MAS", 0.0) <= 0  # short, as its target says (or out)
    for symbol, q in trades.items():
        assert abs(q) * PRICES[symbol] >= minimum
    costs = 0.001 * sum(abs(q) * PRICES[s] for s, q in trades.items())
    assert 2000.0 - sum(q * PRICES[s] for s, q in trades.items()) - costs >= -1e-9
    assert result.is_compliant
