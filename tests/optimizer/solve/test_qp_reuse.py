"""A re-solve of the same rebalance reuses the native QP base of the model it re-solves
(``_qp_build``): the QP it gets is the one a fresh build gives, entry for entry, and the base
lives as long as the models that use it."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from finwiz import PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine, build_problem_data, clear_cache, rebalance
from finwiz.optimizer.describe._limits import TradeBoundsTerm, constraint_terms
from finwiz.optimizer.describe._model import LimitGroup
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import NativeQP
from finwiz.optimizer.solve._qp_build import _bounds, trade_bounds
from finwiz.optimizer.solve._solve import native_qp

SYMBOLS = [f"A{i}" for i in range(8)]
PRICES = {s: 10.0 + 7 * i for i, s in enumerate(SYMBOLS)}


def _config(sector_cap: float) -> PortfolioConfiguration:
    return PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": 40 + 13 * i} for i, s in enumerate(SYMBOLS)],
        target_weights={s: 0.95 / len(SYMBOLS) for s in SYMBOLS},
        cash=500.0,
        sectors={s: f"S{i % 3}" for i, s in enumerate(SYMBOLS)},
        max_sector_weight=sector_cap,
        max_turnover=0.2,
        transaction_cost_rate=0.001,
        method="minimize_trades",
    )


def _model() -> Model:
    config = _config(0.4)
    data = build_problem_data(config, PRICES)
    terms = [*RebalancingEngine().strategies[config.method].terms(data), *constraint_terms()]
    return Model.of([t for t in terms if t.applies(data)], data)


def _fresh(model: Model) -> NativeQP:
    qp = native_qp(Model(model.terms, model.data, model.descriptions))  # no base to start from
    assert qp is not None
    return qp


def _assert_same(reused: NativeQP, fresh: NativeQP) -> None:
    for name in ("P", "A"):
        a, b = getattr(reused, name), getattr(fresh, name)
        assert a.shape == b.shape
        assert np.array_equal(a.indptr, b.indptr)
        assert np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data), name
    for name in ("q", "lower", "upper", "curvature", "diagonal"):
        assert np.array_equal(getattr(reused, name), getattr(fresh, name)), name
    assert reused.const == fresh.const
    assert reused.groups == fresh.groups


def _resolved(model: Model, change: object) -> tuple[NativeQP, NativeQP, bool]:
    """The QP of ``model.with_data(change(data))`` built right after ``model``'s, and fresh; and
    whether the first reused the last base's constraint rows."""
    assert native_qp(model) is not None
    before = model.kept.qp_base
    assert before is not None
    other = model.with_data(change(model.data))  # type: ignore[operator]
    qp = native_qp(other)
    assert qp is not None
    assert other.kept.qp_base is not None
    reused = other.kept.qp_base.triplets is before.triplets
    return qp, _fresh(other), reused


def test_reweighted_count_reuses_the_rows() -> None:
    model = _model()
    weights = np.linspace(1.0, 50.0, model.data.n)
    qp, fresh, reused = _resolved(model, lambda d: dataclasses.replace(d, count_weights=weights))
    assert reused
    assert not np.array_equal(qp.q, native_qp(model).q)  # the count's weights did change q
    _assert_same(qp, fresh)


def test_a_reweighted_base_reuses_the_squares_and_gives_the_fresh_q() -> None:
    """A re-weighting moves only q's linear part: its base takes the squared rows' curvature,
    diagonal, slope and constant from the last base, and q and the constant equal a fresh build's."""
    model = _model()
    assert native_qp(model) is not None
    before = model.kept.qp_base
    assert before is not None
    for weights in (np.linspace(1.0, 50.0, model.data.n), np.full(model.data.n, 1e-3)):
        other = model.with_data(dataclasses.replace(model.data, count_weights=weights))
        qp = native_qp(other)
        assert qp is not None
        assert other.kept.qp_base is not None
        assert other.kept.qp_base.squares is before.squares
        _assert_same(qp, _fresh(other))


def test_blocked_asset_changes_only_its_bounds() -> None:
    model = _model()
    blocked = np.zeros(model.data.n, dtype=bool)
    blocked[[1, 5]] = True
    qp, fresh, reused = _resolved(model, lambda d: dataclasses.replace(d.fix(blocked), debias=True))
    assert reused
    assert qp.upper[1] == 0.0
    assert qp.upper[model.data.n + 5] == 0.0
    _assert_same(qp, fresh)


@pytest.mark.parametrize("backoff", [0.0, 1e-4])
def test_other_limits_are_rebuilt(backoff: float) -> None:
    model = _model()
    qp, fresh, reused = _resolved(model, lambda d: dataclasses.replace(d, backoff=d.backoff + 1e-3 + backoff))
    assert not reused
    _assert_same(qp, fresh)


def test_the_base_lives_with_its_models() -> None:
    model = _model()
    other = model.with_data(dataclasses.replace(model.data, count_weights=np.ones(model.data.n)))
    assert native_qp(model) is not None
    assert native_qp(other) is not None
    bases = [weakref.ref(m.kept.qp_base) for m in (model, other)]
    assert other.kept.last_qp_base is None  # let go once its own is built
    del model, other
    gc.collect()
    assert [b() for b in bases] == [None, None]  # nothing module-wide keeps a dense block alive


def test_a_re_solve_describes_again_only_the_terms_reading_what_changed() -> None:
    model = _model()
    reweighted = model.with_data(dataclasses.replace(model.data, count_weights=np.ones(model.data.n)))
    blocked = model.with_data(model.data.fix(np.arange(model.data.n) == 2))
    for other, redescribed in ((reweighted, {"trade_count"}), (blocked, {"trade_bounds"})):
        again = {
            t.name for t, a, b in zip(model.terms, model.descriptions, other.descriptions, strict=True) if a is not b
        }
        assert again == redescribed
        _assert_same(native_qp(other), _fresh(Model.of(other.terms, other.data)))


def test_a_kept_workspace_takes_new_values_of_the_same_pattern() -> None:
    from finwiz.optimizer.solve._solvers import solve_osqp

    qp = native_qp(_model())
    assert qp is not None
    key = ("test_qp_reuse", qp.A.shape)
    first = solve_osqp(qp, key, 10.0)
    assert solve_osqp(qp, key, 10.0).z is not None  # the same matrices again: nothing reloaded
    other = dataclasses.replace(qp, A=qp.A.copy())
    other.A.data[other.A.indices >= other.A.shape[0] - 4] *= 3.0  # new values in the last rows
    again, fresh = solve_osqp(other, key, 10.0), solve_osqp(other, None, 10.0)
    assert first.z is not None
    assert again.z is not None
    assert fresh.z is not None
    assert not np.allclose(first.z, fresh.z, atol=1e-6)
    assert np.allclose(again.z, fresh.z, atol=1e-6)


def test_a_kept_workspace_takes_new_bounds_and_keeps_unchanged_ones() -> None:
    from finwiz.optimizer.solve._solvers import solve_osqp

    qp = native_qp(_model())
    assert qp is not None
    key = ("test_qp_reuse_bounds", qp.A.shape)
    first = solve_osqp(qp, key, 10.0)
    assert first.z is not None
    column = int(np.argmax(first.z[: 2 * qp.n]))  # the largest trade, buy or sell
    upper = qp.upper.copy()
    upper[column] = 0.5 * first.z[column]  # only its bound changes, and binds
    capped = dataclasses.replace(qp, upper=upper)
    for again, cap in ((capped, upper[column]), (dataclasses.replace(capped, upper=upper.copy()), upper[column])):
        kept, fresh = solve_osqp(again, key, 10.0), solve_osqp(again, None, 10.0)
        assert kept.z is not None
        assert fresh.z is not None
        assert np.allclose(kept.z, fresh.z, atol=1e-6)
        assert kept.z[column] == pytest.approx(cap, abs=1e-9)
    back = solve_osqp(qp, key, 10.0)  # the old bounds loaded again
    assert back.z is not None
    assert back.z[column] == pytest.approx(first.z[column], abs=1e-6)


@pytest.mark.parametrize("tax_model", ["linear", "netting"])
def test_a_taxable_side_fixed_re_solve_reuses_the_rows_entry_for_entry(tax_model: str) -> None:
    """A taxable account's side fixing changes only which assets may buy or sell: the QP on the
    same segments, from the last base, is a fresh build's, its ladder folded in the same way."""
    from tests.optimizer.tax.reference import random_instance
    from tests.optimizer.tax.test_bound import _linear_model

    model = _linear_model(random_instance(3, assets=(8, 10), lots=(2, 4)).with_(tax_model=tax_model))
    sells = np.zeros(model.data.n, dtype=bool)
    sells[[0, 2]] = True
    buys = np.zeros(model.data.n, dtype=bool)
    buys[[1, 4]] = True

    def sided(data: object) -> object:
        blocked = dict(data.blocked)  # type: ignore[attr-defined]
        blocked["tax_sells_only"], blocked["tax_buys_only"] = sells, buys
        return dataclasses.replace(data, blocked=blocked)  # type: ignore[call-overload]

    qp, fresh, reused = _resolved(model, sided)
    assert reused
    assert np.all(qp.upper[: model.data.n][sells] == 0.0)
    assert np.all(qp.upper[model.data.n : 2 * model.data.n][buys] == 0.0)
    _assert_same(qp, fresh)


def _assert_same_groups(kept: list[LimitGroup], fresh: list[LimitGroup]) -> None:
    assert [g.name for g in kept] == [g.name for g in fresh]
    for a, b in zip(kept, fresh, strict=True):
        assert (a.members, a.unit, a.per_asset, a.per) == (b.members, b.unit, b.per_asset, b.per)
        for name in ("lower", "upper", "show"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (a.name, name)
        for name in ("rows", "cols", "vals", "offset"):
            assert np.array_equal(getattr(a.rows, name), getattr(b.rows, name)), (a.name, name)


def _long_short() -> Model:
    symbols = [f"L{i}" for i in range(6)]
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": q} for s, q in zip(symbols, [30, -20, 15, 10, -5, 8], strict=True)],
        target_weights=dict(zip(symbols, [0.3, 0.2, -0.2, 0.1, -0.1, 0.05], strict=True)),
        cash=5000.0,
        allow_short=True,
        no_buy=["L3"],
        method="minimize_trades",
    )
    data = build_problem_data(config, {s: 10.0 + 3 * i for i, s in enumerate(symbols)})
    terms = [*RebalancingEngine().strategies[config.method].terms(data), *constraint_terms()]
    return Model.of([t for t in terms if t.applies(data)], data)


@pytest.mark.parametrize("make", [_model, _long_short])
def test_a_blocked_re_solve_keeps_the_trade_bounds_it_did_not_change(make: object) -> None:
    """``TradeBoundsTerm.redescribe`` (the side groups and the unchanged reasons kept) against a
    fresh description, for a debias fix, a second fix on top, and another reason changed."""
    model = make()  # type: ignore[operator]
    n = model.data.n
    term = next(t for t in model.terms if isinstance(t, TradeBoundsTerm))
    first, second = np.arange(n) % 3 == 0, np.arange(n) == 1
    changes = [
        lambda d: d.fix(first, debias=True),
        lambda d: d.fix(first).fix(second),
        lambda d: d.evolve(blocked={**d.blocked, "no_sell": np.arange(n) == n - 1}),
    ]
    for change in changes:
        data = change(model.data)
        other = model.with_data(data)
        kept = other.descriptions[model.terms.index(term)]
        _assert_same_groups(kept.limits, term.describe(data).limits)
        assert any(g.name == "fixed" for g in kept.limits) or "no_sell" in {g.name for g in kept.limits}
        last = model.descriptions[model.terms.index(term)]
        same_sides = np.array_equal(data.side, model.data.side)  # else a fixed asset keeps its holding's
        assert (kept.limits[0] is last.limits[0]) == same_sides
        _assert_same(native_qp(other), _fresh(Model.of(other.terms, other.data)))


def test_the_bounds_of_added_bound_groups_start_from_the_last_base() -> None:
    """``_bounds`` against ``trade_bounds`` of every group: bound groups added (the fast path),
    a group dropped, a coupled group added (both computed in full)."""
    model = _model()
    n = model.data.n
    assert native_qp(model) is not None
    last = model.kept.qp_base
    assert last is not None
    groups = last.limit_groups
    fixed = model.data.fix(np.arange(n) % 2 == 0).fix(np.arange(n) == 3)
    added = [g for g in TradeBoundsTerm().describe(fixed).limits if g.name == "fixed"]
    coupled = last.coupled[0]
    cases = [(*groups[:2], *added, *groups[2:]), groups[1:], (*groups, coupled)]
    for case in cases:
        got, want = _bounds(last, case, n), trade_bounds(case, n)
        for a, b in zip(got[:2], want[:2], strict=True):
            assert np.array_equal(a, b)
        assert [id(g) for g in got[2]] == [id(g) for g in want[2]]
    assert _bounds(last, cases[0], n)[2] == list(last.coupled)


def _request(scale: float) -> tuple[PortfolioConfiguration, dict[str, float]]:
    return _config(0.3), {s: scale * (10.0 + 7 * i) + i * (scale - 1.0) ** 2 for i, s in enumerate(SYMBOLS)}


def test_requests_of_one_structure_alternating_each_get_their_own_answer() -> None:
    """Two requests of the same structure (kept builds, patterns and workspaces shared) run in
    turn, then on two threads: each answer is the one it gets alone from empty caches."""
    requests = [_request(1.0), _request(1.37)]
    alone = []
    for config, prices in requests:
        clear_cache()
        result = rebalance(config, prices)
        alone.append((result.trades, result.objective_value))
    assert alone[0][0] != alone[1][0]
    for k in range(6):
        result = rebalance(*requests[k % 2])
        assert (result.trades, result.objective_value) == alone[k % 2]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda k: rebalance(*requests[k % 2]), range(8)))
    for k, result in enumerate(results):
        assert (result.trades, result.objective_value) == alone[k % 2]
