"""The dense solver (``solve/_dense.py``): a full-rank covariance's QP solved in its kept
eigenbasis reaches the optimum of plain cvxpy + Clarabel on the dense matrix, and is exact on its
active set (the QP's own KKT certificate, rows kept to 1e-11); shapes it does not cover go back."""

from __future__ import annotations

import dataclasses
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from finwiz.optimizer import RebalancingEngine, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.solve import _dense, _qp_build, _solve
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import NativeQP
from finwiz.optimizer.solve._solvers import kkt_certified
from finwiz.risk import _model
from tests.optimizer.solve.test_dense_covariance import RATE, SECTOR_CAP, TURNOVER_CAP, N, _config, _plain


@pytest.fixture
def small_dense(monkeypatch: pytest.MonkeyPatch) -> list[tuple[NativeQP, Any]]:
    """The dense route from 10 assets, and every (QP, answer) the dense solver gave."""
    monkeypatch.setattr(_model, "EIGEN_ASSETS", 10)
    monkeypatch.setattr(_qp_build, "_DENSE_FACTORS", 10)  # the covariance's block on weights
    seen: list[tuple[NativeQP, Any]] = []
    solve = _dense.solve_dense

    def spy(qp: NativeQP) -> Any:
        found = solve(qp)
        seen.append((qp, found))
        return found

    monkeypatch.setattr(_solve, "solve_dense", spy)
    return seen


def _solve_full_rank(seed: int) -> tuple[Any, Any, np.ndarray]:
    rng = np.random.default_rng(seed)
    symbols = [f"A{i:02d}" for i in range(N)]
    b = rng.normal(0, 0.012, (N, N))
    sigma = b @ b.T / 4
    target = rng.dirichlet(np.ones(N)) * 0.97
    config = _config(rng, symbols, target)
    prices = dict(zip(symbols, rng.uniform(10, 200, N).tolist(), strict=True))
    data = build_problem_data(config, prices, covariance=pd.DataFrame(sigma, index=symbols, columns=symbols))
    strategy = RebalancingEngine().strategies[config.method]
    terms = [t for t in [*strategy.terms(data), *constraint_terms()] if t.applies(data)]
    return data, _solve.solve_terms(Model.of(terms, data)), sigma


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_the_dense_solver_reaches_the_plain_optimum(small_dense: list[tuple[NativeQP, Any]], seed: int) -> None:
    data, got, sigma = _solve_full_rank(seed)
    assert len(small_dense) == 1
    qp, found = small_dense[0]
    assert found is not None
    assert found.status == "optimal"
    sectors = np.array([[i % 3 == j for i in range(N)] for j in range(3)], dtype=float)
    plain = _plain(sigma, data.x0, data.cash0, data.target, sectors)
    plain.solve(solver="CLARABEL")
    assert plain.status == cp.OPTIMAL
    assert plain.value is not None
    buy, sell = got.buy, got.sell
    w, cost = data.x0 + buy - sell, float(RATE * (buy + sell).sum())
    assert (sell <= data.x0 + 1e-12).all()
    assert (np.minimum(buy, sell) >= 0).all()
    assert (sectors @ w + SECTOR_CAP * cost <= SECTOR_CAP + 1e-11).all()
    assert (buy + sell).sum() <= TURNOVER_CAP + 1e-11
    gap = w - data.target
    value = gap @ gap + (w.sum() - data.target.sum()) ** 2 + gap @ sigma @ gap / float(np.trace(sigma) / N) + cost
    assert value == pytest.approx(plain.value, rel=1e-6)  # Clarabel's default tolerances
    assert value <= plain.value + 1e-9  # exact on its active set: no worse than the interior point
    assert kkt_certified(qp, found.z, found.y)
    assert max(found.residuals.values()) <= 1e-11


def test_the_dense_answer_is_the_qp_optimum(small_dense: list[tuple[NativeQP, Any]]) -> None:
    """The same QP as plain cvxpy states it (z'Pz, l <= Az <= u): the same optimum."""
    _solve_full_rank(14)
    qp, found = small_dense[0]
    assert found is not None
    z = cp.Variable(qp.A.shape[1])
    p = (qp.P + qp.P.T - sparse.diags(qp.P.diagonal())).toarray()
    problem = cp.Problem(
        cp.Minimize(0.5 * cp.quad_form(z, cp.psd_wrap(p)) + qp.q @ z),
        [qp.A @ z >= np.maximum(qp.lower, -1e20), qp.A @ z <= np.minimum(qp.upper, 1e20)],
    )
    problem.solve(solver="CLARABEL")
    assert problem.value is not None
    ours = 0.5 * found.z @ (p @ found.z) + qp.q @ found.z
    assert ours == pytest.approx(problem.value, rel=1e-8, abs=1e-10)
    assert np.abs(found.z - z.value).max() < 1e-5


def test_shapes_it_does_not_cover_go_back(small_dense: list[tuple[NativeQP, Any]]) -> None:
    """No kept eigenbasis, or a curvature that is not uniform: None (Clarabel answers)."""
    _solve_full_rank(15)
    qp, found = small_dense[0]
    assert found is not None
    assert _dense.solve_dense(dataclasses.replace(qp, eigen=None)) is None
    uneven = qp.curvature.copy()
    uneven[0] *= 2.0
    assert _dense.solve_dense(dataclasses.replace(qp, curvature=uneven)) is None


def test_the_weight_block_of_p_is_its_upper_triangle() -> None:
    """``P``'s dense block built as CSC directly: the same arrays as from its triplets."""
    from finwiz.optimizer.solve._qp_build import _upper_block

    rng = np.random.default_rng(0)
    n, first, nz = 50, 17, 76
    block = rng.normal(size=(n, n))
    rows, cols = np.triu_indices(n)
    expected = sparse.csc_matrix((block[rows, cols], (first + rows, first + cols)), shape=(nz, nz))
    got = _upper_block(block, first, nz)
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)


def test_whole_shares_are_those_of_the_clarabel_route(
    small_dense: list[tuple[NativeQP, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole-share rebalance on the dense route trades what it trades with Clarabel answering."""
    from finwiz import rebalance
    from finwiz.optimizer import clear_cache

    rng = np.random.default_rng(16)
    symbols = [f"A{i:02d}" for i in range(N)]
    b = rng.normal(0, 0.012, (N, N))
    target = rng.dirichlet(np.ones(N)) * 0.97
    config = _config(rng, symbols, target).model_copy(update={"allow_fractional_shares": False})
    prices = dict(zip(symbols, rng.uniform(10, 200, N).tolist(), strict=True))
    covariance = pd.DataFrame(b @ b.T / 4, index=symbols, columns=symbols)
    dense = rebalance(config, prices, covariance=covariance)
    assert small_dense
    assert small_dense[0][1] is not None  # the dense solver answered
    monkeypatch.setattr(_solve, "solve_dense", lambda qp: None)
    clear_cache()
    clarabel = rebalance(config, prices, covariance=covariance)
    assert dense.is_compliant
    assert dense.trades
    assert [(t.symbol, t.shares) for t in dense.trades] == [(t.symbol, t.shares) for t in clarabel.trades]


def test_each_column_takes_its_tightest_one_column_row() -> None:
    """``_bounds`` against a row-by-row scan: the tightest bound of each column (signs flipping
    a row's sides, infinite sides setting nothing) and the first row of equal ones."""

    def scan(qp: Any, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, nx: int) -> tuple[np.ndarray, ...]:
        lo, hi = np.full(nx, -np.inf), np.full(nx, np.inf)
        lo_row, hi_row, coef_lo, coef_hi = np.full(nx, -1), np.full(nx, -1), np.ones(nx), np.ones(nx)
        for r, j, a in zip(rows.tolist(), cols.tolist(), vals.tolist(), strict=True):
            low, high = (qp.lower[r] / a, qp.upper[r] / a) if a > 0 else (qp.upper[r] / a, qp.lower[r] / a)
            if low > lo[j]:
                lo[j], lo_row[j], coef_lo[j] = low, r, a
            if high < hi[j]:
                hi[j], hi_row[j], coef_hi[j] = high, r, a
        return lo, hi, lo_row, hi_row, coef_lo, coef_hi

    rng = np.random.default_rng(3)
    for _ in range(100):
        lower = rng.choice([-np.inf, 0.0, -1.0, 0.5], 30)
        qp = dataclasses.make_dataclass("Q", ["lower", "upper"])(
            lower, np.maximum(rng.choice([np.inf, 1.0, 0.5], 30), lower)
        )
        rows, cols, vals = rng.permutation(30)[:20], rng.integers(0, 12, 20), rng.choice([1.0, -1.0, 2.0], 20)
        for got, expected in zip(_dense._bounds(qp, rows, cols, vals, 12), scan(qp, rows, cols, vals, 12), strict=True):
            np.testing.assert_array_equal(got, expected)
