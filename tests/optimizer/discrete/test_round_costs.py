"""The descent's cheaper bookkeeping (s14-rounds) held to the plain computations it replaces: the
thrifty ranking, the tight rows' dense block and the chain's room bound."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from finwiz.optimizer.discrete._candidates import _CHECK
from finwiz.optimizer.discrete._descent import DescentSettings, _Tight
from finwiz.optimizer.discrete._move_kinds import _cheapest_room, _most_room, _thrifty
from finwiz.optimizer.discrete._pricing import _Rows


def _ranked_by_loop(gain: np.ndarray, tight: _Tight, improving: np.ndarray, take: int) -> np.ndarray:
    """The thrifty ranking one row at a time (a stable sort of each row's blocked moves)."""
    rank = np.full(len(gain), np.inf)
    delta = tight.delta[:, improving]
    breaks = (delta < tight.low[:, None] - _CHECK) | (delta > tight.high[:, None] + _CHECK)
    for r in range(delta.shape[0]):
        blocked = improving[breaks[r]]
        order = blocked[np.argsort(gain[blocked] / np.abs(delta[r, breaks[r]]), kind="stable")]
        for place, move in enumerate(order):
            rank[move] = min(rank[move], place)
    ranked = np.argsort(rank, kind="stable")[:take]
    return ranked[np.isfinite(rank[ranked])]


def test_thrifty_ranks_every_row_as_the_row_by_row_sort_does_ties_included() -> None:
    """Random rows and moves, gains on a coarse grid (many ties): the same moves in the same order."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        rows, m = int(rng.integers(1, 6)), int(rng.integers(5, 80))
        delta = rng.choice([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], size=(rows, m))
        tight = _Tight(-rng.uniform(0, 1.5, rows), rng.uniform(0, 1.5, rows), delta)
        gain = rng.choice([-3.0, -2.0, -1.0, 0.5], size=m)
        improving = np.flatnonzero(gain < 0)
        take = int(rng.integers(1, m + 1))
        got = _thrifty(gain, tight, improving, take)
        assert got.tolist() == _ranked_by_loop(gain, tight, improving, take).tolist()


def test_block_of_rows_is_scipys_row_slice_where_the_rows_are_too_many_to_keep_dense() -> None:
    """600 rows over 1000 columns (no dense copy kept): every selection, repeats and order kept."""
    a = sparse.random(600, 1000, density=0.003, random_state=3, format="csc")
    rows = _Rows(a, np.zeros((600, 5)), np.zeros(600), -np.ones(600), np.ones(600), sparse.csr_array(a))
    assert rows.dense is None
    for select in (np.array([5, 599, 0, 5]), np.arange(0, 600, 7), np.array([], dtype=np.intp)):
        want = rows.by_row[select, :].toarray()
        assert np.array_equal(rows.block(select), want)


def test_room_bound_is_never_below_what_the_greedy_finds_for_any_try() -> None:
    """Helpers of a few assets (several options each) in order: for every try's asset left out,
    the room the greedy gathers is within the bound, and a need above the bound finds nothing."""
    rng = np.random.default_rng(11)
    settings = DescentSettings(chain_options=6)
    for _ in range(200):
        m = int(rng.integers(1, 40))
        owner, room = rng.integers(0, 8, m), rng.uniform(0.01, 1.0, m)
        helps = rng.permutation(m)
        most = _most_room(owner, room, helps, settings.chain_options)
        for mine in range(8):
            kept = helps[owner[helps] != mine][: settings.chain_options]
            found = _cheapest_room(owner[kept], room[kept], 1e9, settings)  # never enough: all gathered
            assert found is None
            per_asset = {int(a): max(room[kept][owner[kept] == a]) for a in set(owner[kept].tolist())}
            assert sum(per_asset.values()) <= most * (1 + 1e-12)
            assert _cheapest_room(owner[kept], room[kept], most * (1 + 1e-9), settings) is None
