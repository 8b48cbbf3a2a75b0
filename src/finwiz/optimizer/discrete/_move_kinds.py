"""The move kinds of the whole-share descent, and their table (``MOVE_KINDS``, tried in order).

| kind | runs when | proposes |
|---|---|---|
| ``AllBest`` | single moves are worth a round | every asset's best improving move at once |
| ``Halving`` | ... and that broke a row | the best ones that keep the tight rows alone: all, half, a quarter, ... |
| ``Exchange`` | ... and none of those holds | the best pair of moves of two assets whose sum keeps the tight rows |
| ``Chain`` | no single move is worth a round | a move blocked by one tight row, paid for by moves of several others |

The search after the rounding (``_search``) descends with its own table (``search_kinds``), every
kind in every round, each move taken only if it gains more than ``relative_gain`` of the objective:

| kind | proposes |
|---|---|
| ``FittingHalving`` | every asset's best move that keeps every row on its own at once, then the best half, ... |
| ``FittingSingle`` | the best few such moves, one at a time |
| ``Pair`` | the best pairs of moves of two assets whose sum keeps every row (every pair, on few moves) |
| ``EveryPair`` | (many moves) every one-lot move against every other one-lot move |
| ``Mended`` | an improving move or pair that breaks one row, and a third asset's trade sized to that row |
| ``Split`` | the drop of a trade that cannot shrink, breaking one row, and two assets' trades sharing its need |

Each is checked exactly (every row, the exact objective) before the descent takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _moves, _Separable, _snap
from finwiz.optimizer.discrete._descent import (
    DescentSettings,
    MoveKind,
    _best_per_asset,
    _halvings,
    _Point,
    _Proposal,
    _Round,
    _Tight,
)
from finwiz.optimizer.discrete._neighbourhood import firsts, joined, kept_by_rows, smallest, subset
from finwiz.optimizer.verify._compliance import meets_minimum

__all__ = [
    "MOVE_KINDS",
    "AllBest",
    "Chain",
    "EveryPair",
    "Exchange",
    "FittingHalving",
    "FittingSingle",
    "Halving",
    "Mended",
    "Pair",
    "Split",
    "Tally",
]


class AllBest(MoveKind):
    """Every asset's best improving single move at once: taken when together they keep every row
    and lower the objective (far from the limits, the usual case)."""

    name = "all best"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        yield _Proposal(now.moves, now.best)


class Halving(MoveKind):
    """Each asset's best improving move among those that keep the tight rows on their own: all of
    them, then the best half, the best quarter, ... (moves interact through the coupled terms: a
    shared cash square, factor risk)."""

    name = "halving"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        tight = now.tight
        chosen = _best_per_asset(now.moves, now.gain, now.better & tight.fits(tight.delta))
        for take in _halvings(len(chosen)):
            yield _Proposal(now.moves, chosen[:take])


class Exchange(MoveKind):
    """The best pair of moves of two assets whose sum keeps the tight rows and lowers the
    objective, where binding rows block every single move: what the binding limits' duals trade
    at in the continuous problem. The pair's change is the sum of the two plus their cross term."""

    name = "exchange"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        moves, gain, tight = now.moves, now.gain, now.tight
        owner = moves.owner
        improving = np.flatnonzero(gain < 0)
        if improving.size == 0 or tight.delta.shape[0] == 0:
            return
        tries = improving[np.argsort(gain[improving], kind="stable")][: now.settings.pair_tries]
        fits = owner[tries][:, None] != owner[None, :]  # tries x moves
        for r in range(tight.delta.shape[0]):  # row by row: no rows x tries x moves block
            delta = tight.delta[r]
            fits &= tight.fits((delta[tries][:, None] + delta[None, :])[None], r)
        cross = now.search.pricer.cross(now.point.z, moves, tries)
        total = np.where(fits, gain[tries][:, None] + gain[None, :] + cross, np.inf)
        a, b = divmod(int(np.argmin(total)), total.shape[1])
        if total[a, b] < 0:
            yield _Proposal(moves, np.array([tries[a], b]))


class Chain(MoveKind):
    """A move blocked by a single tight row, with room made on that row by the moves of other
    assets (one or two lots) that give it back at the least loss per unit, as many as it takes:
    one lot of a dear asset paid for by lots of several cheap ones, which no exchange of two can
    do. Not only improving moves: with a cash square, one more lot of anything costs more cash
    than it gains alone, and only the chain improves. The most promising blocked moves first."""

    name = "chain"
    stalled = True

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        search, point, settings = now.search, now.point, now.settings
        data, rows = search.data, search.rows
        if _Tight.near(data, rows, rows.values(point.z), settings.tight_reach).size == 0:
            return
        wide = now.neighbours(point.shares, True)
        gain = _snap(search.pricer.changes(point.z, point.shares, wide))
        tight = _Tight.of(data, rows, point.z, wide, settings.tight_reach)
        owner = wide.owner
        inside = (tight.delta >= tight.low[:, None] - _CHECK) & (tight.delta <= tight.high[:, None] + _CHECK)
        blocked_once = np.flatnonzero(inside.sum(axis=0) == len(tight.low) - 1)
        for a in blocked_once[np.argsort(gain[blocked_once], kind="stable")][: settings.chain_tries]:
            r = int(np.flatnonzero(~inside[:, a])[0])
            over = tight.delta[r, a] - tight.high[r]
            need, sign = (over, -1.0) if over > 0 else (tight.low[r] - tight.delta[r, a], 1.0)
            room = sign * tight.delta[r]  # what each move gives back on row r
            helps = np.flatnonzero((room > settings.chain_room) & (owner != owner[a]) & inside.all(axis=0))
            chosen = _cheapest_room(owner[helps], gain[helps], room[helps], need, settings)
            if chosen is not None:
                yield _Proposal(wide, np.concatenate([[a], helps[chosen]]))


def _cheapest_room(
    owner: np.ndarray, gain: np.ndarray, room: np.ndarray, need: float, settings: DescentSettings
) -> np.ndarray | None:
    """At most one option per asset (indices into the arrays) giving at least ``need`` room in
    total at little loss: options in order of loss per unit of room, each taken if its asset has
    none yet or a smaller one (which it replaces), until the room suffices (the greedy of a
    multiple-choice knapsack; the exact check is the caller's). None if all are not enough."""
    picked: dict[int, int] = {}
    total = 0.0
    for k in np.argsort(gain / room, kind="stable")[: settings.chain_options]:
        asset, before = int(owner[k]), picked.get(int(owner[k]))
        extra = float(room[k]) - (0.0 if before is None else float(room[before]))
        if extra <= 0:
            continue
        picked[asset] = int(k)
        total += extra
        if total >= need * (1 + settings.chain_margin):
            return np.array(sorted(picked.values()))
    return None


MOVE_KINDS: tuple[MoveKind, ...] = (AllBest(), Halving(), Exchange(), Chain())
"""The descent's moves, tried in this order each round (see the module)."""


@dataclass
class Tally:
    """What the search's kinds took (moves, and of them two-asset exchanges), how many of a
    round's moves are the rounding's one-lot moves (the first ones, set by its neighbours), and
    the work done: candidates priced (moves, pairs, combinations, triples), the search's budget."""

    moves: int = 0
    pairs: int = 0
    basic: int = 0
    work: int = 0


class _Searching(MoveKind):
    """A kind of the search: runs in every round, and takes a proposal only when it gains more
    than ``relative_gain`` of the objective (checked exactly), counted in the ``tally``."""

    always = True

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    @staticmethod
    def threshold(now: _Round) -> float:
        return -now.settings.relative_gain * max(abs(now.point.value), 1e-300)

    def apply(self, now: _Round, proposal: _Proposal) -> _Point | None:
        accepted = now.search.apply(now.point, proposal.moves, proposal.chosen)
        if accepted is None or not accepted.value < now.point.value + self.threshold(now):
            return None
        self.tally.moves += len(proposal.chosen)
        return accepted


class FittingHalving(_Searching):
    """Every asset's best improving move among those that keep every row on their own (not only
    the tight ones: the search's moves go many lots at once), then the best half, ..."""

    name = "fitting halving"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        best = _best_per_asset(now.moves, now.fitting, now.fitting < self.threshold(now))
        for take in _halvings(len(best)):
            yield _Proposal(now.moves, best[:take])


class FittingSingle(_Searching):
    """The best few improving moves that keep every row on their own, one at a time."""

    name = "fitting single"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        flat, threshold = now.fitting, self.threshold(now)
        for k in smallest(flat, now.settings.checks):
            if flat[k] < threshold:
                yield _Proposal(now.moves, np.array([k]))


class Pair(_Searching):
    """The best pairs of moves of two assets whose sum keeps every row: every one-lot move of the
    rounding's table paired with every move (no exchange of one lot each improves the answer),
    and the best-priced of the others (value-matched and Newton steps); every pair on few moves."""

    name = "pair"
    blocked: tuple[_Round, np.ndarray, np.ndarray, np.ndarray] | None = None
    """The round's improving exchanges (moves, prices): ``Mended`` mends those that break a row."""

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        moves, gain, settings = now.moves, now.gain, now.settings
        owner, m = moves.owner, len(moves.owner)
        if m == 0:
            return
        delta, low, high = now.rows
        basic = np.arange(self.tally.basic) if self.tally.basic <= settings.all_pairs else np.arange(0)
        best = np.argsort(gain, kind="stable")[: settings.pair_moves]
        # Each (asset, trade) once, on both sides: the table holds a trade as often as it is
        # reached (a lot, no trade, the minimum, a step), and its pairs as often again.
        once = firsts(owner, moves.shares)
        if m <= settings.all_pairs:  # every move tried: all of ``once`` (sorted), at their own places
            tries, places = once, np.arange(len(once))
        else:
            tries = np.intersect1d(np.union1d(basic, best), once)
            places = np.searchsorted(once, tries)
        cross = now.search.pricer.cross(now.point.z, subset(moves, once), places)
        total = gain[tries][:, None] + gain[None, once] + cross
        self.tally.work += total.size
        flat, width = total.ravel(), total.shape[1]
        # The improving pairs of two assets only, then those that keep the rows some pair can
        # reach (the others hold whatever two moves do).
        improving = np.flatnonzero(flat < self.threshold(now))
        first, second = tries[improving // width], once[improving % width]
        apart = owner[first] != owner[second]
        improving, first, second = improving[apart], first[apart], second[apart]
        price = flat[improving]
        self.blocked = (now, first, second, price)
        # The rows checked on the best-priced few first: the best ``checks`` kept among them are
        # the best kept of all when they are that many (the rows of every pair: a third of a round).
        best = smallest(price, 4 * settings.checks)
        kept = best[kept_by_rows(delta, low, high, (first[best], second[best]))]
        if len(kept) < settings.checks and len(best) < len(price):
            kept = kept_by_rows(delta, low, high, (first, second))
            kept = kept[smallest(price[kept], settings.checks)]
        for k in improving[kept[: settings.checks]]:
            yield _Proposal(moves, np.array([tries[k // width], once[k % width]]))

    def apply(self, now: _Round, proposal: _Proposal) -> _Point | None:
        accepted = super().apply(now, proposal)
        self.tally.pairs += int(accepted is not None)
        return accepted


class EveryPair(Pair):
    """Where ``Pair`` prices only the best few moves against the others (more than ``all_pairs``
    one-lot moves: 431 names at $50k), every one-lot move against every move (``_Pricer.cross``:
    through the shared rows' Gram matrix, with a covariance) once the cheaper kinds found
    nothing: no exchange of one lot each of two assets then improves the answer (a share of a
    $208 name bought against one of a $273 name sold lowered a risk-aware 431-name answer by
    0.5 %, though neither alone improves it)."""

    name = "every pair"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        moves, gain, settings = now.moves, now.gain, now.settings
        owner, m, basic = moves.owner, len(moves.owner), self.tally.basic
        if basic <= settings.all_pairs or m <= settings.all_pairs:
            return  # Pair priced these pairs already
        # The rounding's moves of exactly one lot, against each other.
        data, shares = now.search.data, now.point.shares
        first = np.arange(basic)
        one = first[np.abs(moves.shares[first] - shares[owner[first]]) == data.lot[owner[first]]]
        tries = one[firsts(owner[one], moves.shares[one])]
        lots = _Moves(owner[tries], moves.shares[tries], moves.buy[tries], moves.sell[tries], moves.scalars[tries])
        total = (
            gain[tries][:, None] + gain[None, tries] + now.search.pricer.cross(now.point.z, lots, np.arange(len(tries)))
        )
        self.tally.work += total.size
        total[owner[tries][:, None] == owner[None, tries]] = np.inf
        delta, low, high = now.rows
        reach = 2.0 * np.abs(delta[:, tries]).max(axis=1, initial=0.0)
        for r in np.flatnonzero(np.minimum(high, -low) <= reach + _CHECK):
            pair = delta[r, tries][:, None] + delta[r, tries][None, :]
            total[(pair < low[r] - _CHECK) | (pair > high[r] + _CHECK)] = np.inf
        flat, width = total.ravel(), total.shape[1]
        improving = np.flatnonzero(flat < self.threshold(now))
        pairs = np.stack([tries[improving // width], tries[improving % width]], axis=1)[np.argsort(flat[improving])]
        disjoint = _disjoint(owner, pairs)
        # Many exchanges at once first (they interact only through the cross terms): the best
        # disjoint ones, then the best half, ...; then the best few alone.
        for take in _halvings(len(disjoint))[:-1]:
            yield _Proposal(moves, disjoint[:take].ravel())
        for pair in pairs[: settings.checks]:
            yield _Proposal(moves, pair)


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


def _disjoint(owner: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The pairs (rows of move indices, best first) that share no asset with a better one."""
    used: set[int] = set()
    keep = []
    for k, (a, b) in enumerate(pairs):
        if owner[a] not in used and owner[b] not in used:
            used.update((int(owner[a]), int(owner[b])))
            keep.append(k)
    return pairs[keep]


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
    ``Mended``: the kicks' trial descents; ``Mended`` only with the search's ``separable``)."""
    if steepest:
        return FittingSingle(tally), Pair(tally)
    pair = Pair(tally)
    mended: tuple[MoveKind, ...] = () if separable is None else (Mended(tally, pair, separable),)
    split: tuple[MoveKind, ...] = () if separable is None else (Split(tally, pair, separable),)
    return FittingHalving(tally), FittingSingle(tally), pair, EveryPair(tally), *mended, *split
