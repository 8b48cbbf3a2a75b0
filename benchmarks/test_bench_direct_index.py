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

from conftest import PEER_WARNINGS, UNCLASSIFIED, BindingProblem
from finwiz import Holding, PortfolioConfiguration
from finwiz.optimizer import clear_cache, rebalance

pytestmark = [*PEER_WARNINGS, pytest.mark.slow]

VALUES = (50_000.0, 250_000.0)
AVERSIONS = (1.0, 100.0)
RISKS = ("sample", "factor")
PERIODS = 252
TE_TARGET = 1.1
IMPROVES = 1e-9
"""A move improves when it lowers the objective by more than this fraction of it."""
SLACK = 1e-9
"""Limits are kept to this fraction of the account's value (float noise)."""


@dataclass
class Case:
    """One request as arrays: prices, held shares, cash, the target, limits and the covariance."""

    symbols: list[str]
    prices: np.ndarray
    held: np.ndarray
    cash: float
    target: np.ndarray
    rate: float
    position_cap: float
    sector_cap: float
    sectors: np.ndarray  # classified sectors x assets, 0/1
    no_sell: np.ndarray
    sigma: np.ndarray
    aversion: float
    config: PortfolioConfiguration
    risk: dict[str, Any]  # finwiz's risk option (covariance= or factor_model=)
    root: np.ndarray  # S = root' root

    @property
    def r(self) -> float:
        return float(self.held @ self.prices) + self.cash

    @property
    def k(self) -> float:
        return self.aversion / float(np.mean(np.diag(self.sigma)))


def build(problem: BindingProblem, value: float, risk: str, aversion: float) -> Case:
    """``problem`` scaled to ``value`` (holdings floored, the rest in cash) as a ``Case``."""
    prices = problem.prices.to_numpy()
    scale = value / problem.value
    held = np.floor(problem.shares * scale)
    cash = problem.cash * scale + float((problem.shares * scale - held) @ prices)
    symbols = problem.symbols
    returns = problem.base.returns[symbols].to_numpy()
    if risk == "sample":
        x = (returns - returns.mean(axis=0)) / np.sqrt(len(returns) - 1)
        root, options = x, {}
        sigma = x.T @ x
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
    return Case(
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
        config=config,
        risk=options,
        root=root,
    )


# --------------------------------------------------------------------------- the README's objective and limits


def objective(case: Case, q: np.ndarray) -> float:
    """The RISK_AWARE objective of holding ``q`` shares after trading (see the module)."""
    r = case.r
    trade = (q - case.held) * case.prices
    e = q * case.prices / r - case.target
    gap = (case.cash - trade.sum()) / r - (1 - case.target.sum())
    cost = case.rate * np.abs(trade).sum() / r
    return float(e @ e + gap**2 + cost + case.k * e @ case.sigma @ e)


def feasible(case: Case, q: np.ndarray) -> bool:
    """Whether ``q`` keeps every limit (see the module)."""
    r = case.r
    trade = (q - case.held) * case.prices
    cost = case.rate * np.abs(trade).sum()
    after = r - cost
    held_value = q * case.prices
    slack = SLACK * r
    return bool(
        (q >= 0).all()
        and (q[case.no_sell] >= case.held[case.no_sell]).all()
        and case.cash - trade.sum() - cost >= -slack
        and (held_value <= case.position_cap * after + slack).all()
        and (case.sectors @ held_value <= case.sector_cap * after + slack).all()
    )


def tracking_error(case: Case, q: np.ndarray) -> float:
    """Annualised tracking error of the post-trade weights (fractions of V')."""
    trade = (q - case.held) * case.prices
    after = case.r - case.rate * np.abs(trade).sum()
    e = q * case.prices / after - case.target
    return float(np.sqrt(PERIODS * e @ case.sigma @ e))


# --------------------------------------------------------------------------- one-share moves, priced exactly


@dataclass
class Moves:
    """Every asset one share up (first n) and one share down (last n) from ``q``: each move's exact
    change of the objective, its change of the costs and of the sector values, and the pair cross
    terms' factor."""

    asset: np.ndarray
    step: np.ndarray  # shares, +1 or -1
    change: np.ndarray  # the objective's change of the move alone
    cost: np.ndarray  # its change of the costs (currency)


def moves_at(case: Case, q: np.ndarray) -> Moves:
    n, r, p = len(q), case.r, case.prices
    trade = (q - case.held) * p
    e = q * p / r - case.target
    gap = (case.cash - trade.sum()) / r - (1 - case.target.sum())
    se = case.sigma @ e
    asset = np.concatenate([np.arange(n), np.arange(n)])
    step = np.concatenate([np.ones(n), -np.ones(n)])
    delta = step * p[asset] / r
    cost = case.rate * (np.abs(trade[asset] + step * p[asset]) - np.abs(trade[asset]))
    change = (
        2 * e[asset] * delta
        + delta**2
        - 2 * gap * delta
        + delta**2
        + cost / r
        + case.k * (2 * delta * se[asset] + delta**2 * case.sigma[asset, asset])
    )
    return Moves(asset, step, change, cost)


def pair_changes(case: Case, moves: Moves) -> np.ndarray:
    """The exact change of every exchange (a, b) of two moves of different assets: the two moves'
    own changes plus the cross terms of the cash square and the risk term (the tracking square
    and the costs are separable)."""
    delta = moves.step * case.prices[moves.asset] / case.r
    cross = 2 * np.outer(delta, delta) * (1 + case.k * case.sigma[np.ix_(moves.asset, moves.asset)])
    total = moves.change[:, None] + moves.change[None, :] + cross
    total[moves.asset[:, None] == moves.asset[None, :]] = np.inf
    return total


def best_single(case: Case, q: np.ndarray, f: float) -> np.ndarray | None:
    """The best improving single-share move that keeps every limit (None: there is none)."""
    moves = moves_at(case, q)
    for k in np.argsort(moves.change):
        if not moves.change[k] < -IMPROVES * f:
            return None
        trial = q.copy()
        trial[moves.asset[k]] += moves.step[k]
        if feasible(case, trial) and objective(case, trial) < f * (1 - IMPROVES):
            return trial
    return None


def best_pair(case: Case, q: np.ndarray, f: float, limit: int | None = None) -> np.ndarray | None:
    """The best improving exchange of one share each of two assets that keeps every limit (every
    pair; candidates in order of their priced change, each checked exactly)."""
    moves = moves_at(case, q)
    total = pair_changes(case, moves)
    flat = total.ravel()
    candidates = np.flatnonzero(flat < -IMPROVES * f)
    width = total.shape[1]
    # Cash: a pair whose buys exceed the cash cannot be taken (the common block), filtered at once.
    trade = (q - case.held) * case.prices
    cash_left = case.cash - trade.sum() - case.rate * np.abs(trade).sum()
    spend = moves.step * case.prices[moves.asset] + moves.cost
    a, b = candidates // width, candidates % width
    candidates = candidates[spend[a] + spend[b] <= cash_left + SLACK * case.r]
    for k in candidates[np.argsort(flat[candidates])][:limit]:
        trial = q.copy()
        trial[moves.asset[k // width]] += moves.step[k // width]
        trial[moves.asset[k % width]] += moves.step[k % width]
        if feasible(case, trial) and objective(case, trial) < f * (1 - IMPROVES):
            return trial
    return None


def local_search(case: Case, q: np.ndarray) -> tuple[np.ndarray, int]:
    """The best improving single-share move, else the best improving pair, until neither."""
    if not feasible(case, q):
        raise ValueError("local search from an infeasible start")
    steps = 0
    while True:
        f = objective(case, q)
        nxt = best_single(case, q, f)
        if nxt is None:
            nxt = best_pair(case, q, f)
        if nxt is None:
            return q, steps
        q, steps = nxt, steps + 1


def continuous_shares(case: Case) -> np.ndarray:
    """The continuous optimum of the same model (plain cvxpy), in shares."""
    r, p, n = case.r, case.prices, len(case.prices)
    x0 = case.held * p / r
    cash0 = case.cash / r
    b, s, c = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True), cp.Variable(nonneg=True)
    w = x0 + b - s
    e = w - case.target
    risk = case.root * np.sqrt(case.k)
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
    case = build(binding_problem(431), value, risk, aversion)
    prices = pd.Series(case.prices, index=case.symbols)
    clear_cache()
    start = time.perf_counter()
    result = rebalance(case.config, prices, **case.risk)
    seconds = time.perf_counter() - start
    ours = finwiz_shares(case, result)
    assert feasible(case, ours)
    f_ours = objective(case, ours)
    assert f_ours == pytest.approx(result.objective_value, rel=1e-9)
    single = best_single(case, ours, f_ours)
    pair = best_pair(case, ours, f_ours)
    searched = {}
    for name, q in whole_starts(case, continuous_shares(case)).items():
        found, steps = local_search(case, q)
        searched[name] = (objective(case, q), tracking_error(case, q), objective(case, found), found, steps)
    name = min(searched, key=lambda k: searched[k][2])
    f_start, te_start, f_best, best, steps = searched[name]
    te_ours, te_best = tracking_error(case, ours), tracking_error(case, best)
    info = {
        "value": value,
        "risk": risk,
        "risk_aversion": aversion,
        "seconds": round(seconds, 3),
        "objective": f_ours,
        "tracking_error_bp": round(te_ours * 1e4, 2),
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
        "warnings": [w[:100] for w in result.warnings],
    }
    benchmark.extra_info.update(info)
    print(f"\n{info}")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    misses = []
    if single is not None or pair is not None:
        misses.append("an improving single-share or pair move remains")
    if te_ours > TE_TARGET * te_best:
        misses.append(f"tracking error {te_ours * 1e4:.1f} bp > {TE_TARGET} x {te_best * 1e4:.1f} bp")
    if misses:
        pytest.xfail("; ".join(misses))
