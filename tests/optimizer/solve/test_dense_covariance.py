"""A dense covariance reaches the optimum of the dense problem, whichever form finwiz solves it in
(its few factors and a diagonal where it splits so, its exact root otherwise): checked against
plain cvxpy + Clarabel on the dense matrix itself."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import FactorModel, PortfolioConfiguration, rebalance
from finwiz.optimizer import RebalancingEngine, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import solve_terms

N = 60
RATE = 0.001
SECTOR_CAP = 0.3
TURNOVER_CAP = 0.25


def _covariance(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "diagonal":
        return np.diag(rng.uniform(1e-4, 4e-4, N))
    if kind == "factors":  # splits into 4 factors and a diagonal
        loadings = rng.normal(0, 0.012, (N, 4))
        return loadings @ loadings.T + np.diag(rng.uniform(1e-4, 4e-4, N))
    b = rng.normal(0, 0.012, (N, N))  # full rank: the exact root
    return b @ b.T / 4


def _config(rng: np.random.Generator, symbols: list[str], target: np.ndarray) -> PortfolioConfiguration:
    return PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, rng.integers(5, 80, N), strict=True)],
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        cash=3_000.0,
        method="risk_aware",
        tolerance=0.0,
        transaction_cost_rate=RATE,
        min_trade_size=0.0,
        sectors={s: f"S{i % 3}" for i, s in enumerate(symbols)},
        max_sector_weight=SECTOR_CAP,
        max_turnover=TURNOVER_CAP,
    )


def _plain(sigma: np.ndarray, x0: np.ndarray, cash0: float, target: np.ndarray, sectors: np.ndarray) -> cp.Problem:
    """min ||w-t||^2 + (1'w - 1't)^2 + (w-t)' Sigma (w-t) / mean(diag Sigma) + c over
    w = x0 + b - s, with the costs, the budget, the sector caps and the turnover cap."""
    w, b, s = cp.Variable(N), cp.Variable(N, nonneg=True), cp.Variable(N, nonneg=True)
    c = cp.Variable(nonneg=True)
    scale = float(np.trace(sigma) / N)
    objective = (
        cp.sum_squares(w - target)
        + cp.square(cp.sum(w) - target.sum())
        + cp.quad_form(w - target, cp.psd_wrap(sigma / scale))
        + c
    )
    constraints = [
        w == x0 + b - s,
        s <= x0,
        c >= RATE * cp.sum(b + s),
        cp.sum(b) - cp.sum(s) + c <= cash0,
        sectors @ w + SECTOR_CAP * c <= SECTOR_CAP,
        cp.sum(b + s) <= TURNOVER_CAP,
    ]
    return cp.Problem(cp.Minimize(objective), constraints)


@pytest.mark.parametrize("kind", ["factors", "full_rank", "diagonal"])
def test_the_continuous_optimum_is_that_of_the_dense_problem(kind: str) -> None:
    rng = np.random.default_rng(11)
    symbols = [f"A{i:02d}" for i in range(N)]
    sigma = _covariance(kind, rng)
    covariance = pd.DataFrame(sigma, index=symbols, columns=symbols)
    target = rng.dirichlet(np.ones(N)) * 0.97
    config = _config(rng, symbols, target)
    prices = dict(zip(symbols, rng.uniform(10, 200, N).tolist(), strict=True))
    data = build_problem_data(config, prices, covariance=covariance)
    assert data.factor_root is not None
    assert data.factor_root.shape[1] == {"factors": 4, "full_rank": N, "diagonal": 0}[kind]
    strategy = RebalancingEngine().strategies[config.method]
    terms = [t for t in [*strategy.terms(data), *constraint_terms()] if t.applies(data)]
    got = solve_terms(Model.of(terms, data))

    sectors = np.array([[i % 3 == j for i in range(N)] for j in range(3)], dtype=float)
    plain = _plain(sigma, data.x0, data.cash0, data.target, sectors)
    plain.solve(solver="CLARABEL")
    assert plain.status == cp.OPTIMAL
    buy, sell = got.buy, got.sell
    w, cost = data.x0 + buy - sell, float(RATE * (buy + sell).sum())
    # finwiz's point is feasible in the plain problem, and its plain objective is the optimum's.
    assert (sell <= data.x0 + 1e-9).all()
    assert (np.minimum(buy, sell) >= -1e-9).all()
    assert buy.sum() - sell.sum() + cost <= data.cash0 + 1e-8
    assert (sectors @ w + SECTOR_CAP * cost <= SECTOR_CAP + 1e-8).all()
    assert (buy + sell).sum() <= TURNOVER_CAP + 1e-8
    scale = float(np.trace(sigma) / N)
    gap = w - data.target
    at_finwiz = gap @ gap + (w.sum() - data.target.sum()) ** 2 + gap @ sigma @ gap / scale + cost
    assert plain.value is not None
    assert at_finwiz == pytest.approx(plain.value, rel=1e-6)


def test_a_split_covariance_rebalances_as_its_factor_model() -> None:
    """The same whole-share answer from the dense matrix (full rank) and from the factor model
    that implies it."""
    rng = np.random.default_rng(12)
    symbols = [f"A{i:02d}" for i in range(N)]
    loadings = rng.normal(0, 0.012, (N, 4))
    idio = rng.uniform(1e-4, 4e-4, N)
    names = [f"f{i}" for i in range(4)]
    model = FactorModel(
        pd.DataFrame(loadings, index=symbols, columns=names),
        pd.DataFrame(np.eye(4), index=names, columns=names),
        pd.Series(idio, index=symbols),
    )
    target = rng.dirichlet(np.ones(N)) * 0.97
    config = _config(rng, symbols, target).model_copy(update={"allow_fractional_shares": False})
    prices = dict(zip(symbols, rng.uniform(10, 200, N).tolist(), strict=True))
    dense = rebalance(config, prices, covariance=model.covariance())
    factor = rebalance(config, prices, factor_model=model)
    assert dense.is_compliant
    assert dense.trades
    assert [t.model_dump(exclude={"reasons"}) for t in dense.trades] == [
        t.model_dump(exclude={"reasons"}) for t in factor.trades
    ]
