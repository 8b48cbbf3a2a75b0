"""Whole shares on small accounts, checked against an independent model (``reference.py``,
written from the README): its objective reproduces finwiz's, finwiz's trades keep its limits, no
single move nor two-asset exchange of one lot each improves them, and small cases reach SCIP's
optimum."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz import RebalancingEngine, rebalance
from finwiz.settings import RebalancingSettings
from tests.optimizer.discrete.reference import (
    Instance,
    config_of,
    from_cash,
    generate,
    objective,
    single_and_pair_gains,
    solve_miqp,
    triple_gain,
    violations,
)

pytest.importorskip("pyscipopt")


def _shares(inst: Instance, result: object) -> np.ndarray:
    index = {s: i for i, s in enumerate(inst.symbols)}
    shares = np.zeros(inst.n)
    for t in result.trades:  # type: ignore[attr-defined]
        shares[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    return shares


@pytest.mark.parametrize("seed", [1, 3, 4, 6, 9])
def test_reference_objective_is_finwiz_objective(seed: int) -> None:
    inst = generate(seed)
    config, prices = config_of(inst)
    result = rebalance(config, prices)
    shares = _shares(inst, result)
    assert violations(inst, shares) == []
    assert objective(inst, shares) == pytest.approx(result.objective_value, rel=1e-12)


# Seeds whose default answer one more lot (3: by 0.17 %, 8) or an exchange of two lots (9: 3.6 %,
# 14, 20, 21, 24) improved before the whole-share search; 5 and 10 for breadth; both strategies.
@pytest.mark.parametrize("seed", [3, 8, 9, 14, 20, 21, 24, 5, 10])
def test_no_single_move_or_exchange_improves(seed: int) -> None:
    inst = generate(seed)
    config, prices = config_of(inst)
    shares = _shares(inst, rebalance(config, prices))
    gain, move = single_and_pair_gains(inst, shares)
    assert gain <= 1e-9, f"{move} improves the answer by {gain:.3%}"


# 6 and 12: the default strategy (trade count) 7.6 % and 1.8 % above SCIP's proof before the
# value-matched steps and the combinations of a few assets (five assets change in 6's optimum).
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 6, 8, 9, 11, 12])
def test_small_cases_reach_the_miqp_optimum(seed: int) -> None:
    inst = generate(seed, n=15)
    config, prices = config_of(inst)
    ours = objective(inst, _shares(inst, rebalance(config, prices)))
    best = solve_miqp(inst, time_limit=30.0)
    # SCIP proves these in about a second alone; in a long process it has stopped at its limit
    # unproven (seed 1, once). Its best answer and its dual bound still hold finwiz to account.
    assert ours >= best.bound - 1e-3 * abs(best.bound)  # no answer beats SCIP's bound (to its tolerance)
    assert ours <= best.objective * 1.005 + 1e-15


# 6 (by 1.1 %) and 15 had an improving exchange of one lot each of three assets before the
# three-asset exchanges; 1 and 10 for breadth (both strategies).
@pytest.mark.parametrize("seed", [6, 15, 1, 10])
def test_no_three_asset_exchange_improves(seed: int) -> None:
    inst = generate(seed, n=15)
    config, prices = config_of(inst)
    shares = _shares(inst, rebalance(config, prices))
    gain, move = triple_gain(inst, shares)
    assert gain <= 1e-9, f"{move} improves the answer by {gain:.3%}"


# Start from cash (PyPortfolioOpt's case): 1 was 0.94 % and 7 0.27 % above SCIP's proven optimum
# before the three-asset exchanges and the wider windows.
@pytest.mark.parametrize("seed", [1, 7])
def test_start_from_cash_reaches_the_miqp_optimum(seed: int) -> None:
    inst = from_cash(seed)
    config, prices = config_of(inst)
    ours = objective(inst, _shares(inst, rebalance(config, prices)))
    best = solve_miqp(inst, time_limit=30.0)
    assert ours >= best.bound - 1e-3 * abs(best.bound)
    assert ours <= best.objective * 1.001 + 1e-15


def test_a_search_stopped_by_its_budget_says_so() -> None:
    inst = generate(2)
    config, prices = config_of(inst)
    engine = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=1e-9))
    result = engine.rebalance(config, prices)
    assert any("stopped at its budget" in w for w in result.warnings)
    assert any("stopped at its budget" in s.note for s in result.stages if s.name == "whole_shares")
    assert violations(inst, _shares(inst, result)) == []


@pytest.mark.parametrize("seed", [6, 12])
def test_every_answer_reports_a_valid_bound_and_its_source(seed: int) -> None:
    inst = generate(seed, n=15)
    config, prices = config_of(inst)
    best = solve_miqp(inst, time_limit=30.0)
    default = rebalance(config, prices)
    exact = rebalance(config, prices, exact=True)
    for result in (default, exact):
        assert result.objective_bound is not None
        assert result.objective_bound_gap is not None
        assert result.objective_bound <= best.objective * (1 + 1e-6)  # a lower bound on the optimum
        assert result.objective_bound_gap == pytest.approx(result.objective_value - result.objective_bound)
    assert default.objective_bound_source == "continuous"
    assert default.objective_bound == default.continuous_objective
    # Exact mode's dual bound is far above the continuous one on these small accounts.
    assert exact.objective_bound_source == "exact_mip"
    assert exact.objective_bound > exact.continuous_objective
    # ... closing most of the continuous bound's gap to the optimum (even when stopped unproven).
    assert best.objective - exact.objective_bound <= 0.1 * (best.objective - exact.continuous_objective)
