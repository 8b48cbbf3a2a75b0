"""Direct indexing in whole shares (issue 23): 431 real names at $50k and $250k, ``RISK_AWARE``.

The $2M binding book of ``conftest.binding_problem`` (431 real assets, real sectors, two sectors
and four names targeted above their 25 % / 2 % caps, a no-sell list) scaled down to $50k and
$250k, its holdings floored to whole shares, costs 10 bp, no minimum trade, no turnover cap; a
covariance (the sample covariance of the 500 days of returns, or the 10-factor PCA model of
``conftest``) and ``risk_aversion`` 1 or 100. Every figure is computed here, independently of
finwiz, from the README's definitions (``objective``; ``feasible``):

- R = V + cash flow; each asset's trade value T_i = (q_i - q0_i) p_i; w_i = q_i p_i / R and
  cash = (cash + flow - sum T) / R (weights before costs); costs C = rate sum |T_i|;
  objective = ||w - w*||^2 + (cash - cash*)^2 + C / R + risk_aversion (w - w*)' S (w - w*) / mean(diag S).
- limits on post-trade weights (fractions of V' = R - C): q_i p_i <= 2 % V', each classified
  sector <= 25 % V'; cash after costs >= 0; long only; no sale of a no-sell name.
- tracking error: sqrt(252 e' S e), e the post-trade weights minus the target.

Measured: finwiz's objective and tracking error; a local search written here (numpy only, one
share of one asset or one share each of two assets, priced exactly on the objective above, the
best improving move taken until none) started from the continuous optimum of the same model
(plain cvxpy) floored and rounded to whole shares, its objective and tracking error; whether any
single-share move (every asset, both ways) or any two-asset exchange of one share each (every
pair) keeps every limit and improves finwiz's answer; finwiz's time.
Targets (issue 23): no improving move; tracking error <= 1.1 x the local search's.
Run: ``pytest benchmarks/test_bench_direct_index.py -m slow -p no:randomly -s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from tests.optimizer.discrete.one_share import (
    Case,
    best_pair,
    best_single,
    feasible,
    local_search,
    objective,
    tracking_error,
)

from conftest import PEER_WARNINGS, UNCLASSIFIED, BindingProblem
from finwiz import Holding, PortfolioConfiguration
from finwiz.optimizer import clear_cache, rebalance

pytestmark = [*PEER_WARNINGS, pytest.mark.slow]

VALUES = (50_000.0, 250_000.0)
AVERSIONS = (1.0, 100.0)
RISKS = ("sample", "factor")
TE_TARGET = 1.1


@dataclass
class Request:
    """A ``Case`` with finwiz's request: its configuration, risk option and covariance root."""

    case: Case
    config: PortfolioConfiguration
    risk: dict[str, Any]  # finwiz's risk option (covariance= or factor_model=)
    root: np.ndarray  # S = root' root


def build(problem: BindingProblem, value: float, risk: str, aversion: float) -> Request:
    """``problem`` scaled to ``value`` (holdings floored, the rest in cash) as a ``Request``."""
    prices = problem.prices.to_numpy()
    scale = value / problem.value
    held = np.floor(problem.shares * scale)
    cash = problem.cash * scale + float((problem.shares * scale - held) @ prices)
    symbols = problem.symbols
    returns = problem.base.returns[symbols].to_numpy()
    if risk == "sample":
        x = (returns - returns.mean(axis=0)) / np.sqrt(len(returns) - 1)
        root, sigma = x, x.T @ x
        options = {"covariance": pd.DataFrame(sigma, index=symbols, columns=symbols)}
    else:
        fm = problem.factor_model
        g = fm.exposure_root()
        d = np.sqrt(fm.idiosyncratic_variance.to_numpy())
        root = np.vstack([g.T, np.diag(d)])
        sigma = g @ g.T + np.diag(d**2)
        options = {"factor_model": fm}
    config = problem.config(
        holdings=[Holding(symbol=s, shares=float(q)) for s, q in zip(symbols, held, strict=True) if q > 0],
        cash=cash,
        cash_flow=0.0,
        min_trade_size=0.0,
        max_turnover=None,
        method="risk_aware",
        risk_aversion=aversion,
    )
    names = sorted({s for s in problem.sectors.values() if s != UNCLASSIFIED})
    sectors = np.array([[problem.sectors[s] == name for s in symbols] for name in names], dtype=float)
    case = Case(
        symbols=symbols,
        prices=prices,
        held=held,
        cash=cash,
        target=problem.target,
        rate=config.transaction_cost_rate,
        position_cap=float(config.max_position_weight or 1.0),
        sector_cap=float(config.max_sector_weight or 1.0),
        sectors=sectors,
        no_sell=np.isin(symbols, config.no_sell),
        sigma=sigma,
        aversion=aversion,
    )
    return Request(case, config, options, root)


def continuous_shares(case: Case, root: np.ndarray) -> np.ndarray:
    """The continuous optimum of the same model (plain cvxpy; ``S = root' root``), in shares."""
    r, p, n = case.r, case.prices, len(case.prices)
    x0 = case.held * p / r
    cash0 = case.cash / r
    b, s, c = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True), cp.Variable(nonneg=True)
    w = x0 + b - s
    e = w - case.target
    risk = root * np.sqrt(case.k)
    constraints = [
        c == case.rate * cp.sum(b + s),
        cash0 - cp.sum(b - s) - c >= 0,
        s <= x0,
        w <= case.position_cap * (1 - c),
        case.sectors @ w <= case.sector_cap * (1 - c),
    ]
    if case.no_sell.any():
        constraints.append(s[np.flatnonzero(case.no_sell)] == 0)
    gap = cash0 - cp.sum(b - s) - (1 - case.target.sum())
    problem = cp.Problem(cp.Minimize(cp.sum_squares(e) + cp.square(gap) + c + cp.sum_squares(risk @ e)), constraints)
    problem.solve(solver="CLARABEL")
    if problem.status != cp.OPTIMAL:
        raise RuntimeError(f"continuous model: {problem.status}")
    return np.asarray(w.value) * r / p


def whole_starts(case: Case, shares: np.ndarray) -> dict[str, np.ndarray]:
    """The continuous optimum floored and rounded (the rounded one only where it keeps every limit)."""
    floored = np.maximum(np.floor(shares + 1e-9), 0.0)
    floored[case.no_sell] = np.maximum(floored[case.no_sell], case.held[case.no_sell])
    starts = {"floor": floored}
    rounded = np.maximum(np.round(shares), 0.0)
    rounded[case.no_sell] = np.maximum(rounded[case.no_sell], case.held[case.no_sell])
    if feasible(case, rounded):
        starts["round"] = rounded
    return starts


def finwiz_shares(case: Case, result: Any) -> np.ndarray:
    index = {s: i for i, s in enumerate(case.symbols)}
    q = case.held.copy()
    for t in result.trades:
        q[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    return q


# --------------------------------------------------------------------------- the benchmark


@pytest.mark.parametrize("risk", RISKS)
@pytest.mark.parametrize("aversion", AVERSIONS)
@pytest.mark.parametrize("value", VALUES)
def test_direct_index(benchmark: Any, binding_problem: Any, value: float, aversion: float, risk: str) -> None:
    request = build(binding_problem(431), value, risk, aversion)
    case = request.case
    prices = pd.Series(case.prices, index=case.symbols)
    clear_cache()
    start, cpu = time.perf_counter(), time.process_time()
    result = rebalance(request.config, prices, **request.risk)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    ours = finwiz_shares(case, result)
    assert feasible(case, ours)
    f_ours = objective(case, ours)
    assert f_ours == pytest.approx(result.objective_value, rel=1e-9)
    single = best_single(case, ours, f_ours)
    pair = best_pair(case, ours, f_ours)
    continuous = continuous_shares(case, request.root)
    searched = {}
    for name, q in whole_starts(case, continuous).items():
        found, steps = local_search(case, q)
        searched[name] = (objective(case, q), tracking_error(case, q), objective(case, found), found, steps)
    name = min(searched, key=lambda k: searched[k][2])
    f_start, te_start, f_best, best, steps = searched[name]
    te_ours, te_best = tracking_error(case, ours), tracking_error(case, best)
    info = {
        "value": value,
        "risk": risk,
        "risk_aversion": aversion,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "objective": f_ours,
        "tracking_error_bp": round(te_ours * 1e4, 2),
        "continuous_tracking_error_bp": round(tracking_error(case, continuous) * 1e4, 2),
        "single_improves": None if single is None else f_ours - objective(case, single),
        "pair_improves": None if pair is None else f_ours - objective(case, pair),
        "local_search_start": name,
        "start_objective": f_start,
        "start_tracking_error_bp": round(te_start * 1e4, 2),
        "local_search_objective": f_best,
        "local_search_tracking_error_bp": round(te_best * 1e4, 2),
        "local_search_steps": steps,
        "objective_vs_local_search": f_ours / f_best - 1,
        "bound": result.objective_bound,
        "shares": ",".join(f"{q:g}" for q in ours),
        "warnings": [w[:300] for w in result.warnings],
    }
    benchmark.extra_info.update(info)
    print(f"\n{ {k: v for k, v in info.items() if k != 'shares'} }")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    misses = []
    if single is not None or pair is not None:
        misses.append("an improving single-share or pair move remains")
    if te_ours > TE_TARGET * te_best:
        misses.append(f"tracking error {te_ours * 1e4:.1f} bp > {TE_TARGET} x {te_best * 1e4:.1f} bp")
    if misses:
        pytest.xfail("; ".join(misses))
