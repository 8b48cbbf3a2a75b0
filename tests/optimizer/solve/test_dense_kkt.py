"""A full-rank dense covariance (a dense block in the QP's ``P``): solved by Clarabel on faer's
factorisation, straight away (no cold ADMM, no OSQP workspace to factor), to the optimum of plain
cvxpy + Clarabel on the dense matrix, and the same bits on every call."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from finwiz import PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine, build_problem_data, clear_cache
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import native_qp, solve_terms
from finwiz.optimizer.solve._solvers import has_dense_block

N = 90  # over the 64 factors from which the root is squared into a dense block
RATE = 0.001
TURNOVER_CAP = 0.25
REQUEST = {
    "cash": 3_000.0,
    "method": "risk_aware",
    "tolerance": 0.0,
    "transaction_cost_rate": RATE,
    "min_trade_size": 0.0,
    "max_turnover": TURNOVER_CAP,
}


def _case(seed: int, full_rank: bool = True) -> tuple[Model, np.ndarray]:
    rng = np.random.default_rng(seed)
    symbols = [f"A{i:02d}" for i in range(N)]
    returns = rng.normal(0, 0.012, (2 * N, N))  # more days than assets: full rank
    sigma = returns.T @ returns / (2 * N)
    sigma = sigma if full_rank else np.diag(np.diag(sigma))
    shares = rng.integers(5, 80, N)
    target = rng.dirichlet(np.ones(N)) * 0.97
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        **REQUEST,
    )
    prices = dict(zip(symbols, rng.uniform(10, 200, N).tolist(), strict=True))
    data = build_problem_data(config, prices, covariance=pd.DataFrame(sigma, index=symbols, columns=symbols))
    strategy = RebalancingEngine().strategies[config.method]
    terms = [t for t in [*strategy.terms(data), *constraint_terms()] if t.applies(data)]
    return Model.of(terms, data), sigma


def _plain_optimum(model: Model, sigma: np.ndarray) -> float:
    """min ||w-t||^2 + (1'w - 1't)^2 + (w-t)' Sigma (w-t) / mean(diag Sigma) + c, written from the
    README's definitions with the dense matrix as a ``quad_form``."""
    data = model.data
    w, b, s = cp.Variable(N), cp.Variable(N, nonneg=True), cp.Variable(N, nonneg=True)
    c = cp.Variable(nonneg=True)
    t = data.target
    objective = (
        cp.sum_squares(w - t)
        + cp.square(cp.sum(w) - t.sum())
        + cp.quad_form(w - t, cp.psd_wrap(sigma / float(np.trace(sigma) / N)))
        + c
    )
    constraints = [
        w == data.x0 + b - s,
        s <= data.x0,
        c >= RATE * cp.sum(b + s),
        cp.sum(b) - cp.sum(s) + c <= data.cash0,
        cp.sum(b + s) <= TURNOVER_CAP,
    ]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return float(problem.value)


def test_a_dense_block_is_solved_by_clarabel_alone_to_the_plain_optimum() -> None:
    clear_cache()
    model, sigma = _case(21)
    qp = native_qp(model)
    assert qp is not None
    assert has_dense_block(qp)
    got = solve_terms(model)
    assert got.attempts == ("CLARABEL",)
    data = model.data
    w = data.x0 + got.buy - got.sell
    cost = RATE * float((got.buy + got.sell).sum())
    gap = w - data.target
    at_finwiz = gap @ gap + (w.sum() - data.target.sum()) ** 2 + gap @ sigma @ gap / (np.trace(sigma) / N) + cost
    assert (got.buy + got.sell).sum() <= TURNOVER_CAP + 1e-9
    assert (got.sell <= data.x0 + 1e-12).all()
    assert at_finwiz == pytest.approx(_plain_optimum(model, sigma), rel=1e-7)


def test_a_dense_block_gets_the_same_bits_on_every_call() -> None:
    answers = []
    for _ in range(2):
        clear_cache()
        model, _ = _case(22)
        got = solve_terms(model)
        answers.append(np.concatenate([got.buy, got.sell]))
    assert answers[0].tobytes() == answers[1].tobytes()


@pytest.mark.parametrize("dense", [True, False])
def test_only_a_dense_block_factors_on_faer_with_one_thread(monkeypatch: pytest.MonkeyPatch, dense: bool) -> None:
    import clarabel

    from finwiz.optimizer.solve._solvers import solve_clarabel

    seen: list[tuple[str, int]] = []
    given: list[bool] = []
    original = clarabel.DefaultSolver

    def spy(*args: object) -> object:
        settings = args[-1]
        seen.append((settings.direct_solve_method, settings.max_threads))  # type: ignore[attr-defined]
        given.append(sparse.issparse(args[0]))
        return original(*args)

    monkeypatch.setattr(clarabel, "DefaultSolver", spy)
    model, _ = _case(23, full_rank=dense)  # else its diagonal: no dense block
    qp = native_qp(model)
    assert qp is not None
    assert has_dense_block(qp) == dense
    assert solve_clarabel(qp, 30.0).status == "optimal"
    assert seen == ([("faer", 1)] if dense else [(clarabel.DefaultSettings().direct_solve_method, 0)])
    assert given == [dense]  # a dense block's P as it is; else as lists (``_solvers._AsLists``)
