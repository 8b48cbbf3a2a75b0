"""Market impact with binding caps solves (fit and power cone) and keeps every limit; the capped
rows read the impact through one epigraph scalar, not every asset's cone each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz import PortfolioConfiguration
from finwiz.optimizer import (
    MarketImpactModel,
    MarketImpactTerm,
    RebalancingEngine,
    TargetTrackingTerm,
    TradeCountTerm,
    TransactionCostTerm,
)


def _book(n: int, seed: int, value: float, exact: bool) -> tuple[PortfolioConfiguration, pd.Series, MarketImpactModel]:
    """A drifted equal-weight book of ``n`` generated assets, 20 % sector caps and a position cap
    of 1.5x the equal weight (binding: the drift puts several names above it)."""
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(n)]
    prices = pd.Series(rng.uniform(10, 300, n), index=symbols)
    adv = pd.Series(rng.lognormal(np.log(5e7), 1.0, n), index=symbols)
    volatility = pd.Series(rng.uniform(0.01, 0.04, n), index=symbols)
    shares = np.floor(rng.dirichlet(np.ones(n)) * 0.97 * value / prices.to_numpy())
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict.fromkeys(symbols, 0.97 / n),
        cash=value - float(shares @ prices.to_numpy()),
        tolerance=0.0,
        sectors={s: f"X{i % 8}" for i, s in enumerate(symbols)},
        max_sector_weight=0.2,
        max_position_weight=1.5 / n,
        method="impact" if exact else "minimize_trades",
    )
    return config, prices, MarketImpactModel(adv, volatility)


@pytest.mark.parametrize("exact", [False, True], ids=["fit", "power_cone"])
def test_impact_with_a_binding_position_cap_solves_and_keeps_the_cap(exact: bool) -> None:
    # Seed 0, 150 assets, $200M: "CLARABEL: status optimal_inaccurate; OSQP cannot solve" (fit)
    # before the capped rows read the impact through one scalar.
    config, prices, model = _book(150, 0, 200_000_000.0, exact)
    engine = RebalancingEngine()
    engine.strategies["impact"] = [
        TargetTrackingTerm(),
        TransactionCostTerm(),
        TradeCountTerm(),
        MarketImpactTerm(exact),
    ]
    result = engine.rebalance(config, prices, market_impact=model)
    held = config.shares_by_symbol()
    value = sum(q * float(prices[s]) for s, q in held.items()) + config.cash
    assert any(q * float(prices[s]) > 1.5 / 150 * value for s, q in held.items())  # the cap binds
    # From shares x prices alone: positions, cash after the impact the model charges, the cap.
    k = model.coefficient * model.volatility / np.sqrt(model.daily_dollar_volume)
    trades = {t.symbol: t.signed_shares for t in result.trades}
    traded = np.array([abs(trades.get(s, 0.0)) * float(prices[s]) for s in prices.index])
    costs = 0.001 * traded.sum() + float((k.reindex(prices.index).to_numpy() * traded**1.5).sum())
    cash = config.cash - sum(q * float(prices[s]) for s, q in trades.items()) - costs
    after = np.array([(held[s] + trades.get(s, 0.0)) * float(prices[s]) for s in prices.index])
    assert cash >= -1e-6
    assert (after / (after.sum() + cash)).max() <= 1.5 / 150 + 1e-9
    assert result.is_compliant
