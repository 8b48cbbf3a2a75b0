"""A netting region's Lagrangian bound (``optimizer/tax/_bound``): below the region's optimum over
every choice of lots, computed independently (the cvxpy problem with one variable per lot), for
the multipliers of any region's solve; and the search over regions
that uses it relaxes fewer regions than it has, with answers still within the MIQP's 0.5 %
(``test_netting.py``)."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pytest

from finwiz.optimizer import rebalance
from finwiz.optimizer.solve._assembler import assemble
from finwiz.optimizer.solve._qp import ladder_of
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, solve
from finwiz.optimizer.tax import _regions
from finwiz.optimizer.tax._bound import _REACH, _assets, _Cuts, lagrangian_bound
from finwiz.optimizer.tax._order import relaxation
from tests.optimizer.tax.reference import random_instance
from tests.optimizer.tax.test_netting import NETTING, _region_models

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _per_lot_optimum(region: Any) -> float | None:
    """The region's optimum with one variable per lot (cvxpy), None when it has no point."""
    assembled = assemble(region)
    try:
        with assembled.lock:
            assembled.set_values(region, region.stacked())
            return float(solve(assembled).objective)
    except ProvenInfeasibleError:
        return None


def _multipliers(region: Any) -> tuple[Any, np.ndarray] | None:
    """The QP and multipliers of ``region``'s native relaxation (None: not solved natively)."""
    try:
        relaxed, _ = relaxation(region, "auto", 30.0)
    except ProvenInfeasibleError:
        return None
    form = next(d.tax for d in relaxed.described if d.tax is not None)
    settled = ladder_of(form, relaxed.data.n).settled
    return None if settled.qp is None or settled.y is None else (settled.qp, settled.y)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("kind", list(NETTING))
def test_the_bound_is_below_every_regions_optimum_whoever_gave_its_multipliers(kind: str, seed: int) -> None:
    inst = random_instance(seed, assets=(6, 12), lots=(2, 5), tax_weight=(1.0, 0.1)[seed % 2])
    regions = _region_models(inst.with_(tax_model="netting", **NETTING[kind]))
    optima = [_per_lot_optimum(r) for r in regions]
    duals = [_multipliers(r) for r in _region_models(inst.with_(tax_model="netting", **NETTING[kind]))]
    checked = 0
    for a, region in enumerate(regions):
        if optima[a] is None:
            continue
        for dual in duals:
            if dual is None:
                continue
            bound = lagrangian_bound(region, *dual)
            assert bound is not None
            scale = max(abs(optima[a]), 1e-6)
            assert bound <= optima[a] + 1e-7 * scale
            checked += 1
    assert checked


def test_the_kept_master_lp_answers_as_scipys_linprog_from_scratch() -> None:
    """``_Cuts``: Kelley's master LP kept in one HiGHS model, a row added per cut, has the optimum
    (value and point) of scipy's ``linprog`` solving the whole cut set from scratch."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(3)
    for _ in range(60):
        k = int(rng.integers(1, 4))
        cuts, rows, rhs = _Cuts(k), [], []
        for _ in range(6):
            grad, bound = rng.normal(size=k), float(rng.normal())
            rows.append(np.append(-grad, 1.0))
            rhs.append(bound)
            found = cuts.add(grad, bound)
            lp = linprog(
                np.append(np.zeros(k), -1.0), A_ub=np.array(rows), b_ub=rhs, bounds=[(0, _REACH)] * k + [(None, None)]
            )
            assert found is not None
            assert found[1] == pytest.approx(-lp.fun, rel=1e-9, abs=1e-9)
            assert found[0] == pytest.approx(lp.x[:k], abs=1e-7)


def test_each_asset_piece_is_the_minimum_over_a_fine_grid() -> None:
    """``_assets``: the per-asset minimum (a quadratic in buy minus sell, a convex piecewise-linear
    price of the sell) equals a brute-force grid's, sell floors and unbounded buys included."""
    rng = np.random.default_rng(7)
    for _ in range(100):
        n, k = 4, 4
        c = rng.uniform(0, 2, n) * (rng.random(n) > 0.2)
        alpha = rng.normal(0, 1, n)
        buy_high = np.where(rng.random(n) > 0.5, rng.uniform(0, 2, n), np.inf)
        caps = rng.uniform(0, 1, (n, k)) * (rng.random((n, k)) > 0.2)
        price = np.sort(rng.normal(0, 1, (n, k)), axis=1)
        high = caps.sum(1) * rng.uniform(0.3, 1.0, n)
        low = high * rng.uniform(0, 1, n) * (rng.random(n) > 0.5)
        got = float(_assets(c, alpha, (np.zeros(n), buy_high), (low, high), price, caps)[0].sum())
        grid = 0.0
        for i in range(n):
            s = np.linspace(low[i], high[i], 4001)
            starts = np.cumsum(caps[i]) - caps[i]
            h = (price[i] * np.clip(s[:, None] - starts, 0, caps[i])).sum(1)
            top = min(buy_high[i], 1e3)
            b = (
                np.clip(s - alpha[i] / max(c[i], 1e-300), 0.0, top)
                if c[i] > 0
                else np.full_like(s, top * (alpha[i] <= 0))
            )
            grid += float((0.5 * c[i] * (b - s) ** 2 + alpha[i] * b + h).min())
        assert got <= grid + 1e-12
        assert got >= grid - 1e-3  # the grid's spacing


def test_the_search_relaxes_only_the_regions_its_bounds_leave_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a 30-asset book with a loss carried forward (five regions reachable), the answers of the
    first two regions relaxed leave the other regions' Lagrangian bounds above them."""
    relaxed: list[str] = []
    original = _regions._bounded

    def counting(region: Any, *args: Any) -> Any:
        relaxed.append(region.data.lots.region.name)
        return original(region, *args)

    monkeypatch.setattr(_regions, "_bounded", counting)
    inst = random_instance(1, assets=(30, 30), lots=(2, 4), tax_weight=0.1)
    inst = inst.with_(tax_model="netting", **NETTING["carry_forward"])
    reachable = len(_region_models(inst))
    rebalance(inst.config(), inst.price_map())
    assert reachable == 5
    assert len(relaxed) <= 2


def _linear_model(inst: Any) -> Any:
    from finwiz.optimizer._engine import _applicable, _with_constraints, default_engine
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.solve._assembler import Model

    config = inst.config()
    data = build_problem_data(config, inst.price_map())
    terms = default_engine().strategies[config.method].terms(data)
    return Model.of(_applicable(list(_with_constraints(terms)), data), data)


@pytest.mark.parametrize("model_kind", ["netting", "linear"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_a_side_flips_bound_is_below_the_flipped_optimum(seed: int, model_kind: str) -> None:
    """``flip_bounds``: for every asset the side rule fixed, the bound of putting it on its other
    side is below the optimum of that problem with one variable per lot (cvxpy, independent of the
    native ladder); so skipping the flips whose bound does not beat the answer loses none."""
    from finwiz.optimizer.solve._solve import native_qp
    from finwiz.optimizer.tax._bound import flip_bounds
    from finwiz.optimizer.tax._sides import _with_sides, fix_sides

    inst = random_instance(seed, assets=(8, 14), lots=(2, 5), tax_weight=(1.0, 0.1)[seed % 2])
    inst = inst.with_(tax_model=model_kind, **NETTING["harvest_to_the_limit"])
    model = _region_models(inst)[0] if model_kind == "netting" else _linear_model(inst)
    sided = fix_sides(model, "auto", 30.0)
    fixed = np.flatnonzero(sided.fixed)
    if not len(fixed):
        pytest.skip("no asset both bought and sold by the relaxation")
    free = native_qp(sided.relaxed, np.zeros(model.data.n, dtype=np.int64))
    assert free is not None
    current = sided.model
    sides = current.data.blocked["tax_sells_only"]
    bounds = flip_bounds(current, free, fixed)
    assert bounds is not None
    for bound, i in zip(bounds, fixed, strict=True):
        flip = np.zeros(model.data.n, bool)
        flip[i] = True
        optimum = _per_lot_optimum(_with_sides(current, flip & ~sides, flip & sides, flip))
        if optimum is not None:
            assert bound <= optimum + 1e-7 * max(abs(optimum), 1e-6)


def test_an_account_without_lots_is_bounded_and_rebalanced() -> None:
    """An account in cash (no lot yet: the first rebalance of a backtest) under netting: the
    Lagrangian bound has no lot to price and the rebalance buys in (it raised before)."""
    from datetime import date

    from finwiz import Holding, PortfolioConfiguration, TaxSettings

    symbols = ["AAA", "BBB", "CCC"]
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=0.0) for s in symbols],
        target_weights=dict.fromkeys(symbols, 0.3),
        cash=100_000.0,
        tolerance=0.0,
        tax=TaxSettings(as_of=date(2024, 1, 2), short_term_rate=0.37, long_term_rate=0.2, tax_model="netting"),
    )
    result = rebalance(config, {"AAA": 10.0, "BBB": 20.0, "CCC": 50.0})
    assert {t.symbol for t in result.trades} == set(symbols)
    assert all(t.action.value == "buy" for t in result.trades)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["harvest_to_the_limit", "short_carry_over"])
def test_the_side_rule_bound_is_below_every_side_patterns_optimum(kind: str, seed: int) -> None:
    """``one_side=True``: the bound of the answers that never buy and sell one asset is below the
    best of every side pattern's optimum (each asset selling only or buying only, all 2^n
    enumerated, each solved with one variable per lot through cvxpy): a valid bound of that
    non-convex problem, and above the relaxation's Lagrangian bound."""
    import itertools

    from finwiz.optimizer.tax._sides import _with_sides

    inst = random_instance(seed, assets=(4, 5), lots=(2, 3), tax_weight=(1.0, 0.1)[seed % 2])
    inst = inst.with_(tax_model="netting", **NETTING[kind])
    regions = _region_models(inst)
    duals = [d for d in (_multipliers(r) for r in _region_models(inst)) if d is not None]
    assert duals
    n = regions[0].data.n
    checked = 0
    for region in regions:
        optima = []
        for pattern in itertools.product([False, True], repeat=n):
            sells = np.array(pattern)
            optimum = _per_lot_optimum(_with_sides(region, sells, ~sells))
            if optimum is not None:
                optima.append(optimum)
        if not optima:
            continue
        best = min(optima)
        for dual in duals:
            sided = lagrangian_bound(region, *dual, one_side=True)
            relaxed = lagrangian_bound(region, *dual)
            assert sided is not None
            assert relaxed is not None
            assert sided <= best + 1e-7 * max(abs(best), 1e-6)
            # (each found by its own ascent, which may stop short: 1e-11 absolute where the optimum is ~0)
            assert sided >= relaxed - 1e-6 * abs(relaxed) - 1e-11
            checked += 1
    assert checked


def test_the_parts_by_lot_count_cover_every_asset_once_and_split_a_skewed_book() -> None:
    from finwiz.optimizer.tax._bound import _by_count

    counts = np.random.default_rng(0).geometric(0.2, 431)  # most assets few lots, some many
    parts = _by_count(counts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(431))
    assert len(parts) > 1
    cells = sum(len(p) * (counts[p].max() + 1) for p in parts)
    assert cells < 0.7 * 431 * (counts.max() + 1)


def _built(monkeypatch: pytest.MonkeyPatch, qp: Any, given: Any, parts: Any) -> Any:
    """``given``'s Lagrangian again, its assets in ``parts`` (``_by_count``'s stand-in)."""
    from finwiz.optimizer.tax import _bound

    monkeypatch.setattr(_bound, "_by_count", parts)
    monkeypatch.setattr(_bound, "_LAYOUTS", weakref.WeakKeyDictionary())  # not the kept layout
    out = _bound._Dual(qp, given.buy, given.sell, given.lot_price, given.rest)
    monkeypatch.undo()
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_assets_split_by_lot_count_give_what_one_padded_block_gives(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_Dual`` pads each part of the assets to its own most lots: each asset's minimum and sell
    are those of one block padded to the account's most lots (with and without the side rule),
    and of a few assets priced alone; the slope agrees to rounding."""
    from finwiz.optimizer.tax import _bound

    inst = random_instance(seed, assets=(40, 40), lots=(1, 14), tax_weight=0.1)
    regions = _region_models(inst.with_(tax_model="netting"))
    dual = next(d for d in map(_multipliers, regions) if d is not None)
    rng = np.random.default_rng(seed)
    checked = 0
    for region in regions:
        found = _bound._dual_at(region, *dual)
        if found is None:
            continue
        qp, given = found
        whole = _built(monkeypatch, qp, given, lambda count: [np.arange(len(count))])
        split = _built(
            monkeypatch,
            qp,
            given,
            lambda count: [
                np.flatnonzero(count <= 3),
                np.flatnonzero((count > 3) & (count <= 8)),
                np.flatnonzero(count > 8),
            ],
        )
        assert split.parts[0].width < whole.parts[0].width  # fewer padded cells
        for one_side in (False, True):
            split.one_side = whole.one_side = one_side
            for _ in range(3):
                lam = rng.uniform(0.0, 2.0, len(given.ladder.region)) * float(qp.tax_terms.price[0])
                (v1, s1, _), (v2, s2, _) = split._solve(lam, None), whole._solve(lam, None)
                assert np.array_equal(v1, v2)
                assert np.array_equal(s1, s2)
                picked = rng.permutation(qp.n)[: max(1, qp.n // 4)]  # flip_bounds' few assets, priced alone
                assert np.array_equal(whole.assets(lam, None, picked), v2[picked])
                (a, slope_a), (b, slope_b) = split.value_and_slope(lam), whole.value_and_slope(lam)
                assert a == b
                np.testing.assert_allclose(slope_a, slope_b, rtol=1e-9, atol=1e-12)
                checked += 1
    assert checked
