"""``ExposureTrackingTerm``: tracking the target's look-through exposures instead of its symbols.
A held fund that may not be sold and the stocks it holds substitute; the optimum's exposures and
objective equal an independent plain-cvxpy model's."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from finwiz import ConfigurationError, Holding, PortfolioConfiguration
from finwiz.optimizer import (
    ExposureTrackingTerm,
    RebalancingEngine,
    TargetTrackingTerm,
    TransactionCostTerm,
)

SYMBOLS = ["FUND", "AAA", "BBB", "CCC"]
PRICES = {"FUND": 100.0, "AAA": 50.0, "BBB": 40.0, "CCC": 20.0}
# FUND holds half AAA-like tech, half BBB-like energy; CCC is bonds.
TABLE = {
    "FUND": {"Tech": 0.5, "Energy": 0.5},
    "AAA": {"Tech": 1.0},
    "BBB": {"Energy": 1.0},
    "CCC": {"Bonds": 1.0},
}
NAMES = ("Bonds", "Energy", "Tech")


def _config() -> PortfolioConfiguration:
    # The fund is 60 % of the book and may not be sold; the targets ask for stocks, not the fund.
    return PortfolioConfiguration(
        holdings=[Holding(symbol="FUND", shares=600), Holding(symbol="CCC", shares=1000)],
        target_weights={"FUND": 0.0, "AAA": 0.45, "BBB": 0.15, "CCC": 0.4},
        cash=20_000.0,
        exposures=TABLE,
        no_sell=["FUND"],
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=True,
        method="lookthrough",
    )


def _engine(*terms: object) -> RebalancingEngine:
    engine = RebalancingEngine()
    engine.strategies["lookthrough"] = list(terms)  # type: ignore[assignment]
    return engine


def _reference(config: PortfolioConfiguration) -> tuple[np.ndarray, float]:
    """``min ||E (w - t)||^2 + (cash - cash_t)^2``, long-only, cash >= 0, the fund not sold."""
    held = {h.symbol: h.shares for h in config.holdings}
    value = np.array([held.get(s, 0.0) * PRICES[s] for s in SYMBOLS])
    ref = value.sum() + config.cash
    x0 = value / ref
    t = np.array([config.target_weights.get(s, 0.0) for s in SYMBOLS])
    e = np.array([[TABLE[s].get(k, 0.0) for s in SYMBOLS] for k in NAMES])
    w = cp.Variable(len(SYMBOLS))
    cash = config.cash / ref - cp.sum(w - x0)
    objective = cp.sum_squares(e @ (w - t)) + cp.square(cash - (1 - t.sum()))
    problem = cp.Problem(cp.Minimize(objective), [w >= 0, cash >= 0, w[0] >= x0[0]])
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return e @ np.asarray(w.value), float(problem.value)


def _exposures_after(config: PortfolioConfiguration, result: object) -> np.ndarray:
    held = {h.symbol: h.shares for h in config.holdings}
    ref = sum(held.get(s, 0.0) * PRICES[s] for s in SYMBOLS) + config.cash
    w = np.array([result.post_trade_holdings[s] * PRICES[s] for s in SYMBOLS]) / ref  # type: ignore[attr-defined]
    e = np.array([[TABLE[s].get(k, 0.0) for s in SYMBOLS] for k in NAMES])
    return e @ w


def test_exposure_tracking_matches_an_independent_model_and_lets_the_fund_stand_in() -> None:
    config = _config()
    result = _engine(ExposureTrackingTerm(), TransactionCostTerm()).rebalance(config, PRICES)
    want, best = _reference(config)
    got = _exposures_after(config, result)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert result.objective_value == pytest.approx(best, abs=1e-6)
    # The fund (not sold) gives 30 % Tech and 30 % Energy: the optimum buys Tech stock only to
    # reach the target's 45 % Tech as closely as cash allows, and no Energy stock (15 % asked).
    assert result.post_trade_holdings["BBB"] == 0.0
    assert result.post_trade_holdings["AAA"] > 0.0
    # Tracking symbols instead leaves the exposures off.
    by_symbol = _engine(TargetTrackingTerm(), TransactionCostTerm()).rebalance(config, PRICES)
    assert np.abs(_exposures_after(config, by_symbol) - want).max() > 0.05


def test_an_unknown_exposure_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Healthcare"):
        _engine(ExposureTrackingTerm(names=("Healthcare",)), TransactionCostTerm()).rebalance(_config(), PRICES)
