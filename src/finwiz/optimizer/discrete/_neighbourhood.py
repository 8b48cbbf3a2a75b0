"""Every combination of a few assets' trades, priced exactly: moves of three or more assets at once.

Single moves and two-asset exchanges leave whole-share answers 1-8 % above the optimum where the
better answer moves several assets together: on a 15-name account under a sector cap, a turnover
cap and a trade count, the optimum leaves two trades out and spends their turnover on three
others (five assets change; the answer was 7.6 % above SCIP's proof). Here a neighbourhood (a
handful of assets, each with a few candidate trades: its current one, a lot either way, no trade,
the minimum either way, value-matched steps) is searched whole: the objective is quadratic, so the
change of any combination is exactly the sum of each move's own change and of every pair's cross
term ``2 (S d_a)'(S d_b)`` (covariance, cash square, tracking, cost columns); the coupled rows are
linear, so a combination keeps them when the sum of its moves' changes does. Combinations are
built asset by asset, those that can no longer meet a row whatever the remaining assets do are
dropped on the way, and the best is checked on the exact objective and every row before it is
taken.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _moves, _Separable
from finwiz.optimizer.discrete._descent import _Point, _Search
from finwiz.optimizer.verify._compliance import meets_minimum

__all__ = [
    "COMBINATIONS",
    "MATCHED",
    "TRIPLE_MOVES",
    "Neighbourhood",
    "best_combination",
    "can_gain",
    "firsts",
    "hoods",
    "joined",
    "kept_by_rows",
    "matched_steps",
    "options_near",
    "priced_windows",
    "subset",
]

MATCHED = 4
"""The dearest traded lots whose worth the value-matched steps are of."""
COMBINATIONS = 20_000
"""Combinations of one neighbourhood at most (its size is chosen so that the product fits)."""


@dataclass(frozen=True)
class Neighbourhood:
    """Assets and, for each, the trades (shares) it may take besides its current one."""

    assets: np.ndarray
    options: tuple[np.ndarray, ...]


def options_near(data: ProblemData, shares: np.ndarray, asset: int, steps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``asset``'s candidate trades: a lot either way of its current trade, no trade, the
    minimum size either way and its value-matched ``steps`` (``matched_steps``), distinct from
    the current one."""
    lot, now = data.lot[asset], shares[asset]
    smallest = np.ceil(data.min_trade_value / (lot * data.prices[asset]) - 1e-12) * lot
    values = [now + lot, now - lot, 0.0, smallest, -smallest]
    out = np.unique(np.concatenate([values, steps[1][steps[0] == asset]]))
    return np.asarray(out[out != now])


def hoods(search: _Search, shares: np.ndarray) -> list[Neighbourhood]:
    """Windows of the traded assets, largest trade in value first: with each asset's candidate
    trades (``options_near``), then with a lot either way only. (Without the first, the 37 small
    accounts of benchmarks/test_bench_small.py and 12 min-position ones kept their answers, but a
    15-name one of tests/optimizer/discrete/test_small_accounts.py, seed 6, ended 1.6 % higher.)"""
    data = search.data
    play = np.flatnonzero(shares != 0)
    apart = np.abs(shares[play]) * data.prices[play]
    play = play[np.argsort(-apart, kind="stable")]
    steps = matched_steps(data, shares)
    rich = [options_near(data, shares, int(a), steps) for a in play]
    # Then a lot either way only: wider windows (nine assets), exchanges of four or more lots.
    plain = [np.array([shares[a] - data.lot[a], shares[a] + data.lot[a]]) for a in play]
    return _windows(play, rich, 1) + _windows(play, plain)


def _windows(play: np.ndarray, options: list[np.ndarray], past: int = 0) -> list[Neighbourhood]:
    """``play`` in windows as wide as ``COMBINATIONS`` allows, overlapping by half (rounded down
    with ``past``: a three-asset window's next starts two on, not one)."""
    hoods, start = [], 0
    while start < len(play):
        end, size = start, 1
        while end < len(play) and size * (len(options[end]) + 1) <= COMBINATIONS:
            size *= len(options[end]) + 1
            end += 1
        hoods.append(Neighbourhood(play[start:end], tuple(options[start:end])))
        if end >= len(play):
            break
        start = max(start + 1, (start + end + past) // 2)
    return hoods


def matched_steps(
    data: ProblemData, shares: np.ndarray, kept: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(asset, trade) pairs: each asset's trade moved either way by one of the ``MATCHED``
    dearest traded lots' worth in its own lots (rounded down and up; two lots or more): a cheap
    asset's side of an exchange against one lot of a dear one under a binding turnover or cash
    row (11 shares of a $5 name against one of a $53 one was 1.8 % on a 15-name account; 5 lots
    of a $171 name against one of an $843 one under a sector cap, 1.7 % on another). ``kept``:
    the steps by their dear lots, kept between a search's rounds (they change when those do)."""
    worth = data.lot * data.prices
    dear = np.unique(worth[shares != 0])[::-1][:MATCHED]
    found = None if kept is None else kept.get(dear.tobytes())
    if found is None:
        k = np.concatenate([np.floor(dear[:, None] / worth), np.ceil(dear[:, None] / worth)])
        k = np.concatenate([k, -k])  # rows: each dear lot's worth, rounded down and up, either way
        keep = np.abs(k) >= 2
        owner = np.broadcast_to(np.arange(data.n), k.shape)[keep]
        found = owner, k[keep] * data.lot[owner]
        if kept is not None:
            kept[dear.tobytes()] = found
    owner, step = found
    return owner, shares[owner] + step


Priced = tuple[_Moves, np.ndarray, np.ndarray, np.ndarray]
"""A window's admissible moves, each one's own change, its change of the shared rows and of the coupled rows."""


def priced_windows(search: _Search, separable: _Separable, point: _Point, hoods: list[Neighbourhood]) -> list[Priced]:
    """Each window's moves that keep the minimum size and their separable rows, priced at
    ``point`` (``best_combination``'s ``priced``): every window's in one table, as one call's
    overhead is most of a window's pricing."""
    data, pricer = search.data, search.pricer
    owner = np.concatenate([np.repeat(h.assets, [len(o) for o in h.options]) for h in hoods] or [np.zeros(0, int)])
    options = np.concatenate([o for h in hoods for o in h.options] or [np.zeros(0)])
    moves = _moves(data, owner, options)
    keep = meets_minimum(data, moves.shares * data.prices[owner]) & separable.ok(moves)
    own, shared = pricer.changes(point.z, point.shares, moves), pricer.shared(point.z, moves)
    delta = search.rows.changes(owner, *moves.change(data, point.z))
    out, start = [], 0
    for h in hoods:
        end = start + sum(len(o) for o in h.options)
        idx = start + np.flatnonzero(keep[start:end])
        out.append((subset(moves, idx), own[idx], shared[:, idx], delta[:, idx]))
        start = end
    return out


def best_combination(
    search: _Search,
    separable: _Separable,
    point: _Point,
    hood: Neighbourhood,
    gain: float,
    priced: Priced | None = None,
) -> _Point | None:
    """The best combination of ``hood``'s moves (at most one per asset) that keeps every row and
    lowers the exact objective by more than ``gain``; None when none does. ``priced``: the
    window's from ``priced_windows``, if priced there."""
    rows = search.rows
    # Each move's own change, every pair's cross term and each move's change of the rows; a
    # last zero entry is "this asset stays".
    moves, own, shared, delta = priced_windows(search, separable, point, [hood])[0] if priced is None else priced
    m = len(moves.owner)
    if m == 0:
        return None
    alone = own - np.einsum("ij,ij->j", shared, shared)
    if not can_gain(own, shared, moves.owner, gain):
        return None
    own, alone = np.append(own, 0.0), np.append(alone, 0.0)
    cross = np.zeros((m + 1, m + 1))
    cross[:m, :m] = 2.0 * (shared.T @ shared)  # one move per asset: the shared rows' alone (``_Pricer.cross``)
    values = rows.values(point.z)
    low, high = rows.lower - values, rows.upper - values
    reach = np.abs(delta).sum(axis=1)
    near = np.flatnonzero(np.minimum(high, -low) <= reach + _CHECK)
    # The rows a set can reach and the shared rows, each with a last zero entry: "this asset stays".
    delta = np.hstack([delta[near], np.zeros((len(near), 1))])
    shared = np.hstack([shared, np.zeros((len(shared), 1))])
    # Each asset's moves (assets in order, each's in order), then the last entry ("stays").
    order = np.argsort(moves.owner, kind="stable")
    ends = np.flatnonzero(np.diff(moves.owner[order])) + 1
    groups = np.split(np.insert(order, np.append(ends, m), m), ends + np.arange(1, len(ends) + 1))
    bounds = _Bounds.of(groups, delta, shared, alone, (low[near], high[near]))
    chosen, total = _enumerated(groups, own, cross, bounds, gain)
    for best in smallest(total, 4):
        if not total[best] < -gain:
            return None
        picked = chosen[best][chosen[best] < m]
        after = search.apply(point, moves, picked)
        if after is not None and after.value < point.value - gain:
            return after
    return None


@dataclass(frozen=True)
class _Bounds:
    """What the assets not yet placed (from the ``k``-th group on) can still add: to each row
    (``least``, ``most``), to each shared row (``u_least``, ``u_most``) and to the objective's
    separable part (``lowest``); and the rows (their change per move) and their room."""

    delta: np.ndarray
    shared: np.ndarray
    alone: np.ndarray
    room: tuple[np.ndarray, np.ndarray]  # widened by the check's tolerance
    least: np.ndarray
    most: np.ndarray
    u_least: np.ndarray
    u_most: np.ndarray
    lowest: np.ndarray

    @classmethod
    def of(
        cls,
        groups: list[np.ndarray],
        delta: np.ndarray,
        shared: np.ndarray,
        alone: np.ndarray,
        room: tuple[np.ndarray, np.ndarray],
    ) -> _Bounds:
        columns = np.concatenate(groups)
        starts = np.cumsum([0] + [len(g) for g in groups[:-1]])

        # Each group's least and most at once (``reduceat``), then what the groups from the k-th on
        # add: a running sum from the last group back (the same floats as adding them one by one).
        def rest(values: np.ndarray, reduce: np.ufunc) -> np.ndarray:
            per = reduce.reduceat(values[..., columns], starts, axis=-1)
            summed = np.cumsum(per[..., ::-1], axis=-1)[..., ::-1]
            return np.concatenate([summed, np.zeros((*values.shape[:-1], 1))], axis=-1).T

        least, most = rest(delta, np.minimum), rest(delta, np.maximum)
        u_least, u_most = rest(shared, np.minimum), rest(shared, np.maximum)
        widened = (room[0] - _CHECK, room[1] + _CHECK)  # the check's tolerance, once per window
        return cls(delta, shared, alone, widened, least, most, u_least, u_most, rest(alone, np.minimum))

    def alive(self, k: int, row: np.ndarray, u: np.ndarray, placed: np.ndarray, gain: float) -> np.ndarray:
        """Which partial sets (placed up to group ``k``: their rows ``row``, shared rows ``u`` and
        separable part ``placed``) can still keep every row and gain more than ``gain``: a set's
        change is ``sum alone + ||sum u||^2`` (``can_gain``), at least its placed ``alone``, the
        least of the rest's, and each shared row's distance from the box the rest can add."""
        low, high = self.room
        keeps = np.all((row + self.most[k + 1] >= low) & (row + self.least[k + 1] <= high), axis=1)
        gap = np.maximum(np.maximum(u + self.u_least[k + 1], -(u + self.u_most[k + 1])), 0.0)
        # Half the gain as slack: the bound's and the sum's float rounding never decide.
        return np.asarray(keeps & (placed + self.lowest[k + 1] + (gap * gap).sum(axis=1) < -0.5 * gain))


def _enumerated(
    groups: list[np.ndarray], own: np.ndarray, cross: np.ndarray, bounds: _Bounds, gain: float
) -> tuple[np.ndarray, np.ndarray]:
    """Every set of one entry per group (the last: stays) that ``bounds`` keep alive, built group
    by group: the entries chosen and each set's change (own changes and cross terms, summed in
    the order they are placed)."""
    chosen = np.zeros((1, 0), dtype=np.int64)
    total, placed = np.zeros(1), np.zeros(1)
    row, u = np.zeros((1, len(bounds.delta))), np.zeros((1, len(bounds.shared)))
    # Each move's rows as a row (row-major): a group's are then one contiguous gather.
    delta, shared = np.ascontiguousarray(bounds.delta.T), np.ascontiguousarray(bounds.shared.T)
    flat_cross, width = cross.ravel(), cross.shape[1]
    for k, group in enumerate(groups):
        size = len(placed) * len(group)
        placed = (placed[:, None] + bounds.alone.take(group)[None, :]).ravel()
        row = (row[:, None, :] + delta.take(group, axis=0)[None, :, :]).reshape(size, len(bounds.delta))
        u = (u[:, None, :] + shared.take(group, axis=0)[None, :, :]).reshape(size, len(bounds.shared))
        kept = np.flatnonzero(bounds.alive(k, row, u, placed, gain))
        parent, pick = kept // len(group), group.take(kept % len(group))
        chosen = np.hstack([chosen.take(parent, axis=0), pick[:, None]])
        # The cross terms with each placed move, added one by one in order (a running sum: the
        # same floats as adding them in a loop, one flat gather instead of two per placed move).
        placed_cross = flat_cross.take(chosen[:, :-1] * width + pick[:, None])
        terms = np.hstack([(total.take(parent) + own.take(pick))[:, None], placed_cross])
        total = terms.cumsum(axis=1)[:, -1]
        placed, row, u = placed.take(kept), row.take(kept, axis=0), u.take(kept, axis=0)
    return chosen, total


TRIPLE_MOVES = 80
"""Moves a three-asset exchange is made of at most (the best priced; 80^3 combinations)."""


def best_triple(search: _Search, moves: _Moves, point: _Point, gain: float) -> _Point | None:
    """The best exchange of three of ``moves`` (three different assets) that keeps every row and
    lowers the exact objective by more than ``gain``: its change is the three moves' own plus the
    three pairs' cross terms (exact: the objective is quadratic), its rows the sum of the three
    moves' changes. On start-from-cash allocations, one lot of three names against each other
    was what left finwiz 0.9-2.9 % farther from PyPortfolioOpt's targets than its LP."""
    data, pricer, rows = search.data, search.pricer, search.rows
    own = pricer.changes(point.z, point.shares, moves)
    keep = np.argsort(own, kind="stable")[:TRIPLE_MOVES]
    moves = subset(moves, keep)
    own, m = own[keep], len(keep)
    if m < 3:
        return None
    shared = pricer.shared(point.z, moves)
    live = _in_some_triple(own - np.einsum("ij,ij->j", shared, shared), moves.owner, gain)
    if live.size < 3:
        return None
    moves = subset(moves, live)
    own, shared = own[live], shared[:, live]
    cross = 2.0 * (shared.T @ shared)  # the shared rows' alone (``_Pricer.cross``): different assets only
    cross[moves.owner[:, None] == moves.owner[None, :]] = np.inf  # one move per asset
    # Each set once (i < j < k): its six orders are one exchange (they were priced six times).
    i, j, k = _triples(len(own))
    total = own[i] + own[j] + own[k] + cross[i, j] + cross[i, k] + cross[j, k]
    delta = rows.changes(moves.owner, *moves.change(data, point.z))
    values = rows.values(point.z)
    improving = np.flatnonzero(total < -gain)  # the rows checked on these only (a few percent)
    members = (i[improving], j[improving], k[improving])
    improving = improving[kept_by_rows(delta, rows.lower - values, rows.upper - values, members)]
    for best in improving[smallest(total[improving], 1)]:
        after = search.apply(point, moves, np.array([i[best], j[best], k[best]]))
        if after is not None and after.value < point.value - gain:
            return after
    return None


@functools.cache
def _triples(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``i < j < k < m``, in the order of the ``m x m x m`` table."""
    i, j, k = np.indices((m, m, m)).reshape(3, -1)
    keep = (i < j) & (j < k)
    return i[keep], j[keep], k[keep]


def _in_some_triple(alone: np.ndarray, owner: np.ndarray, gain: float) -> np.ndarray:
    """The moves that can be in a triple gaining more than ``gain`` (``can_gain``'s bound: a
    move's ``own - ||u||^2`` plus the two least of the other assets' (at most 0) must be below
    ``-gain``), in order."""
    assets, at = np.unique(owner, return_inverse=True)
    least = np.zeros(len(assets))
    np.minimum.at(least, at, alone)
    if len(assets) < 3:
        return np.arange(0)
    order = np.argsort(least, kind="stable")[:3]
    first, second, third = least[order]
    others = np.where(at == order[0], second + third, np.where(at == order[1], first + third, first + second))
    return np.flatnonzero(alone + others < -gain)


def kept_by_rows(delta: np.ndarray, low: np.ndarray, high: np.ndarray, members: tuple[np.ndarray, ...]) -> np.ndarray:
    """Which sets of moves (the ``k``-th is the moves ``members[0][k]``, ``members[1][k]``, ...,
    columns of ``delta``, each move's change of the rows) keep every row (``low``, ``high``: its
    room either way): indices into ``members``. Only rows that that many moves can reach are
    checked, the least room first, each on the sets the rows before it kept (checked on every
    pair or triple at once, row by row, the masks took most of an exchange's time: 1.8 s of
    seed 18's search)."""
    reach = len(members) * np.abs(delta).max(axis=1, initial=0.0)
    room = np.minimum(high, -low)
    near = np.flatnonzero(room <= reach + _CHECK)
    alive = np.arange(len(members[0]) if members else 0)
    for r in near[np.argsort(room[near] - reach[near], kind="stable")]:
        if alive.size == 0:
            break
        on_row = delta[r]
        change = on_row.take(members[0].take(alive))
        for other in members[1:]:
            change = change + on_row.take(other.take(alive))
        alive = alive[(change >= low[r] - _CHECK) & (change <= high[r] + _CHECK)]
    return alive


def firsts(owner: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The first index of each distinct (``owner``, ``shares``) pair, in order: what
    ``np.unique(np.stack([owner, shares]), axis=1, return_index=True)`` gives, sorted, at a
    fraction of its time (a stable sort by both keys, then the first of each run)."""
    order = np.lexsort((shares, owner))
    a, b = owner[order], shares[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return np.sort(order[start])


def subset(moves: _Moves, idx: np.ndarray) -> _Moves:
    """The moves ``idx`` (indices or a mask) of ``moves``."""
    idx = np.flatnonzero(idx) if idx.dtype == bool else idx  # take: a row gather at a fraction of indexing's time
    return _Moves(
        moves.owner.take(idx),
        moves.shares.take(idx),
        moves.buy.take(idx),
        moves.sell.take(idx),
        moves.scalars.take(idx, axis=0),
    )


def joined(first: _Moves, second: _Moves) -> _Moves:
    """``first``'s moves, then ``second``'s."""
    return _Moves(
        np.concatenate([first.owner, second.owner]),
        np.concatenate([first.shares, second.shares]),
        np.concatenate([first.buy, second.buy]),
        np.concatenate([first.sell, second.sell]),
        np.concatenate([first.scalars, second.scalars]),
    )


def smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest ``values``, in order (a partition first: the pairs are many)."""
    if values.size > k:
        part = np.argpartition(values, k)[:k]
        return np.asarray(part[np.argsort(values[part], kind="stable")])
    return np.argsort(values, kind="stable")


def can_gain(own: np.ndarray, shared: np.ndarray, owner: np.ndarray, gain: float) -> bool:
    """Whether some moves of different assets (at most one each) could lower the objective by more
    than ``gain``: their change is ``sum own + ||sum u||^2 - sum ||u||^2`` (``u``: each move's change
    of the shared rows, ``shared``; the cross terms are ``2 u_a'u_b``), at least the sum over the
    assets of ``min(0, own - ||u||^2)`` at its least. It left out 10-25 % of the windows of seeds
    2 and 18 of benchmarks/test_bench_small.py, each of which the enumeration found nothing in."""
    alone = own - np.einsum("ij,ij->j", shared, shared)
    assets, at = np.unique(owner, return_inverse=True)
    least = np.zeros(len(assets))
    np.minimum.at(least, at, alone)
    return bool(least.sum() < -gain)
