"""Market impact end to end on the real 431-asset set: real daily dollar volumes and volatilities,
the default solver, whole shares; every trade's impact cost is the 3/2-power model applied to it
(to the cent), and impact shrinks the largest trades against the same request without it.

    pytest benchmarks/test_bench_impact.py --shared-data=../shared/data
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    clear_cache,
)

VALUE = 200_000_000.0


@pytest.fixture(scope="module")
def book(request: pytest.FixtureRequest) -> tuple[PortfolioConfiguration, pd.Series, MarketImpactModel]:
    folder = Path(request.config.getoption("--shared-data"))
    returns_path, volumes_path = folder / "sp500_431_returns.csv.gz", folder / "sp500_431_volumes.csv.gz"
    if not (returns_path.exists() and volumes_path.exists()):
        pytest.skip(f"benchmark data not found in {folder} (pass --shared-data=FOLDER)")
    returns = pd.read_csv(returns_path, index_col=0, parse_dates=True).drop(columns=["USDOLLAR"]).fillna(0.0)
    volumes = pd.read_csv(volumes_path, index_col=0, parse_dates=True)
    symbols = list(returns.columns)
    prices = (1 + returns).cumprod().iloc[-1] * 50.0
    adv = volumes[symbols].iloc[-60:].mean()  # average daily dollar volume, last 60 days
    sigma = returns[symbols].iloc[-250:].std()  # daily volatility, last year
    rng = np.random.default_rng(0)
    n = len(symbols)
    drifted = rng.dirichlet(np.ones(n)) * 0.97
    shares = np.floor(drifted * VALUE / prices.to_numpy())
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict.fromkeys(symbols, 0.97 / n),
        cash=VALUE - float(shares @ prices.to_numpy()),
        tolerance=0.0,
        method="minimize_trades",
    )
    return config, prices, MarketImpactModel(adv, sigma)


@pytest.mark.parametrize("exact", [False, True], ids=["fit", "power_cone"])
def test_market_impact_on_the_431_set(benchmark: Any, book: Any, exact: bool) -> None:
    config, prices, model = book
    engine = RebalancingEngine()
    engine.strategies["impact"] = [
        TargetTrackingTerm(),
        TransactionCostTerm(),
        TradeCountTerm(),
        MarketImpactTerm(exact=exact),
    ]
    request = config.model_copy(update={"method": "impact"})
    without = engine.rebalance(config, prices)
    clear_cache()
    benchmark.group = "impact-431"
    benchmark.extra_info.update(kind="power_cone" if exact else "fit", n=len(prices))
    result = benchmark.pedantic(
        engine.rebalance, args=(request, prices), kwargs={"market_impact": model}, rounds=3, warmup_rounds=1
    )
    assert result.is_compliant
    k = model.coefficient * model.volatility / np.sqrt(model.daily_dollar_volume)
    for trade in result.trades:
        assert trade.market_impact_cost == pytest.approx(float(k[trade.symbol]) * trade.trade_value**1.5, abs=0.005)
    largest = max(t.trade_value for t in result.trades)
    assert largest < max(t.trade_value for t in without.trades)
    benchmark.extra_info.update(
        impact_cost=result.market_impact_costs,
        largest_trade=largest,
        largest_trade_without_impact=max(t.trade_value for t in without.trades),
        trades=len(result.trades),
    )
