"""Each move kind of the whole-share descent on a toy account built by hand (3-4 assets), held to an
independent brute-force enumeration priced by ``reference.py`` (the README's objective and
limits, not finwiz's code): the move finds the improvement the enumeration finds, and never
breaks a limit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from finwiz import RebalancingEngine
from finwiz.optimizer._engine import _applicable, _with_constraints
from finwiz.optimizer.describe._data import build_problem_data
from finwiz.optimizer.discrete._candidates import _lot_moves, _Moves, _Separable
from finwiz.optimizer.discrete._descent import DescentSettings, MoveKind, _Round, _Search, _Tight, descend
from finwiz.optimizer.discrete._move_kinds import (
    MOVE_KINDS,
    AllBest,
    Chain,
    Exchange,
    FittingHalving,
    FittingSingle,
    Halving,
    Pair,
    Tally,
    _partners,
)
from finwiz.optimizer.discrete._pricing import _coupled_rows, _Pricer
from finwiz.optimizer.solve._assembler import Model
from tests.optimizer.discrete.reference import Instance, config_of, objective, violations


def _toy(prices: list[float], held: list[float], drift: list[float], cash: float) -> Instance:
    """An account of ``prices`` and ``held`` shares (plus ``cash``) whose targets are its weights
    plus ``drift`` lots of each asset (the cash target what is left); no costs: only tracking and
    the cash square count."""
    price, shares = np.array(prices), np.array(held)
    value = float(price @ shares) + cash
    target = (shares + np.array(drift)) * price / value
    return Instance([f"A{i}" for i in range(len(prices))], price, shares, cash, target, ["S"] * len(prices), rate=0.0)


class _Harness:
    """The descent's view of a toy: its search (exact pricer, coupled rows) and neighbourhood."""

    def __init__(self, inst: Instance) -> None:
        config, prices = config_of(inst)
        data = build_problem_data(config, prices)
        assert list(data.symbols) == inst.symbols
        terms = RebalancingEngine().strategies[inst.method].terms(data)
        model = Model.of(_applicable(_with_constraints(terms), data), data)
        self.inst = inst
        self.search = _Search(data, _Pricer(model, model.stacked(continuous=False), None), _coupled_rows(model))
        self.separable = _Separable.of([g.linear() for g in model.groups if g.separable], data.n)

    def neighbours(self, shares: np.ndarray, wide: bool) -> _Moves:
        return _lot_moves(self.search.data, shares, self.separable, None, wide=wide)

    def round(self, shares: np.ndarray) -> _Round:
        point = self.search.at(shares)
        return _Round.of(self.search, point, self.neighbours(shares, False), self.neighbours)


def _best(inst: Instance, start: np.ndarray, steps: tuple[int, ...], most: int) -> tuple[np.ndarray, float]:
    """Brute force: every change of ``start`` by ``steps`` lots per asset, at most ``most`` assets
    moving, that keeps every limit; the one of least objective."""
    best, value = start, objective(inst, start)
    for change in itertools.product(steps, repeat=inst.n):
        if sum(c != 0 for c in change) > most:
            continue
        trial = start + np.array(change, float)
        if not violations(inst, trial) and objective(inst, trial) < value:
            best, value = trial, objective(inst, trial)
    return best, value


def _taken(harness: _Harness, kind: MoveKind, start: np.ndarray) -> np.ndarray:
    """What ``kind`` takes from ``start`` (it must take something, and keep every limit)."""
    after = kind.step(harness.round(start))
    assert after is not None, f"{type(kind).__name__} found nothing"
    assert violations(harness.inst, after.shares) == []
    return np.asarray(after.shares)


def test_all_best_takes_every_assets_best_lot_at_once() -> None:
    """Far from every limit: each asset's best single lot, all of them in one move."""
    inst = _toy([50.0, 80.0, 120.0, 200.0], [200, 150, 100, 60], [4.5, -5.5, 5.0, -1.925], cash=10_000.0)
    harness, start = _Harness(inst), np.zeros(4)
    moved = _taken(harness, AllBest(), start)
    # Each asset alone, by enumeration: its best one-lot change.
    own = []
    for i in range(4):
        options = [start + np.eye(4)[i] * s for s in (0.0, -1.0, 1.0)]
        own.append(min(options, key=lambda trial: objective(inst, trial))[i])
    assert moved.tolist() == own
    best, value = _best(inst, start, (-1, 0, 1), most=4)
    assert moved.tolist() == best.tolist()
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)


def test_halving_keeps_the_cash_all_best_would_overspend() -> None:
    """Four assets each want one more lot, the cash pays for two: every asset's best at once
    breaks the cash limit; the best half holds, and is the best choice the enumeration finds."""
    inst = _toy([1000.0] * 4, [20, 20, 20, 20], [0.6, 0.55, 0.5, 0.45], cash=2_500.0)
    harness, start = _Harness(inst), np.zeros(4)
    assert AllBest().step(harness.round(start)) is None
    assert violations(inst, np.ones(4)) == ["cash"]
    moved = _taken(harness, Halving(), start)
    best, value = _best(inst, start, (0, 1), most=4)
    assert moved.tolist() == best.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)


def test_exchange_buys_one_asset_with_the_cash_of_another() -> None:
    """No cash: the one improving lot (buying A0) is blocked, selling A1 alone costs more cash
    than it gains; the exchange of the two is the best move the enumeration of pairs finds."""
    inst = _toy([1000.0, 1000.0, 500.0], [30, 30, 40], [1.2, -0.8, -0.8], cash=100.0)
    harness, start = _Harness(inst), np.zeros(3)
    now = harness.round(start)
    assert now.worth
    assert AllBest().step(now) is None
    assert Halving().step(now) is None
    moved = _taken(harness, Exchange(), start)
    best, value = _best(inst, start, (-1, 0, 1), most=2)
    assert moved.tolist() == best.tolist() == [1.0, -1.0, 0.0]
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)


def test_exchange_pairs_the_move_a_tight_row_blocks_that_gains_most_per_unit_of_it() -> None:
    """A turnover cap spent on one lot of A2 sold: buying the dear A0 gains most but nothing frees
    its turnover; buying the cheap A1 gains less but most per dollar, and not selling A2 frees
    enough. Pairing only the most improving move (``pair_tries=1``) finds nothing; with the moves
    the cap blocks that gain most per unit of it, the exchange is the best pair the enumeration finds."""
    price, held, drift = np.array([1000.0, 100.0, 120.0]), np.array([20.0, 100.0, 100.0]), np.array([0.55, 2.5, -0.8])
    value = float(price @ held) + 5_000.0
    target = (held + drift) * price / value
    inst = Instance(["A0", "A1", "A2"], price, held, 5_000.0, target, ["S"] * 3, rate=0.0, max_turnover=131.0 / value)
    harness, start = _Harness(inst), np.array([0.0, 0.0, -1.0])
    assert violations(inst, start) == []
    point = harness.search.at(start)
    moves = harness.neighbours(start, False)

    def exchange(settings: DescentSettings) -> np.ndarray | None:
        after = Exchange().step(_Round.of(harness.search, point, moves, harness.neighbours, settings))
        return None if after is None else np.asarray(after.shares)

    assert exchange(DescentSettings(pair_tries=1, thrifty_tries=0)) is None
    moved = exchange(DescentSettings(pair_tries=1, thrifty_tries=1))
    assert moved is not None
    assert violations(inst, moved) == []
    best, value = _best(inst, start, (-1, 0, 1), most=2)
    assert moved.tolist() == best.tolist() == [0.0, 1.0, 0.0]
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)


def test_exchange_takes_disjoint_thrifty_exchanges_together() -> None:
    """Two sells (A2, A4) spend a turnover cap; buying the cheap A1 or A3 pays only against not
    selling one of them. The two exchanges share no asset and hold the cap together: one step
    takes both, what two single exchanges reach, and the best the enumeration of four assets finds."""
    price, held = np.array([1000.0, 100.0, 120.0, 100.0, 120.0]), np.array([20.0, 100.0, 100.0, 100.0, 100.0])
    value = float(price @ held) + 5_000.0
    target = (held + np.array([0.55, 2.5, -0.8, 2.5, -0.8])) * price / value
    names = [f"A{i}" for i in range(5)]
    inst = Instance(names, price, held, 5_000.0, target, ["S"] * 5, rate=0.0, max_turnover=251.0 / value)
    harness, start = _Harness(inst), np.array([0.0, 0.0, -1.0, 0.0, -1.0])
    assert violations(inst, start) == []
    settings = DescentSettings(pair_tries=1)

    def exchange(shares: np.ndarray) -> np.ndarray:
        now = _Round.of(
            harness.search, harness.search.at(shares), harness.neighbours(shares, False), harness.neighbours, settings
        )
        after = Exchange().step(now)
        assert after is not None
        return np.asarray(after.shares)

    moved = exchange(start)
    best, value = _best(inst, start, (-1, 0, 1), most=4)
    assert moved.tolist() == best.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert violations(inst, moved) == []
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)
    one = start.copy()  # one exchange alone, then the other: the same point
    one[[1, 2]] = [1.0, 0.0]
    assert exchange(one).tolist() == moved.tolist()


def test_partners_keep_every_pair_that_fits_and_only_the_moves_freeing_a_broken_row() -> None:
    """Two tight rows (room 0.5 above the first, 1.0 below the second), six moves. Try 0 breaks
    the first row: only moves giving back 0.5 of it (2 and 5); try 1 breaks the second by 1.0 and
    no move gives that back; try 5 breaks none: every move. Every pair that fits is among them."""
    delta = np.array([[1.0, 0.2, -0.6, -0.4, 0.9, -1.0], [0.0, -2.0, 0.5, -0.5, -0.1, 0.3]])
    tight = _Tight(np.array([-np.inf, -1.0]), np.array([0.5, np.inf]), delta)
    tries = np.array([0, 1, 5])
    at, partner = _partners(tight, tries)
    got = set(zip(tries[at].tolist(), partner.tolist(), strict=True))
    assert got == {(0, 2), (0, 5)} | {(5, j) for j in range(6)}
    fitting = {
        (int(i), j)
        for i in tries
        for j in range(6)
        if np.all((delta[:, i] + delta[:, j] >= tight.low) & (delta[:, i] + delta[:, j] <= tight.high))
    }
    assert fitting <= got


def _partners_row_by_row(tight: _Tight, tries: np.ndarray) -> set[tuple[int, int]]:
    """The plain computation ``_partners`` replaces: per try, the moves within its tightest
    broken row's threshold (that row having the fewest), every move where it breaks none."""
    check = 1e-9
    out: set[tuple[int, int]] = set()
    for place, i in enumerate(tries.tolist()):
        best: list[int] | None = None
        for r in range(tight.delta.shape[0]):
            mine, row = tight.delta[r, i], tight.delta[r]
            if mine > tight.high[r] + check:
                found = np.flatnonzero(row <= tight.high[r] + 2 * check - mine).tolist()
            elif mine < tight.low[r] - check:
                found = np.flatnonzero(row >= tight.low[r] - 2 * check - mine).tolist()
            else:
                continue
            if best is None or len(found) < len(best):
                best = found
        out |= {(place, j) for j in (range(tight.delta.shape[1]) if best is None else best)}
    return out


@pytest.mark.parametrize("seed", range(12))
def test_partners_match_the_row_by_row_thresholds(seed: int) -> None:
    """Random tight blocks with repeated changes (ties at the thresholds) and rows no try breaks:
    the pairs are the row-by-row computation's."""
    rng = np.random.default_rng(seed)
    rows, m = int(rng.integers(1, 6)), int(rng.integers(5, 40))
    delta = rng.choice(np.linspace(-1.0, 1.0, 9), size=(rows, m))
    high = np.where(rng.random(rows) < 0.3, np.inf, rng.choice([0.0, 0.25, 0.5], size=rows))
    low = np.where(rng.random(rows) < 0.3, -np.inf, -rng.choice([0.0, 0.25, 0.5], size=rows))
    tight = _Tight(low, high, delta)
    tries = np.sort(rng.choice(m, size=int(rng.integers(1, m)), replace=False))
    at, partner = _partners(tight, tries)
    got = list(zip(at.tolist(), partner.tolist(), strict=True))
    assert len(got) == len(set(got))
    assert set(got) == _partners_row_by_row(tight, tries)


_CHAIN = [2.9 / 3, -2.9 / 3, -2.9 / 3, -2.9 / 3]  # a dear lot and three cheap ones, each just under one off


def test_chain_pays_one_dear_lot_with_lots_of_three_cheap_assets() -> None:
    """No cash: one lot of the dear A0 costs three cheap lots. No single move improves, even
    unconstrained (the round is stalled), no exchange of two keeps the cash; the chain finds the
    best choice the enumeration of one- and two-lot changes finds."""
    inst = _toy([3000.0, 1000.0, 1000.0, 1000.0], [10, 20, 20, 20], _CHAIN, cash=100.0)
    harness, start = _Harness(inst), np.zeros(4)
    now = harness.round(start)
    assert not now.worth
    assert Exchange().step(now) is None
    moved = _taken(harness, Chain(), start)
    best, value = _best(inst, start, (-2, -1, 0, 1, 2), most=4)
    assert moved.tolist() == best.tolist() == [1.0, -1.0, -1.0, -1.0]
    assert objective(inst, moved) == pytest.approx(value, rel=1e-12)


def test_one_setting_changes_one_rule() -> None:
    """The chain toy with chains switched off (no blocked move tried): the descent stops where it
    starts; with the defaults it takes the chain."""
    inst = _toy([3000.0, 1000.0, 1000.0, 1000.0], [10, 20, 20, 20], _CHAIN, cash=100.0)
    harness, start = _Harness(inst), np.zeros(4)
    kept = descend(harness.search, start, harness.neighbours, MOVE_KINDS, DescentSettings(chain_tries=0))
    assert kept.tolist() == start.tolist()
    moved = descend(harness.search, start, harness.neighbours, MOVE_KINDS, DescentSettings())
    assert objective(inst, moved) < objective(inst, start)
    assert violations(inst, moved) == []


def _search_round(harness: _Harness, start: np.ndarray) -> _Round:
    """The search's round at ``start`` (its settings: raw gains, every improving move)."""
    from finwiz.optimizer.discrete._search import SEARCH

    point = harness.search.at(start)
    return _Round.of(harness.search, point, harness.neighbours(start, False), harness.neighbours, SEARCH)


def test_fitting_halving_keeps_the_cash_every_fitting_move_at_once_would_overspend() -> None:
    """The halving toy under the search's kind: each lot keeps every row alone, all four break
    the cash; the best half is the enumeration's best, and the tally counts its two moves."""
    inst = _toy([1000.0] * 4, [20, 20, 20, 20], [0.6, 0.55, 0.5, 0.45], cash=2_500.0)
    harness, start, tally = _Harness(inst), np.zeros(4), Tally()
    after = FittingHalving(tally).step(_search_round(harness, start))
    assert after is not None
    best, value = _best(inst, start, (0, 1), most=4)
    assert after.shares.tolist() == best.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert objective(inst, after.shares) == pytest.approx(value, rel=1e-12)
    assert (tally.moves, tally.pairs) == (2, 0)


def test_fitting_single_takes_the_best_single_lot_that_keeps_every_limit() -> None:
    """The halving toy again: one move at a time, the enumeration's best single change."""
    inst = _toy([1000.0] * 4, [20, 20, 20, 20], [0.6, 0.55, 0.5, 0.45], cash=2_500.0)
    harness, start, tally = _Harness(inst), np.zeros(4), Tally()
    after = FittingSingle(tally).step(_search_round(harness, start))
    assert after is not None
    best, value = _best(inst, start, (-1, 0, 1), most=1)
    assert after.shares.tolist() == best.tolist()
    assert objective(inst, after.shares) == pytest.approx(value, rel=1e-12)
    assert tally.moves == 1


def test_pair_buys_one_asset_with_the_cash_of_another() -> None:
    """The exchange toy under the search's kinds: no single move keeps the cash and improves,
    the pair is the enumeration's best exchange of two, counted as one exchange of two moves."""
    inst = _toy([1000.0, 1000.0, 500.0], [30, 30, 40], [1.2, -0.8, -0.8], cash=100.0)
    harness, start, tally = _Harness(inst), np.zeros(3), Tally()
    now = _search_round(harness, start)
    assert FittingHalving(tally).step(now) is None
    assert FittingSingle(tally).step(now) is None
    after = Pair(tally).step(now)
    assert after is not None
    best, value = _best(inst, start, (-1, 0, 1), most=2)
    assert after.shares.tolist() == best.tolist() == [1.0, -1.0, 0.0]
    assert objective(inst, after.shares) == pytest.approx(value, rel=1e-12)
    assert (tally.moves, tally.pairs) == (2, 1)


def test_rows_price_every_move_sparse_as_the_dense_block_does() -> None:
    """The coupled rows' change per move through their sparse columns equals the dense rows x
    assets block's (what the whole-share search computes today)."""
    inst = _toy([3000.0, 1000.0, 500.0, 250.0], [10, 20, 20, 40], [2.0, -3.0, 0.0, -12.0], cash=100.0)
    inst.max_position, inst.max_turnover = 0.4, 0.05
    harness = _Harness(inst)
    rows, data = harness.search.rows, harness.search.data
    start = np.array([1.0, -2.0, 0.0, 4.0])
    z = harness.search.at(start).z
    moves = harness.neighbours(start, True)
    d_buy, d_sell, d_x = moves.change(data, z)
    dense = rows.a_trade.toarray()
    n, owner = data.n, moves.owner
    expected = dense[:, owner] * d_buy + dense[:, n + owner] * d_sell + rows.a_scalar @ d_x.T
    assert rows.a_trade.shape[0] >= 3  # cash, the position caps, the turnover
    assert np.array_equal(rows.changes(owner, d_buy, d_sell, d_x), expected)
    every = np.arange(rows.a_trade.shape[0])
    assert np.array_equal(rows.changes(owner, d_buy, d_sell, d_x, every), expected)
