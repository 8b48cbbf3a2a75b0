"""The side fixing's start (``_sides._start_sides``) and the side margin (``side_margin``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from finwiz.optimizer.discrete._rounding import side_margin
from finwiz.optimizer.solve._qp import ladder_of
from finwiz.optimizer.solve._solve import solve_terms
from finwiz.optimizer.tax._order import relaxation
from finwiz.optimizer.tax._sides import _both, _start_sides, _with_sides, fix_sides
from tests.optimizer.tax.reference import random_instance
from tests.optimizer.tax.test_bound import _linear_model


def _margin_one_by_one(model: Any, buy: np.ndarray, sell: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """``side_margin``'s quadratic model asset by asset, on a fine grid of sales (not its trial points)."""
    data, lots = model.data, model.data.lots
    squares = model.stacked(continuous=False).squares
    cols = squares.cols.astype(np.int64)
    norm = np.bincount(np.where((cols >= 0) & (cols < data.n), cols, data.n), squares.vals**2, data.n + 1)
    out = np.zeros(data.n)
    for i in np.flatnonzero(assets):
        curve, u = 2.0 * norm[i], buy[i] - sell[i]
        held = lots.shares[i][lots.shares[i] > 0].sum()
        grid = np.linspace(0.0, held, 20001)  # shares sold
        _, tax, _ = lots.relief(grid, np.full(len(grid), i))
        sold = grid * data.prices[i] / data.ref_value
        selling = np.min(0.5 * curve * (sold + u) ** 2 + lots.tax_weight * tax / data.ref_value)
        out[i] = selling - 0.5 * curve * min(u, 0.0) ** 2
    return out


def _relaxed(seed: int) -> tuple[Any, Any, np.ndarray]:
    inst = random_instance(seed, assets=(8, 14), lots=(2, 5), tax_weight=(1.0, 0.1)[seed % 2])
    model, first = relaxation(_linear_model(inst), "auto", 30.0)
    both = _both(model.data, first)
    if not both.any():
        pytest.skip("no asset both bought and sold by the relaxation")
    return model, first, both


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_the_side_margin_is_the_quadratic_models_minimum_over_every_sale(seed: int) -> None:
    """Every asset at once, as each alone on a fine grid of sales (the model is convex and piecewise
    smooth: its trial points reach the grid's minimum or below it, never above by more than the grid step)."""
    model, first, both = _relaxed(seed)
    margin = side_margin(model, first.buy, first.sell, both)
    grid = _margin_one_by_one(model, first.buy, first.sell, both)
    assert np.all(margin[~both] == 0.0)
    assert np.all(margin[both] <= grid[both] + 1e-15)
    assert np.allclose(margin[both], grid[both], rtol=1e-3, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_a_fixed_asset_starts_on_its_net_sales_lot_and_the_sides_optimum_is_kept(seed: int) -> None:
    """``_start_sides``: an asset fixed to sell only starts on the lot that holds its net sale, one
    fixed to buy only on its first, the others where they were; the first round starts ADMM from the
    relaxation's answer traded net on each fixed side (the others as they were). The side-fixed
    answer is the one a climb from every first lot reaches."""
    model, first, both = _relaxed(seed)
    ladder = ladder_of(next(d.tax for d in model.described if d.tax is not None), model.data.n)
    before = ladder.settled.segments.copy()
    sells = both & (first.sell >= first.buy)
    candidate = _with_sides(model, sells, both & ~sells)
    _start_sides(candidate, first, sells, first_round=True)
    start = ladder.settled.segments
    net = ladder.containing(np.maximum(first.sell - first.buy, 0.0))
    assert np.array_equal(start[sells], net[sells])
    assert np.all(start[both & ~sells] == 0)
    assert np.array_equal(start[~both], before[~both])
    assert ladder.settled.start is not None
    buy, sell, cost, y = ladder.settled.start
    traded = first.buy - first.sell
    assert np.array_equal(buy[sells], np.zeros(sells.sum()))
    assert np.array_equal(sell[sells], -traded[sells])
    buys = both & ~sells
    assert np.array_equal(sell[buys], np.zeros(buys.sum()))
    assert np.array_equal(buy[buys], traded[buys])
    assert np.array_equal(buy[~both], first.buy[~both])
    assert np.array_equal(sell[~both], first.sell[~both])
    assert cost == first.cost
    assert y is ladder.settled.y
    warm = solve_terms(candidate, "auto", per_lot=False)
    assert ladder.settled.start is None  # taken once
    assert warm.attempts[0] == "OSQP"
    fresh = candidate.with_data(candidate.data)
    ladder_of(next(d.tax for d in fresh.described if d.tax is not None), fresh.data.n).settled.segments = None
    assert warm.objective == pytest.approx(solve_terms(fresh, "CLARABEL").objective, rel=1e-6, abs=1e-12)
    sided = fix_sides(
        _linear_model(random_instance(seed, assets=(8, 14), lots=(2, 5), tax_weight=(1.0, 0.1)[seed % 2])), "auto", 30.0
    )
    cold = sided.model.with_data(sided.model.data)
    ladder_cold = ladder_of(next(d.tax for d in cold.described if d.tax is not None), cold.data.n)
    ladder_cold.settled.segments = None
    again = solve_terms(cold, "CLARABEL")
    assert again.objective == pytest.approx(sided.outcome.objective, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("seed", [3, 23])
def test_close_calls_flipped_together_reach_the_one_at_a_time_answer_in_fewer_solves(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Books where several close calls gain: flipped in one solve, the side fixing ends where
    trying them one at a time ends, with fewer solves; and no single fixed asset's flip improves
    that answer (each flip's optimum with one variable per lot, cvxpy)."""
    from finwiz.optimizer.tax import _sides
    from tests.optimizer.tax.test_bound import _per_lot_optimum

    inst = random_instance(seed, assets=(8, 14), lots=(2, 5), tax_weight=1.0)
    solves: list[int] = []
    real = _sides.toward_region

    def counted(*args: Any, **kwargs: Any) -> Any:
        solves.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_sides, "toward_region", counted)
    together = fix_sides(_linear_model(inst), "auto", 30.0)
    with_batch = len(solves)
    solves.clear()

    def one_at_a_time(self: Any, solver: str, limit: float) -> bool:
        if not self.fresh:
            self._bound()
        return False

    monkeypatch.setattr(_sides._Flips, "at_once", one_at_a_time)
    alone = fix_sides(_linear_model(inst), "auto", 30.0)
    assert with_batch < len(solves)
    assert together.outcome.objective == pytest.approx(alone.outcome.objective, rel=1e-9, abs=1e-12)
    current = together.model
    sides = current.data.blocked["tax_sells_only"]
    for i in np.flatnonzero(together.fixed):
        flip = np.zeros(current.data.n, bool)
        flip[i] = True
        optimum = _per_lot_optimum(_with_sides(current, flip & ~sides, flip & sides, flip))
        if optimum is not None:
            assert optimum >= together.outcome.objective - 1e-7 * max(abs(optimum), 1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_the_first_climb_starts_admm_at_the_target_and_reaches_the_per_lot_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A taxable account's first solve starts ADMM from trading straight to the target (no
    multipliers), taken once; the relaxation it climbs to is the optimum with one variable per lot
    (cvxpy)."""
    from finwiz.optimizer.solve import _solve
    from tests.optimizer.tax.test_bound import _per_lot_optimum

    model = _linear_model(random_instance(seed, assets=(8, 14), lots=(2, 5), tax_weight=(1.0, 0.1)[seed % 2]))
    given: list[Any] = []
    real = _solve._ladder_start

    def seen(qp: Any, route: str) -> Any:
        given.append(qp.ladder.settled.start)
        return real(qp, route)

    monkeypatch.setattr(_solve, "_ladder_start", seen)
    relaxed, first = relaxation(model, "auto", 30.0)
    buy, sell, cost, y = given[0]
    data = model.data
    assert np.array_equal(buy - sell, data.target - data.x0)
    assert np.all(np.minimum(buy, sell) == 0.0)
    assert cost == 0.0
    assert y is None
    assert all(start is None for start in given[1:])  # taken once
    optimum = _per_lot_optimum(relaxed)
    assert optimum is not None
    assert first.objective == pytest.approx(optimum, rel=1e-6, abs=1e-12)


def test_a_taxable_climbs_admm_stops_where_a_cold_solve_would_unless_the_interior_solver_priced_it() -> None:
    """``_solvers._budget``: a taxable QP's warm ADMM (its own start, or a workspace Clarabel never
    answered) gets no more iterations than a cold solve before Clarabel answers; a tax-blind one
    keeps the warm cap; a priced workspace its interior solver's worth."""
    from types import SimpleNamespace

    from finwiz.optimizer.solve._solvers import ADMM_PER_INTERIOR_ITERATION, COLD_ITERATIONS, _budget
    from finwiz.optimizer.solve._workspaces import OSQP_SETTINGS

    unpriced = SimpleNamespace(solved=True, stalled=False, interior_iterations=None)
    assert _budget(unpriced, False, taxable=True) == COLD_ITERATIONS
    assert _budget(unpriced, True, taxable=True) == COLD_ITERATIONS
    assert _budget(unpriced, False, taxable=False) == OSQP_SETTINGS["max_iter"]
    priced = SimpleNamespace(solved=True, stalled=False, interior_iterations=30)
    assert _budget(priced, False, taxable=True) == ADMM_PER_INTERIOR_ITERATION * 30
