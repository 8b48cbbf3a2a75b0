"""What the whole-share search leaves out to be cheaper, held to what it would have found: the rows
checked on the improving exchanges only (``kept_by_rows``) keep exactly the sets a mask over every
set keeps; the cross terms of two assets' moves (``_Pricer.cross``, either way) are the
objective's own second differences (priced by ``reference.py``, not finwiz's code); the bound that
leaves a window out (``can_gain``) is never above the best set's change (every set enumerated); a
search that reaches a point an earlier search passed ends where that search ended, without
searching again; a kick that breaks a coupled row is not descended from; the Newton steps from
probes kept between rounds are those built afresh."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pytest

from finwiz import RebalancingEngine, rebalance
from finwiz.optimizer._engine import _applicable, _with_constraints
from finwiz.optimizer.describe._data import build_problem_data
from finwiz.optimizer.discrete import _neighbourhood, _newton, _pricing, _search
from finwiz.optimizer.discrete._candidates import _lot_moves, _moves, _trade_point
from finwiz.optimizer.discrete._descent import _Search
from finwiz.optimizer.discrete._neighbourhood import (
    Neighbourhood,
    best_combination,
    can_gain,
    hoods,
    kept_by_rows,
    matched_steps,
)
from finwiz.optimizer.discrete._pricing import Pieces
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import meets_minimum
from tests.optimizer.discrete.reference import config_of, generate, objective

_CHECK = 1e-9  # the rows' tolerance (``_candidates._CHECK``), as the masks used it


def _model(seed: int) -> tuple[Model, Pieces, Any]:
    inst = generate(seed)
    config, prices = config_of(inst)
    data = build_problem_data(config, prices)
    terms = RebalancingEngine().strategies[inst.method].terms(data)
    model = Model.of(_applicable(_with_constraints(terms), data), data)
    return model, Pieces.of(model), inst


@pytest.mark.parametrize("size", [2, 3])
def test_rows_checked_on_the_sets_keep_what_a_mask_over_every_set_keeps(size: int) -> None:
    rng = np.random.default_rng(size)
    rows, m = 7, 14
    delta = rng.normal(size=(rows, m))
    low, high = -rng.uniform(0.0, 2.5, rows), rng.uniform(0.0, 2.5, rows)
    low[0], high[1] = -50.0, 50.0  # rows no set reaches on one side
    grid = np.indices((m,) * size).reshape(size, -1)
    # Every set at once, row by row (the masks the search used before).
    change = sum(delta[:, g] for g in grid)
    mask = np.all((change >= low[:, None] - _CHECK) & (change <= high[:, None] + _CHECK), axis=0)
    subset = np.flatnonzero(rng.uniform(size=grid.shape[1]) < 0.6)  # the improving sets, say
    kept = subset[kept_by_rows(delta, low, high, tuple(g[subset] for g in grid))]
    assert 0 < len(kept) < len(subset)
    assert np.array_equal(kept, subset[mask[subset]])


@pytest.mark.parametrize("gram", [False, True])
@pytest.mark.parametrize("seed", [4, 9])
def test_cross_terms_of_a_few_moves_are_the_objectives_second_differences(
    seed: int, gram: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both ways of ``_Pricer.cross``: from the shared rows, and through their Gram matrix (the
    # way of many shared rows, a dense covariance's: here forced on the cash row alone).
    monkeypatch.setattr(_pricing, "_FEW_SHARED", 0 if gram else 16)
    model, pieces, inst = _model(seed)
    pieces = Pieces.of(model)  # a pricer of its own: the Gram matrix is a cached property
    assert (pieces.pricer.shared_gram is not None) == gram
    data = model.data
    shares = np.zeros(data.n)
    moves = _lot_moves(data, shares, pieces.separable, None)
    pick = np.flatnonzero(np.r_[True, moves.owner[1:] != moves.owner[:-1]])[:12]  # one move of each of 12 assets
    assert len(moves.owner) > len(pick)
    z = _Search(data, pieces.pricer, pieces.rows).at(shares).z
    sub = type(moves)(moves.owner[pick], moves.shares[pick], moves.buy[pick], moves.sell[pick], moves.scalars[pick])
    cross = pieces.pricer.cross(z, sub, np.arange(len(pick)))
    order = [inst.symbols.index(s) for s in data.symbols]  # the reference's order of each of finwiz's assets

    def priced(trades: np.ndarray) -> float:
        in_order = np.zeros(inst.n)
        in_order[order] = trades
        return objective(inst, in_order)

    base = priced(shares)
    scale = abs(base)
    for a in range(len(pick)):
        for b in range(a + 1, len(pick)):
            both, one, other = shares.copy(), shares.copy(), shares.copy()
            both[sub.owner[[a, b]]] = sub.shares[[a, b]]
            one[sub.owner[a]], other[sub.owner[b]] = sub.shares[a], sub.shares[b]
            second = priced(both) - priced(one) - priced(other) + base
            assert cross[a, b] == pytest.approx(second, abs=1e-9 * scale)


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_that_leaves_a_window_out_is_below_every_sets_change(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assets, options, rows = 4, 3, 2
    owner = np.repeat(np.arange(assets), options)
    own = rng.normal(0.2, 1.0, assets * options)
    shared = rng.normal(size=(rows, assets * options))
    best = 0.0  # no move at all
    for choice in np.indices((options + 1,) * assets).reshape(assets, -1).T:  # option or stay, per asset
        moves = np.flatnonzero(np.repeat(choice, options) == np.tile(np.arange(1, options + 1), assets))
        u = shared[:, moves].sum(axis=1)
        change = own[moves].sum() + 2 * sum(shared[:, a] @ shared[:, b] for a in moves for b in moves if a < b)
        assert change == pytest.approx(own[moves].sum() + u @ u - (shared[:, moves] ** 2).sum())
        best = min(best, change)
    assert best < 0  # some set gains: the bound must say so
    assert can_gain(own, shared, owner, -best * (1 - 1e-9))
    assert not can_gain(own, shared, owner, -best + (shared**2).sum() + np.abs(own).sum())


def test_a_search_reaching_a_point_searched_before_ends_where_that_search_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, pieces, _ = _model(4)
    start = np.zeros(model.data.n)  # keeps every limit of this account
    searched: dict[bytes, np.ndarray] = {}
    first = _search.exchange_search(model, start, None, 10.0, pieces, searched)
    assert first.exchanges > 0
    assert searched
    assert all(np.array_equal(end, first.shares) for end in searched.values())
    calls: list[str] = []
    for name in ("combine", "triple", "kick"):
        original = getattr(_search._Local, name)

        def spy(self: Any, point: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return _original(self, point)

        monkeypatch.setattr(_search._Local, name, spy)
    again = _search.exchange_search(model, start, None, 10.0, pieces, searched)
    assert np.array_equal(again.shares, first.shares)
    assert calls == []  # its descent reached a point the first search passed: nothing searched again
    fresh = _search.exchange_search(model, start, None, 10.0, pieces)
    assert calls
    assert np.array_equal(fresh.shares, first.shares)


def test_a_kick_breaking_a_coupled_row_is_not_descended_from(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[bool] = []
    lead = _search._Local.lead

    def spy(self: Any, start: Any, held: Any, point: Any) -> Any:  # a kick's descent
        starts.append(self.search.rows.holds(self.search.rows.values(start.z)))
        return lead(self, start, held, point)

    monkeypatch.setattr(_search._Local, "lead", spy)
    trials: list[int] = []
    kick = _search._Local.kick

    def count(self: Any, point: Any) -> Any:
        out = kick(self, point)
        trials.append(self.trials)
        return out

    monkeypatch.setattr(_search._Local, "kick", count)
    config, prices = config_of(generate(6))  # kicks there break the cash or a sector row
    rebalance(config, prices)
    assert trials  # some kicks were left out:
    assert max(trials) > len(starts) > 0  # one search: its kicks tried, more than it descended from
    assert all(starts)


@pytest.mark.parametrize("seed", [22, 36])
def test_a_kicks_trial_given_up_by_its_reach_is_one_that_would_not_have_been_taken(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seeds 22 and 36 take kicks (two and three) among trials that fail: the gates give up some of
    # those early (the creep's more than the reach's alone), and the trades are those of the
    # trials descended their whole lead.
    steepest_rounds: list[int] = []
    descend = _search._Local.descend

    def spy(self: Any, point: Any, separable: Any, steepest: bool = False, rounds: int = 10**9) -> Any:
        steepest_rounds.append(int(steepest))
        return descend(self, point, separable, steepest, rounds)

    monkeypatch.setattr(_search._Local, "descend", spy)
    config, prices = config_of(generate(seed))
    gated = rebalance(config, prices)
    gated_rounds = sum(steepest_rounds)
    steepest_rounds.clear()
    monkeypatch.setattr(_search, "_KICK_CREEP", np.inf)
    reach = rebalance(config, prices)
    reach_rounds = sum(steepest_rounds)
    steepest_rounds.clear()
    monkeypatch.setattr(_search, "_KICK_REACH", np.inf)
    whole = rebalance(config, prices)
    assert reach.objective_value == whole.objective_value
    assert [(t.symbol, t.shares, t.action) for t in gated.trades] == [
        (t.symbol, t.shares, t.action) for t in whole.trades
    ]
    assert gated.objective_value == whole.objective_value
    assert 0 < gated_rounds < reach_rounds < sum(steepest_rounds)


def test_rich_windows_start_past_half_their_width_and_plain_ones_at_half() -> None:
    # Twenty options an asset: three assets a window (21^3 sets, 21^4 over ``COMBINATIONS``).
    play, options = np.arange(10), [np.arange(20.0)] * 10
    rich = [list(h.assets) for h in _neighbourhood._windows(play, options, 1)]
    plain = [list(h.assets) for h in _neighbourhood._windows(play, options)]
    assert rich == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8], [8, 9]]
    assert plain == [[a, a + 1, a + 2] for a in range(8)]


@pytest.mark.parametrize("seed", [2, 4, 9, 18])
def test_a_windows_bound_pruned_enumeration_finds_the_best_set_of_every_set(seed: int) -> None:
    # ``best_combination`` drops a partial set once its placed moves' bound cannot gain: what it
    # returns is the best of every set (option or stay per asset) priced on the exact objective.
    model, pieces, _ = _model(seed)
    data = model.data
    search = _Search(data, pieces.pricer, pieces.rows)
    point = search.at(np.zeros(data.n))
    hood = hoods(search, _newton.newton_lots(search, point.shares) * data.lot)[0]
    assets, options = hood.assets[:4], hood.options[:4]
    best_value = point.value
    for choice in itertools.product(*[[None, *o] for o in options]):
        trial = point.shares.copy()
        for a, v in zip(assets, choice, strict=True):
            if v is not None:
                trial[a] = v
        after = search.at(trial)
        keeps = pieces.separable.ok(_moves(data, assets, trial[assets])).all()
        sized = meets_minimum(data, trial * data.prices).all()
        if keeps and sized and search.rows.holds(search.rows.values(after.z)):
            best_value = min(best_value, after.value)
    gain = 1e-11 * abs(point.value)
    found = best_combination(search, pieces.separable, point, Neighbourhood(assets, options), gain)
    if best_value < point.value - gain:
        assert found is not None
        assert found.value == pytest.approx(best_value, rel=1e-12)
    else:
        assert found is None


@pytest.mark.parametrize("seed", [2, 6, 9])
def test_newton_steps_from_kept_probes_are_those_built_afresh(seed: int) -> None:
    # The one-lot probes (both sides stacked) are kept between rounds and rebuilt only for the
    # assets whose trade changed; along a walk of points the steps and the gradient (which reuses
    # the last priced point's squared rows) are those of a fresh pricer and fresh probes.
    model, pieces, _ = _model(seed)
    data = model.data
    search = _newton.Kept(data, pieces.pricer, pieces.rows)
    fresh = _Search(data, _pricing.Pieces.of(model).pricer, pieces.rows)
    probes = _newton.Probes.empty(search)
    rng = np.random.default_rng(seed)
    shares = np.zeros(data.n)
    steps = []
    for _ in range(6):
        point = search.at(shares)
        kept = _newton.newton_lots(search, point.shares, probes)
        assert np.array_equal(kept, _newton.newton_lots(fresh, shares.copy()))
        assert np.array_equal(search.pricer.gradient(point.z), fresh.pricer.gradient(point.z.copy()))
        steps.append(kept)
        moved = rng.choice(data.n, size=2, replace=False)
        shares = shares.copy()
        shares[moved] += rng.integers(-2, 3, size=2) * data.lot[moved]
    assert any(np.any(s != 0) for s in steps)  # the walk met steps to take


def test_value_matched_steps_kept_by_their_dear_lots_are_those_built_afresh() -> None:
    # The search keeps ``matched_steps``'s by the dear traded lots they are of: along a walk of
    # points (a few of which change the dear lots) each answer is the one built afresh.
    model, _, _ = _model(9)
    data = model.data
    rng = np.random.default_rng(9)
    kept: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    shares = np.where(rng.uniform(size=data.n) < 0.5, data.lot, 0.0)
    for _ in range(12):
        for got, fresh in zip(matched_steps(data, shares, kept), matched_steps(data, shares), strict=True):
            assert np.array_equal(got, fresh)
        moved = rng.integers(data.n)
        shares = shares.copy()
        shares[moved] += rng.integers(-1, 2) * data.lot[moved]
    assert 1 < len(kept) < 12  # kept steps were reused, and rebuilt when the dear lots changed


def test_the_combinations_totals_are_summed_move_by_move_in_the_order_they_are_placed() -> None:
    # Each set's change: the moves' own changes and their cross terms, added one at a time as
    # the moves are placed (the running sum the search's answers were measured with, bit for bit).
    rng = np.random.default_rng(3)
    sizes = [3, 2, 4, 3]
    m = sum(sizes)
    groups, start = [], 0
    for size in sizes:
        groups.append(np.append(np.arange(start, start + size), m))  # the last entry: the asset stays
        start += size
    own = np.append(rng.normal(size=m), 0.0)
    cross = np.zeros((m + 1, m + 1))
    cross[:m, :m] = rng.normal(size=(m, m)) * 1e-3
    bounds = _neighbourhood._Bounds.of(
        groups, np.zeros((0, m + 1)), np.zeros((0, m + 1)), own.copy(), (np.zeros(0), np.zeros(0))
    )
    chosen, total = _neighbourhood._enumerated(groups, own, cross, bounds, -1e9)  # every set alive
    assert chosen.shape == (int(np.prod([len(g) for g in groups])), len(groups))
    for picks, value in zip(chosen, total, strict=True):
        expected = 0.0
        for k, pick in enumerate(picks):
            expected = expected + own[pick]
            for before in picks[:k]:
                expected += cross[before, pick]
        assert value == expected


def test_the_searchs_rows_valued_through_their_dense_block_match_the_sparse_product() -> None:
    model, pieces, _ = _model(7)
    rows = pieces.rows
    dense = _newton.DenseRows(*(getattr(rows, f.name) for f in dataclasses.fields(rows)))
    assert dense.dense is not None  # a small account: the dense block is kept
    data = model.data
    shares = np.round(np.random.default_rng(1).normal(0.0, 5.0, data.n)) * data.lot
    shares = np.maximum(shares, -data.shares)
    z = _trade_point(data, shares)
    expected = rows.values(z)
    assert np.any(expected != 0)
    np.testing.assert_allclose(dense.values(z), expected, rtol=1e-13, atol=1e-15)


def test_what_the_rest_of_a_window_can_add_is_each_later_groups_least_and_most_summed_from_the_last() -> None:
    rng = np.random.default_rng(5)
    m = 11
    groups = [
        np.append(g, m) for g in (np.array([4, 5]), np.array([0, 1, 2]), np.array([9, 10]), np.array([3, 6, 7, 8]))
    ]
    delta, shared = rng.normal(size=(3, m + 1)), rng.normal(size=(2, m + 1))
    delta[:, m] = shared[:, m] = 0.0
    alone = np.append(rng.normal(size=m), 0.0)
    bounds = _neighbourhood._Bounds.of(groups, delta, shared, alone, (np.zeros(3), np.zeros(3)))
    for name, values, pick in [
        ("least", delta, np.min),
        ("most", delta, np.max),
        ("u_least", shared, np.min),
        ("u_most", shared, np.max),
        ("lowest", alone, np.min),
    ]:
        expected = np.zeros((len(groups) + 1, *values.shape[:-1]))
        for g in range(len(groups) - 1, -1, -1):  # each group's extreme, added from the last one back
            expected[g] = expected[g + 1] + pick(values[..., groups[g]], axis=-1)
        assert np.array_equal(getattr(bounds, name), expected), name
