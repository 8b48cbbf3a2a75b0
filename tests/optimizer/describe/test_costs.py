"""One cost law: the engine's trades, the backtest's and the model's unit price trades alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.backtest._policies import RebalanceContext
from finwiz.optimizer import BudgetTerm, MarketImpactModel, MarketImpactTerm
from finwiz.optimizer.describe._costs import CostModel, square_root_impact
from finwiz.optimizer.verify._compliance import trade_costs, trade_scalars
from tests.optimizer.describe.test_terms import evaluate, make_data

RATES = np.array([0.001, 0.002, 0.0005])
SIGMA = np.array([0.02, 0.01, 0.03])
VOLUME = np.array([5e6, 2e7, 1e6])
TRADES = np.array([12_000.0, -40_000.0, 3_000.0])


def test_the_law_is_the_same_in_currency_and_in_the_models_unit() -> None:
    written = RATES * np.abs(TRADES) + 0.7 * SIGMA * np.abs(TRADES) ** 1.5 / np.sqrt(VOLUME)
    currency = CostModel(RATES, square_root_impact(0.7, SIGMA, VOLUME))
    ref = 250_000.0
    model_unit = CostModel(RATES, square_root_impact(0.7, SIGMA, VOLUME, ref), ref)
    np.testing.assert_allclose(currency(TRADES), written, rtol=1e-12)
    np.testing.assert_allclose(model_unit(TRADES), written, rtol=1e-12)
    linear, impact = currency.split(TRADES[:2], owner=np.array([2, 0]))
    np.testing.assert_allclose(linear + impact, CostModel(RATES[[2, 0]], currency.impact[[2, 0]])(TRADES[:2]))
    np.testing.assert_array_equal(CostModel(RATES)(TRADES), RATES * np.abs(TRADES))


def test_the_backtest_prices_the_engines_trades_at_the_engines_cost() -> None:
    symbols = ["A", "B", "C"]
    prices = pd.Series([50.0, 120.0, 30.0], index=symbols)
    impact = MarketImpactModel(pd.Series(VOLUME, index=symbols), pd.Series(SIGMA, index=symbols), coefficient=0.7)
    config = PortfolioConfiguration(
        holdings=[
            Holding(symbol="A", shares=2000.0),
            Holding(symbol="B", shares=100.0),
            Holding(symbol="C", shares=50.0),
        ],
        target_weights={"A": 0.3, "B": 0.4, "C": 0.28},
        cash=10_000.0,
        tolerance=0.0,
        method="minimize_costs",
        transaction_cost_rates=dict(zip(symbols, RATES.tolist(), strict=True)),
    )
    result = rebalance(config, prices, market_impact=impact)
    values = np.array([sum(t.trade_value for t in result.trades if t.symbol == s) for s in symbols])
    assert np.count_nonzero(values) >= 2
    ctx = RebalanceContext(
        date=pd.Timestamp("2024-01-02"),
        day=0,
        symbols=tuple(symbols),
        prices=prices.to_numpy(),
        shares=np.array([2000.0, 100.0, 50.0]),
        cash=10_000.0,
        cash_flow=0.0,
        config=config,
        target=np.array([0.3, 0.4, 0.28]),
        cash_target=0.02,
        cost_rates=RATES,
        impact=square_root_impact(0.7, SIGMA, VOLUME),
    )
    engine = sum(t.total_estimated_cost for t in result.trades)
    assert float(ctx.costs(values).sum()) == pytest.approx(engine, abs=0.005)
    assert engine > float((RATES * np.abs(values)).sum()) + 0.01  # impact is charged


_SYMBOLS = ["AAA", "BBB", "CCC"]


@settings(max_examples=25, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 0.02), min_size=3, max_size=3),
    volumes=st.lists(st.floats(1e5, 1e8), min_size=3, max_size=3),
    coefficient=st.floats(0.0, 2.0),
    trades=st.lists(st.floats(-30_000.0, 30_000.0), min_size=3, max_size=3),
)
def test_the_models_cost_is_the_cost_model_and_compliances(
    rates: list[float], volumes: list[float], coefficient: float, trades: list[float]
) -> None:
    """The cost the model's description states (the budget's rates and the exact impact cone, as
    the cvxpy problem writes them) at random trades is the request's ``CostModel`` and compliance's."""
    impact = MarketImpactModel(
        pd.Series(volumes, index=_SYMBOLS), pd.Series(0.02, index=_SYMBOLS), coefficient=coefficient
    )
    data = make_data(transaction_cost_rates=dict(zip(_SYMBOLS, rates, strict=True)), market_impact=impact)
    values = np.array(trades)
    u = values / data.ref_value
    buy, sell = np.maximum(u, 0.0), np.maximum(-u, 0.0)
    stated = evaluate(BudgetTerm(), data, buy, sell).cost + evaluate(MarketImpactTerm(exact=True), data, buy, sell).cost
    model = stated * data.ref_value
    # The law written out, independently of any finwiz code.
    written = float(np.sum(np.array(rates) * np.abs(values)))
    written += float(np.sum(coefficient * 0.02 * np.abs(values) ** 1.5 / np.sqrt(volumes)))
    assert model == pytest.approx(written, rel=1e-6, abs=1e-6)
    assert float(data.costs(values).sum()) == pytest.approx(model, rel=1e-6, abs=1e-6)
    linear, impacts = trade_costs(data, values)
    assert float((linear + impacts).sum()) == pytest.approx(model, rel=1e-6, abs=1e-6)
    assert float(trade_scalars(data, values)[:, 0].sum()) * data.ref_value == pytest.approx(model, rel=1e-6, abs=1e-6)
