"""Every consumer of the model's one description agrees, and the native solver policy.

Each term states its piece once (``_model``); the native QP, the cvxpy problem, the whole-share
step's rows and the compliance table are derived from it. These tests hold them equal (objective
and every limit at arbitrary trades, and the solutions).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from finwiz import FactorModel, InvalidPortfolioError, PortfolioConfiguration, rebalance
from finwiz.optimizer import (
    RebalancingEngine,
    RiskTerm,
    TrackingErrorTerm,
    TurnoverPenaltyTerm,
    assemble,
    build_problem_data,
    clear_cache,
)
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.describe._model import trade_vector
from finwiz.optimizer.describe._terms import Term, TermParts, Variables
from finwiz.optimizer.solve import _qp_build, _solvers, _workspaces
from finwiz.optimizer.solve._assembler import OBJECTIVE_SCALE, Model
from finwiz.optimizer.solve._solve import native_qp, solve, solve_terms
from finwiz.optimizer.verify._compliance import checks_at
from tests.optimizer.test_properties import requests


def factor_model(symbols: list[str], seed: int) -> FactorModel:
    rng = np.random.default_rng(seed)
    k = 3
    names = [f"f{i}" for i in range(k)]
    return FactorModel(
        loadings=pd.DataFrame(rng.normal(0, 0.02, (len(symbols), k)), index=symbols, columns=names),
        factor_covariance=pd.DataFrame(np.eye(k), index=names, columns=names),
        idiosyncratic_variance=pd.Series(rng.uniform(1e-4, 4e-4, len(symbols)), index=symbols),
    )


def terms_for(config: PortfolioConfiguration, data: Any, extra: list[Term]) -> Model:
    strategy = RebalancingEngine().strategies[config.method]
    return Model.of([t for t in [*strategy.terms(data), *constraint_terms(), *extra] if t.applies(data)], data)


class CvxpyTurnoverPenalty(Term):
    """A user's term written in cvxpy: weight x sum(buy + sell), with its Parameter."""

    name = "cvxpy_turnover"

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        weight = cp.Parameter(nonneg=True, name="weight")
        return TermParts(params={"weight": weight}, objective=weight * cp.sum(v.buy + v.sell))

    def values(self, data: Any) -> dict[str, float]:
        return {"weight": self.weight}


def problem(request: tuple[PortfolioConfiguration, dict[str, float]], with_risk: bool, seed: int) -> tuple[Any, ...]:
    config, prices = request
    fm = factor_model(config.symbols, seed) if with_risk else None
    try:
        data = build_problem_data(config, prices, factor_model=fm)
    except InvalidPortfolioError:  # refused requests have their own tests
        assume(False)
    extra: list[Term] = [TurnoverPenaltyTerm(1e-3)]
    if with_risk:
        extra += [RiskTerm(0.3), TrackingErrorTerm(2.0)]
    return config, data, terms_for(config, data, extra)


def _violations(lower: np.ndarray, values: np.ndarray, upper: np.ndarray) -> float:
    return float(np.max(np.maximum(lower - values, values - upper), initial=0.0))


@settings(max_examples=40)
@given(requests(max_assets=40, long_short=True), st.booleans(), st.integers(0, 2**16))
def test_every_consumer_of_the_model_agrees(
    request: tuple[PortfolioConfiguration, dict[str, float]], with_risk: bool, seed: int
) -> None:
    """At arbitrary (not optimal) trades the native QP, the cvxpy problem, the whole-share step's
    rows and the compliance table evaluate the objective and every limit group identically (long/short
    requests included: the side bounds, caps on |w| and the gross-exposure row)."""
    _, data, model = problem(request, with_risk, seed)
    qp = native_qp(model)
    assert qp is not None
    rng = np.random.default_rng(seed)
    buy = rng.uniform(0, 0.05, data.n) * rng.integers(0, 2, data.n)
    sell = np.minimum(rng.uniform(0, 0.05, data.n) * rng.integers(0, 2, data.n), np.abs(data.x0) * 1.2)
    cost = float(rng.uniform(0, 0.01))
    z = trade_vector(buy, sell, cost)
    assembled = assemble(model)
    with assembled.lock:
        assembled.set_values(model, model.stacked())
        assembled.place(buy, sell, cost, data.x0)
        via_cvxpy = float(assembled.problem.objective.value) / OBJECTIVE_SCALE
        cvxpy_groups = assembled.limit_residuals()
    via_native = qp.objective_at_trades(buy, sell, cost)
    via_stack = model.stacked().objective(z)
    assert via_native == pytest.approx(via_cvxpy, rel=1e-9, abs=1e-13)
    assert via_stack == pytest.approx(via_cvxpy, rel=1e-9, abs=1e-13)
    native_groups = qp.residuals(qp.point(buy, sell, cost))
    _, _, as_rows = _qp_build.trade_bounds(model.groups, data.n)  # the rest are variable bounds
    for group in model.groups:
        rows, lower, upper = group.linear()
        own = _violations(lower, rows.evaluate(z), upper)  # the whole-share step reads these rows
        assert cvxpy_groups[group.name] == pytest.approx(
            max(
                own,
                *(
                    _violations(*g.linear()[1:2], g.linear()[0].evaluate(z), g.linear()[2])
                    for g in model.groups
                    if g.name == group.name
                ),
            ),
            rel=1e-9,
            abs=1e-12,
        )
        if any(g is group for g in as_rows):
            assert native_groups[group.name] == pytest.approx(cvxpy_groups[group.name], rel=1e-9, abs=1e-12)
        # The compliance table: a breach there exactly when the linear row is breached.
        checks = checks_at([("t", group)], z)
        worst_slack = min(c.slack for c in checks)
        if own > 1e-9:
            assert worst_slack < 0
        elif own == 0.0:
            assert worst_slack >= -1e-12
    bounds = max((cvxpy_groups[g.name] for g in model.groups if not any(g is r for r in as_rows)), default=0.0)
    assert native_groups["trade_bounds"] == pytest.approx(bounds, rel=1e-9, abs=1e-12)


@settings(max_examples=30)
@given(requests(max_assets=40, long_short=True), st.booleans(), st.integers(0, 2**16))
def test_native_solution_equals_the_cvxpy_solution(
    request: tuple[PortfolioConfiguration, dict[str, float]], with_risk: bool, seed: int
) -> None:
    _, _, model = problem(request, with_risk, seed)
    assembled = assemble(model)
    try:
        with assembled.lock:
            assembled.set_values(model, model.stacked())
            reference = solve(assembled, "CLARABEL")
    except Exception:  # infeasible requests are the diagnosis tests' business
        return
    got = solve_terms(model)
    assert got.objective == pytest.approx(reference.objective, rel=1e-7, abs=1e-12)
    assert np.max(np.abs(got.trades - reference.trades)) < 1e-6
    assert got.residual <= 1e-7


def _clarabel_answer(config: PortfolioConfiguration, prices: pd.Series) -> tuple[Any, np.ndarray, np.ndarray]:
    """The native QP of ``config`` and Clarabel's answer (primal, dual)."""
    data = build_problem_data(config, prices)
    qp = native_qp(terms_for(config, data, []))
    assert qp is not None
    found = _solvers.solve_clarabel(qp, 10.0)
    assert found.z is not None
    assert found.y is not None
    return qp, found.z, found.y


def test_kkt_check_refuses_a_point_that_is_not_optimal(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    qp, z, y = _clarabel_answer(sample_config, sample_prices)
    assert _solvers.kkt_certified(qp, z, y)
    assert not _solvers.kkt_certified(qp, z, np.zeros_like(y))  # no duals: not stationary
    feasible_but_worse = np.zeros_like(z)  # no trade at all is feasible here
    assert not _solvers.kkt_certified(qp, feasible_but_worse, y)


def test_uncertified_osqp_falls_back_to_clarabel(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    expected = rebalance(sample_config, sample_prices, solver="CLARABEL")
    monkeypatch.setattr(_solvers, "kkt_certified", lambda *args: False)
    got = rebalance(sample_config, sample_prices, solver="OSQP")
    assert got.solver == "CLARABEL"
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in expected.trades]


def test_kept_workspace_restores_its_settings(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    """A solve that had to tighten OSQP's tolerances leaves the kept workspace as it found it."""
    clear_cache()
    for scale in (1.0, 1.02, 0.97):
        rebalance(sample_config, sample_prices * scale)
    assert _workspaces.native_cache_info()["hits"] >= 2
    for workspace in _workspaces._cache.values():
        assert workspace.solver.settings.eps_abs == _workspaces.OSQP_SETTINGS["eps_abs"]
        assert workspace.solver.settings.eps_rel == _workspaces.OSQP_SETTINGS["eps_rel"]


def test_clarabel_at_its_default_tolerances_polishes_to_the_tight_answer(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    """Where OSQP polishes Clarabel's point (``refine=False``), Clarabel stops at its own default
    tolerances: the polished answer is the one polished from the tight solve, bit for bit."""
    qp, _, _ = _clarabel_answer(sample_config, sample_prices)
    tight, loose = _solvers.solve_clarabel(qp, 10.0), _solvers.solve_clarabel(qp, 10.0, refine=False)
    assert loose.iterations <= tight.iterations
    assert tight.residuals
    assert not loose.residuals  # the polish's residuals are the ones checked
    polished = []
    for found in (tight, loose):
        clear_cache()
        polished.append(_solvers.polish_osqp(qp, "polish", found, 10.0))
    assert all(p.z is not None for p in polished)
    np.testing.assert_array_equal(polished[0].z, polished[1].z)
    np.testing.assert_array_equal(polished[0].y, polished[1].y)


def test_workspaces_use_osqp_s_default_algebra(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    """The backend found once is the one ``osqp.OSQP()`` would pick on each call."""
    import osqp

    clear_cache()
    rebalance(sample_config, sample_prices)
    assert _workspaces._cache
    for workspace in _workspaces._cache.values():
        assert workspace.solver.algebra == osqp.OSQP().algebra == _workspaces._algebra()


def test_fractional_requests_keep_no_workspace(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    """A fractional request solves in a throwaway workspace: a batch of them (each its own) leaves
    the kept workspaces of whole-share requests where they were, warm for the next request."""
    clear_cache()
    rebalance(sample_config, sample_prices)
    kept = dict(_workspaces._cache)
    assert kept
    fractional = sample_config.model_copy(update={"allow_fractional_shares": True})
    for k in range(40):
        rebalance(fractional, sample_prices * (1 + k / 1000))
    assert dict(_workspaces._cache) == kept
    hits = _workspaces.native_cache_info()["hits"]
    rebalance(sample_config, sample_prices * 1.01)
    assert _workspaces.native_cache_info()["hits"] > hits


def _record_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Record each call of the solver function ``name`` as the solver policy makes it."""
    calls: list[str] = []
    original = getattr(_solvers, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(f"finwiz.optimizer.solve._solve.{name}", recording)
    return calls


def test_cold_solve_out_of_admm_iterations_is_answered_by_clarabel_and_polished(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold OSQP solve stops at ``COLD_ITERATIONS`` (binding limits can take ADMM thousands);
    Clarabel answers, OSQP polishes its point, and the workspace is warm for the next request:
    the same trades as an unlimited ADMM, and the next solve is OSQP's, from the warm start."""
    clear_cache()
    expected = rebalance(sample_config, sample_prices)
    clear_cache()
    monkeypatch.setattr(_solvers, "COLD_ITERATIONS", 1)
    calls = _record_calls(monkeypatch, "solve_clarabel")
    got = rebalance(sample_config, sample_prices)
    assert calls == ["solve_clarabel"]  # the first, cold solve only
    assert got.solver == "OSQP"  # Clarabel's point, polished by OSQP
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in expected.trades]
    assert got.objective_value == pytest.approx(expected.objective_value, rel=1e-9)
    warm = rebalance(sample_config, sample_prices * 1.01)
    assert calls == ["solve_clarabel"]  # warm: ADMM from the kept workspace, no interior point
    assert warm.solver == "OSQP"


def test_terms_without_native_form_are_solved_through_cvxpy(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    engine = RebalancingEngine()
    engine.strategies["cvxpy_only"] = [*engine.strategies["minimize_costs"].terms(None), CvxpyTurnoverPenalty(1e-4)]  # type: ignore[arg-type]
    engine.strategies["native"] = [*engine.strategies["minimize_costs"].terms(None), TurnoverPenaltyTerm(1e-4)]  # type: ignore[arg-type]
    via_cvxpy = engine.rebalance(sample_config.model_copy(update={"method": "cvxpy_only"}), sample_prices)
    via_native = engine.rebalance(sample_config.model_copy(update={"method": "native"}), sample_prices)
    assert via_cvxpy.objective_value == pytest.approx(via_native.objective_value, rel=1e-7)
    assert via_cvxpy.post_trade_holdings == via_native.post_trade_holdings


def test_structure_where_polishing_fails_goes_to_the_interior_point_solver(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where polishing cannot hold a structure's bounds (2000 assets, zero costs), its requests
    skip OSQP from then on, and a repeated request still gets the same trades."""
    clear_cache()
    monkeypatch.setattr(_solvers, "POLISHED_RESIDUAL", -1.0)  # every polished point refused
    first = rebalance(sample_config, sample_prices)
    assert first.solver == "CLARABEL"
    data = build_problem_data(sample_config, sample_prices)
    qp = native_qp(terms_for(sample_config, data, []))
    assert qp is not None
    keys = list(_workspaces._cache)
    assert [_workspaces.plan(qp, key) for key in keys] == ["interior"] * len(keys)
    calls = _record_calls(monkeypatch, "solve_osqp")
    again = rebalance(sample_config, sample_prices)
    assert calls == []
    assert [t.model_dump() for t in again.trades] == [t.model_dump() for t in first.trades]


def test_builtin_terms_never_import_cvxpy() -> None:
    """A request of built-in terms is solved without cvxpy, so it is not even imported (see _lazy)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from finwiz import PortfolioConfiguration, rebalance\n"
        "config = PortfolioConfiguration(holdings=[{'symbol': 'A', 'shares': 1000}, {'symbol': 'B', 'shares': 500}],\n"
        "    target_weights={'A': 0.3, 'B': 0.6}, cash=10000.0, method='minimize_trades', max_turnover=0.5)\n"
        "result = rebalance(config, {'A': 10.0, 'B': 20.0})\n"
        "assert result.trades, result\n"
        "print('cvxpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dense_covariance_on_explicit_weights_equals_the_cvxpy_form() -> None:
    """With as many factors as assets the factor rows become a dense block of P on explicit weights
    (``_qp_build._weight_rows``); objective, limits and optimum still match the cvxpy form."""
    rng = np.random.default_rng(7)
    n = 80
    symbols = [f"D{i:02d}" for i in range(n)]
    returns = rng.normal(0, 0.01, (120, n))
    covariance = pd.DataFrame(np.cov(returns.T), index=symbols, columns=symbols)
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, rng.integers(1, 50, n), strict=True)],
        target_weights=dict(zip(symbols, (rng.dirichlet(np.ones(n)) * 0.97).tolist(), strict=True)),
        cash=2_000.0,
        method="risk_aware",
        tolerance=0.0,
        transaction_cost_rate=0.001,
        sectors={s: f"S{i % 4}" for i, s in enumerate(symbols)},
        max_sector_weight=0.3,
        max_turnover=0.4,
    )
    prices = dict(zip(symbols, rng.uniform(10, 200, n).tolist(), strict=True))
    data = build_problem_data(config, prices, covariance=covariance)
    assert data.factor_root is not None
    assert data.factor_root.shape[1] >= 64  # many factors: the dense-block form
    model = terms_for(config, data, [])
    qp = native_qp(model)
    assert qp is not None
    assert qp.dense_w is not None
    buy = rng.uniform(0, 0.02, n)
    sell = np.minimum(rng.uniform(0, 0.02, n), data.x0)
    assembled = assemble(model)
    with assembled.lock:
        assembled.set_values(model, model.stacked())
        assembled.place(buy, sell, 0.001, data.x0)
        expected = float(assembled.problem.objective.value) / OBJECTIVE_SCALE
        reference = solve(assembled, "CLARABEL")
    assert qp.objective_at_trades(buy, sell, 0.001) == pytest.approx(expected, rel=1e-9)
    got = solve_terms(model)
    assert got.objective == pytest.approx(reference.objective, rel=1e-7)
    assert np.max(np.abs(got.trades - reference.trades)) < 1e-6


def test_kkt_check_ignores_noise_on_an_infinite_bound(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    """OSQP leaves multipliers of ~1e-18 on rows whose bound on that side is infinite; such a
    point is still an optimum (the noise times an infinite slack is no complementarity gap)."""
    qp, z, y = _clarabel_answer(sample_config, sample_prices)
    open_above = np.flatnonzero(~np.isfinite(qp.upper) & (np.abs(y) < 1e-16))  # inactive below too
    assert open_above.size
    y[open_above[0]] = 1e-18
    assert _solvers.kkt_certified(qp, z, y)


def test_a_netting_region_is_answered_by_admm_where_its_polish_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A netting region's QP is degenerate (its row prices the sells; hundreds of bounds hold with
    no multiplier) and OSQP's polish fails on it: the ADMM point at the tightest tolerance,
    clipped into its trades' bounds, keeps every row and is certified, so Clarabel is not called
    for most solves (10 of 15 native solves before)."""
    from tests.optimizer.tax.reference import random_instance

    inst = random_instance(0, assets=(5, 8), lots=(2, 4), tax_weight=1.0)
    inst = inst.with_(tax_model="netting", realized_short_ytd=8_000.0, realized_long_ytd=3_000.0)
    clear_cache()
    calls = _record_calls(monkeypatch, "solve_clarabel")
    result = rebalance(inst.config(), inst.price_map())
    solves = sum(s.solver_calls for s in result.stages)
    # 10 solves before each fixed asset's climb started on its net sale's lot (5 now, the same trades)
    assert solves >= 5
    assert len(calls) <= 2  # the cold relaxation's (again with refinement: the region's polish fails)


def test_a_warm_solve_is_capped_by_iterations_never_by_a_clock(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guarantee 6: which solver answers a warm request must not depend on how long the interior
    solver took on this machine (its ``solve_time``: a clock). With Clarabel's time reported as
    a microsecond or as a minute, the warm ADMM solve gets the same settings and the same answer."""
    monkeypatch.setattr(_solvers, "COLD_ITERATIONS", 1)  # the cold solve is Clarabel's, polished
    original = _solvers.solve_clarabel
    seen: dict[float, tuple[list[Any], Any]] = {}
    for seconds in (1e-6, 60.0):

        def clocked(qp: Any, time_limit: float, refine: bool = True, *, seconds: float = seconds) -> Any:
            return dataclasses.replace(original(qp, time_limit, refine=refine), seconds=seconds)

        monkeypatch.setattr("finwiz.optimizer.solve._solve.solve_clarabel", clocked)
        clear_cache()
        rebalance(sample_config, sample_prices)
        settings: list[Any] = []
        for workspace in _workspaces._cache.values():
            tune = workspace.tune  # every ADMM solve's tolerance and cap (OSQP is told only of changes)

            def recording(eps: float, cap: int, tune: Any = tune, settings: list[Any] = settings) -> Any:
                settings.append((eps, cap))
                return tune(eps, cap)

            workspace.tune = recording  # type: ignore[method-assign]
        warm = rebalance(sample_config, sample_prices * 1.01)
        seen[seconds] = (settings, [t.model_dump() for t in warm.trades])
    assert seen[1e-6][0]  # the warm solve ran ADMM on a kept workspace
    assert seen[1e-6] == seen[60.0]
