"""The search's mends: an improving move that breaks one coupled row, with the row met again by
other assets' trades (``Mended``: one asset; ``Split``: two, for a dropped trade stuck at its
minimum). Kinds of the search's table (``search_kinds``, here: it builds on the pairs), tried after the pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _moves, _Separable
from finwiz.optimizer.discrete._descent import MoveKind, _Proposal, _Round
from finwiz.optimizer.discrete._move_kinds import EveryPair, FittingHalving, FittingSingle, Pair, Tally, _Searching
from finwiz.optimizer.discrete._neighbourhood import firsts, joined, kept_by_rows, smallest, subset
from finwiz.optimizer.verify._compliance import meets_minimum

__all__ = ["MENDS", "Mended", "Split", "search_kinds"]


def _distinct(moves: _Moves, sets: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best ``MENDS`` of ``sets`` (rows of one or two move indices, -1: none; ``price``), each
    set of (asset, trade) once: the same trade is in the table as a lot, no trade, the minimum
    or a step. The best few times as many looked at only (the improving exchanges are many)."""
    best = smallest(price, 8 * MENDS)
    sets, price = sets[best], price[best]
    same = np.unique(np.stack([moves.owner, moves.shares]), axis=1, return_inverse=True)[1].ravel()
    keys = np.sort(np.where(sets >= 0, same[sets], -1), axis=1)
    first = np.unique(keys, axis=0, return_index=True)[1]
    first = first[smallest(price[first], MENDS)]
    return sets[first], price[first]


MENDS = 32
"""The best improving single moves, and exchanges, breaking one row, that ``Mended`` mends."""


class Mended(_Searching):
    """An improving single move or exchange of two assets that breaks one coupled row, with a third
    asset's trade moved by as many lots as that row needs (at least the minimum trade size): a
    trade dropped under a binding sector cap, the cap met again by selling more of another name.
    Neither one lot of the third asset nor any exchange of two reaches it: on a $378k account
    with a $6,236 minimum trade (seed 8 of benchmarks/test_bench_small.py), dropping a $6,260
    sale of one Health name and a $6,272 purchase of a Tech name, and selling 35 more shares of
    another Health name, lowered the answer by 5.7 %, though each two of the three break the cap
    or lose. Priced exactly: the set's price, the third move's own change and their cross terms."""

    name = "mended"

    def __init__(self, tally: Tally, pair: Pair, separable: _Separable) -> None:
        super().__init__(tally)
        self.pair, self.separable = pair, separable

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        once = self._broken_once(now, *self._broken(now))
        if once is None:
            return
        sets, price, change, row, need = once
        mends, which = self._mends(now, sets, row, need)
        if which.size == 0:
            return
        total, fits = self._priced(now, sets[which], price[which], change[:, which], (mends,))
        good = np.flatnonzero(fits & (total < self.threshold(now)))
        table, m = joined(now.moves, mends), len(now.moves.owner)
        for j in good[smallest(total[good], now.settings.checks)]:
            chosen = sets[which[j]]
            yield _Proposal(table, np.append(chosen[chosen >= 0], m + j))

    @staticmethod
    def _broken_once(
        now: _Round, sets: np.ndarray, price: np.ndarray, most: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The ``sets`` (and their prices) that break one row (up to ``most``: once per row): with
        their change of every row, that row and what it needs to be met again; None if none."""
        delta, low, high = now.rows
        change = delta[:, sets[:, 0]] + np.where(sets[:, 1] >= 0, delta[:, sets[:, 1]], 0.0)
        broken = (change > high[:, None] + _CHECK) | (change < low[:, None] - _CHECK)
        count = broken.sum(axis=0)
        pick = np.flatnonzero((count >= 1) & (count <= most))
        if pick.size == 0:
            return None
        one, row = np.nonzero(broken[:, pick].T)
        one = pick[one]
        change = change[:, one]
        at = change[row, np.arange(one.size)]
        return sets[one], price[one], change, row, np.where(at > high[row], high[row], low[row]) - at

    def _priced(
        self, now: _Round, sets: np.ndarray, price: np.ndarray, change: np.ndarray, extra: tuple[_Moves, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each set (and its price and row ``change``) with the ``extra`` moves of the same place
        (one per set in each): the exact objective change (their own changes and every cross term
        of the shared rows) and whether every row is kept."""
        search, z, moves = now.search, now.point.z, now.moves
        legs = np.unique(sets[sets >= 0])
        shared = search.pricer.shared(z, subset(moves, legs))
        place = np.searchsorted(legs, np.maximum(sets, 0))
        vectors = [shared[:, place[:, 0]] + np.where(sets[:, 1] >= 0, shared[:, place[:, 1]], 0.0)]
        total, after = price.copy(), change.copy()
        for mends in extra:
            total += search.pricer.changes(z, now.point.shares, mends)
            after += search.rows.changes(mends.owner, *mends.change(search.data, z))
            vectors.append(search.pricer.shared(z, mends))
        for i in range(len(vectors)):
            for j in range(i):
                total += 2.0 * np.einsum("ij,ij->j", vectors[i], vectors[j])
        _, low, high = now.rows
        fits = np.all((after >= low[:, None] - _CHECK) & (after <= high[:, None] + _CHECK), axis=0)
        self.tally.work += len(total)
        return total, fits

    def _broken(self, now: _Round) -> tuple[np.ndarray, np.ndarray]:
        """The best improving single moves and exchanges (``Pair``'s, of this round) that break
        some row: move indices (-1: none) and their prices."""
        single = np.flatnonzero(np.isinf(now.fitting) & (now.gain < self.threshold(now)))
        singles = _distinct(now.moves, np.stack([single, np.full(single.size, -1)], axis=1), now.gain[single])
        blocked = self.pair.blocked
        if blocked is None or blocked[0] is not now:
            return singles
        _, first, second, price = blocked
        kept = kept_by_rows(*now.rows, (first, second))
        broke = np.ones(price.size, dtype=bool)
        broke[kept] = False
        pairs = _distinct(now.moves, np.stack([first[broke], second[broke]], axis=1), price[broke])
        return np.vstack([singles[0], pairs[0]]), np.concatenate([singles[1], pairs[1]])

    def _mends(self, now: _Round, sets: np.ndarray, row: np.ndarray, need: np.ndarray) -> tuple[_Moves, np.ndarray]:
        """Every other asset's trade moved the way that gives each set's broken ``row`` what it
        ``need``s, by as many lots as that takes (its one-lot change of the row), at least the
        minimum trade size; the moves that keep their own limits, and the set each mends."""
        search, shares = now.search, now.point.shares
        data, n = search.data, search.data.n
        owner = np.tile(np.arange(n), 2)
        side = np.repeat([1.0, -1.0], n)
        lots = _moves(data, owner, shares[owner] + side * data.lot[owner])
        rows = np.unique(row)
        per = search.rows.changes(owner, *lots.change(data, now.point.z), rows)[np.searchsorted(rows, row)]
        with np.errstate(divide="ignore", invalid="ignore"):
            count = np.ceil(need[:, None] / per - 1e-9)  # sets x (asset, side)
        ok = (per * need[:, None] > 0) & np.isfinite(count)
        for leg in (0, 1):
            partner = np.where(sets[:, leg] >= 0, now.moves.owner[np.maximum(sets[:, leg], 0)], -1)
            ok &= owner[None, :] != partner[:, None]
        which, col = np.nonzero(ok)
        trade = shares[owner[col]] + side[col] * count[which, col] * data.lot[owner[col]]
        worth = data.lot * data.prices
        least = np.ceil(data.min_trade_value / worth[owner[col]] - 1e-12) * data.lot[owner[col]]
        trade = np.where(trade != 0, np.sign(trade) * np.maximum(np.abs(trade), least), 0.0)
        mends = _moves(data, owner[col], trade)
        keep = meets_minimum(data, trade * data.prices[owner[col]]) & self.separable.ok(mends)
        return subset(mends, np.flatnonzero(keep)), which[keep]


SPLITS = (1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4)
"""The shares of a row's need that ``Split`` gives its first mend (the rest to the second)."""
SPLIT_DROPS, SPLIT_MENDS, SPLIT_ROWS = 4, 5, 2
"""The best few drops ``Split`` mends, the best one-asset mends it pairs, and how many rows a
drop may break (a sector cap and the cash row: a sale dropped spends cash too), each tried as
the row the mends are sized to."""


class Split(Mended):
    """``Mended`` with the row's need split over two other assets: a trade that cannot shrink
    (within one lot of the minimum trade size) dropped, the binding row it leaves met again by
    two trades, not one (each cheap while small: the objective is quadratic). Only such drops
    are looked at, so it costs nothing elsewhere. On 45 names (benchmarks/test_bench_quality.py,
    minimize_costs seed 0): a $1,748 sale of a $291 name, $1,500 minimum, under a binding 25 %
    sector cap, dropped for two more sales of that sector (the best one-asset mend is worse)."""

    name = "split mended"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        once = self._broken_once(now, *self._stuck(now), most=SPLIT_ROWS)
        if once is None:
            return
        sets, price, change, row, need = once
        for s in range(len(sets)):
            one = slice(s, s + 1)
            yield from self._split(now, sets[one], price[one], change[:, one], row[one], need[one])

    def _stuck(self, now: _Round) -> tuple[np.ndarray, np.ndarray]:
        """The improving drops, breaking some row, of trades that cannot shrink by one lot."""
        moves, data, trade = now.moves, now.search.data, now.point.shares
        # The assets first: none without a minimum trade size, the usual case.
        stuck = (trade != 0) & ((np.abs(trade) - data.lot) * data.prices < data.min_trade_value)
        if not stuck.any():
            single = np.arange(0)
        else:
            single = np.flatnonzero(stuck[moves.owner] & (moves.shares == 0) & (now.gain < self.threshold(now)))
            single = single[np.isinf(now.fitting[single])]
            single = single[firsts(moves.owner[single], moves.shares[single])]
            single = single[smallest(now.gain[single], SPLIT_DROPS)]
        return np.stack([single, np.full(single.size, -1)], axis=1), now.gain[single]

    def _split(
        self, now: _Round, sets: np.ndarray, price: np.ndarray, change: np.ndarray, row: np.ndarray, need: np.ndarray
    ) -> Iterator[_Proposal]:
        """One set's need met by two of its ``SPLIT_MENDS`` best one-asset mends, in ``SPLITS``."""
        whole, _ = self._mends(now, sets, row, need)
        if len(whole.owner) < 2:
            return
        at = np.zeros(len(whole.owner), dtype=int)
        total, _ = self._priced(now, sets[at], price[at], change[:, at], (whole,))
        best = whole.owner[smallest(total, SPLIT_MENDS)]
        # A share of the need to one of the best, the rest (after its whole lots) to another.
        at = np.zeros(len(SPLITS), dtype=int)
        first, _ = self._mends(now, sets[at], row[at], need * np.array(SPLITS))
        first = subset(first, np.flatnonzero(np.isin(first.owner, best)))
        search = now.search
        met = search.rows.changes(first.owner, *first.change(search.data, now.point.z), row)[0]
        at = np.zeros(len(first.owner), dtype=int)
        second, which = self._mends(now, sets[at], row[at], need - met)
        keep = np.flatnonzero(np.isin(second.owner, best) & (second.owner != first.owner[which]))
        # Each pair of trades once: a share and its rest reach the same pair in either order.
        ends = np.sort(np.stack([first.owner[which[keep]], second.owner[keep]]), axis=0)
        pairs = np.stack([*ends, first.shares[which[keep]], second.shares[keep]])
        pairs[2:] = np.where(first.owner[which[keep]] < second.owner[keep], pairs[2:], pairs[3:1:-1])
        keep = keep[np.unique(pairs, axis=1, return_index=True)[1]]
        first, second, k = subset(first, which[keep]), subset(second, keep), len(keep)
        if k == 0:
            return
        at = np.zeros(k, dtype=int)
        total, fits = self._priced(now, sets[at], price[at], change[:, at], (first, second))
        good = np.flatnonzero(fits & (total < self.threshold(now)))
        table, m = joined(joined(now.moves, first), second), len(now.moves.owner)
        for j in good[smallest(total[good], now.settings.checks)]:
            yield _Proposal(table, np.array([sets[0, 0], m + j, m + k + j]))


def search_kinds(tally: Tally, steepest: bool = False, separable: _Separable | None = None) -> tuple[MoveKind, ...]:
    """The search's table (``steepest``: one move at a time, no halving, no ``EveryPair`` nor
    mends: the kicks' trial descents; ``Mended`` and ``Split`` only with the search's ``separable``)."""
    if steepest:
        return FittingSingle(tally), Pair(tally)
    pair = Pair(tally)
    mends: tuple[MoveKind, ...] = (
        () if separable is None else (Mended(tally, pair, separable), Split(tally, pair, separable))
    )
    return FittingHalving(tally), FittingSingle(tally), pair, EveryPair(tally), *mends
