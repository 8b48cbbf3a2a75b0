"""Activity bounds that refute a QP's rows (``refuted_by_bounds``), and the solver policy's
interior point (``_solve._interior``): where OSQP polishes Clarabel's point, Clarabel runs without
its iterative refinement (the polish solves the active set's KKT system exactly), and the trades
are the same bits as with it; where the polish fails, Clarabel runs again with it, and its answer
stands as before."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.optimize import linprog

from finwiz import PortfolioConfiguration, rebalance
from finwiz.optimizer import clear_cache
from finwiz.optimizer.solve import _solve, _solvers
from finwiz.optimizer.solve._presolve import refuted_by_bounds


def _recorded(monkeypatch: pytest.MonkeyPatch, refine: bool | None = None) -> list[bool]:
    """Each Clarabel call's ``refine`` (forced to ``refine`` when given)."""
    calls: list[bool] = []
    original = _solvers.solve_clarabel

    def recording(*args: Any, **kwargs: Any) -> Any:
        if refine is not None:
            kwargs["refine"] = refine
        calls.append(kwargs.get("refine", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(_solve, "solve_clarabel", recording)
    return calls


def _cold_to_clarabel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_solvers, "COLD_ITERATIONS", 1)  # a cold ADMM gives up at once: Clarabel answers


def test_a_polished_interior_point_skips_refinement_and_gives_the_same_trades(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cold_to_clarabel(monkeypatch)
    calls = _recorded(monkeypatch, refine=True)
    clear_cache()
    refined = rebalance(sample_config, sample_prices)
    assert calls == [True]
    calls = _recorded(monkeypatch)
    clear_cache()
    got = rebalance(sample_config, sample_prices)
    assert calls == [False]  # polished by OSQP: no refinement
    assert got.solver == "OSQP"
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in refined.trades]
    assert got.objective_value == refined.objective_value


def test_where_the_polish_fails_the_refined_interior_point_answers(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cold_to_clarabel(monkeypatch)
    monkeypatch.setattr(_solvers, "POLISHED_RESIDUAL", -1.0)  # every polished point refused
    calls = _recorded(monkeypatch, refine=True)
    clear_cache()
    refined = rebalance(sample_config, sample_prices)
    calls = _recorded(monkeypatch)
    clear_cache()
    got = rebalance(sample_config, sample_prices)
    assert calls[:2] == [False, True]  # unrefined, polish refused, then refined
    assert got.solver == "CLARABEL"
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in refined.trades]
    assert got.objective_value == refined.objective_value


def _rows(bounds: list[tuple[float, float]], rows: list[list[float]], lower: list[float], upper: list[float]) -> Any:
    """A QP's rows as ``refuted_by_bounds`` reads them: one bound row per variable, then ``rows``."""
    k = len(bounds)
    a = np.vstack([np.eye(k), np.array(rows, float)])
    low = np.concatenate([[b[0] for b in bounds], lower])
    up = np.concatenate([[b[1] for b in bounds], upper])
    return SimpleNamespace(A=sparse.csc_matrix(a), lower=low, upper=up, groups=[("trade_bounds", 0, k)])


@pytest.mark.parametrize(
    ("row", "lower", "upper", "refuted"),
    [
        ([1.0, 1.0], -np.inf, -0.5, True),  # x + y >= 0 always
        ([1.0, -1.0], 2.0, np.inf, True),  # x - y <= 1 always
        ([1.0, 1.0], 5.0, np.inf, False),  # y unbounded above
        ([1.0, -1.0], -np.inf, -3.0, False),  # y unbounded above
        ([2.0, 0.0], 2.0, 2.0, False),  # x = 1 reaches it exactly
        ([2.0, 0.0], 2.0 + 1e-6, np.inf, True),  # past it by more than the tolerance
    ],
)
def test_refuted_by_bounds_on_hand_cases(row: list[float], lower: float, upper: float, refuted: bool) -> None:
    qp = _rows([(0.0, 1.0), (0.0, np.inf)], [row], [lower], [upper])  # x in [0, 1], y >= 0
    assert refuted_by_bounds(qp) is refuted


@pytest.mark.parametrize("seed", range(20))
def test_refuted_rows_admit_no_point_by_an_lp(seed: int) -> None:
    """Refuted only where an LP (scipy's HiGHS, independent of the test) finds no point."""
    rng = np.random.default_rng(seed)
    k, m = 4, 3
    bounds = [(float(lo), float(lo + rng.uniform(0, 2)) if rng.random() < 0.7 else np.inf) for lo in rng.normal(size=k)]
    rows = rng.normal(size=(m, k)) * (rng.random((m, k)) < 0.7)
    lower = rng.normal(size=m) * 2
    upper = np.where(rng.random(m) < 0.5, lower + rng.uniform(0, 1, m), np.inf)
    qp = _rows(bounds, rows.tolist(), lower.tolist(), upper.tolist())
    a_ub = np.vstack([rows[np.isfinite(upper)], -rows])
    b_ub = np.concatenate([upper[np.isfinite(upper)], -lower])
    lp = linprog(np.zeros(k), A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if refuted_by_bounds(qp):
        assert lp.status == 2  # infeasible
