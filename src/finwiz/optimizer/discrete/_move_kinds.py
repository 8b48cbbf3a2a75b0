"""The move kinds of the whole-share descent, and their table (``MOVE_KINDS``, tried in order).

| kind | runs when | proposes |
|---|---|---|
| ``AllBest`` | single moves are worth a round | every asset's best improving move at once |
| ``Halving`` | ... and that broke a row | the best ones that keep the tight rows alone: all, half, a quarter, ... |
| ``Exchange`` | ... and none of those holds | the best pairs of two assets' moves keeping the tight rows |
| ``Chain`` | no single move is worth a round | a move blocked by one tight row, paid for by moves of several others |

The search after the rounding (``_search``) descends with its own table (``_mended.search_kinds``), every
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

from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _snap, ranges
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
from finwiz.optimizer.discrete._neighbourhood import firsts, kept_by_rows, smallest, subset

__all__ = [
    "MOVE_KINDS",
    "AllBest",
    "Chain",
    "EveryPair",
    "Exchange",
    "FittingHalving",
    "FittingSingle",
    "Halving",
    "Pair",
    "Tally",
]


class AllBest(MoveKind):
    """Every asset's best improving single move at once: taken when together they keep every row
    and lower the objective (far from the limits, the usual case)."""

    name = "all best"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        best = now.best
        if not now.worse(best, [len(best)])[0] and not now.broken(best):  # else the exact check would refuse it
            yield _Proposal(now.moves, now.best)


class Halving(MoveKind):
    """Each asset's best improving move among those that keep the tight rows on their own: all of
    them, then the best half, the best quarter, ... (moves interact through the coupled terms: a
    shared cash square, factor risk)."""

    name = "halving"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        tight = now.tight
        chosen = _best_per_asset(now.moves, now.gain, now.better & tight.fits(tight.delta))
        takes = _halvings(len(chosen))
        held = [take for take, fits in zip(takes, tight.holds(chosen, takes), strict=True) if fits]
        refuted: set[int] = set()  # the prefixes the rows a longer one broke refute
        for at, (take, worse) in enumerate(zip(held, now.worse(chosen, held), strict=True)):
            if worse or take in refuted:  # the exact check would refuse it
                continue
            broken = now.breaking(chosen[:take])
            if broken.size == 0:
                yield _Proposal(now.moves, chosen[:take])
            elif rest := held[at + 1 :]:  # the shorter prefixes on the rows it broke, at once, before their own checks
                refuted.update(t for t, ok in zip(rest, now.holding(chosen, broken, rest), strict=True) if not ok)


class Exchange(MoveKind):
    """The best pair of moves of two assets whose sum keeps the tight rows and lowers the
    objective, where binding rows block every single move: what the binding limits' duals trade
    at in the continuous problem. The pair's change is the sum of the two plus their cross term."""

    name = "exchange"

    def propose(self, now: _Round) -> Iterator[_Proposal]:
        gain, tight, moves, settings = now.gain, now.tight, now.moves, now.settings
        improving = (gain < 0).nonzero()[0]
        if improving.size == 0 or tight.delta.shape[0] == 0:
            return
        # The most improving moves; then the blocked ones that gain most per unit of their row
        # (``thrifty``), only when those found none, and only a pair worth a round; several at
        # once where they hold together (a round each cost more than finding them).
        tries = improving[gain[improving].argsort(kind="stable")][: settings.pair_tries]
        is_try = np.zeros(len(gain), dtype=bool)
        is_try[tries] = True
        thrifty = _thrifty(gain, tight, improving, settings.thrifty_tries)
        thrifty = np.sort(thrifty[~is_try.take(thrifty)])  # np.setdiff1d's (distinct moves), without its two sorts
        pairs, total = _pairs(now, np.concatenate([tries, thrifty]))
        plain = is_try.take(pairs[:, 0])  # a mask: np.isin sorts the thousands of pairs
        if plain.any():
            yield _Proposal(moves, pairs[np.argmax(plain)])
        least = settings.thrifty_gain * now.search.pricer.unit
        worth = ~plain & (total < -least)
        pairs, total = pairs[worth], total[worth]
        together = _together(now, pairs, total, least) if len(pairs) > 1 else pairs[:1].ravel()
        if len(together) > 2:  # one pair alone is the next proposal
            yield _Proposal(moves, together)
        if len(pairs):
            yield _Proposal(moves, pairs[0])


def _pairs(now: _Round, tries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (rows of two moves) of one of ``tries`` and another asset's move that keep the
    tight rows and improve, and their prices, best first (ties: the first
    try, then the first move). Only each try's partners (``_partners``: a blocked move has few)
    are priced, and the rows checked exactly on those that would improve."""
    moves, gain, tight = now.moves, now.gain, now.tight
    owner = moves.owner
    none = np.zeros((0, 2), dtype=np.intp), np.zeros(0)
    if tries.size == 0:
        return none
    at, partner = _partners(tight, tries)
    apart = owner.take(tries.take(at)) != owner.take(partner)
    at, partner = at[apart], partner[apart]
    if at.size == 0:
        return none
    first = tries.take(at)
    total = gain.take(first)  # then added to in place, in the same order: a temporary of ~100k pairs costs a mapping
    total += gain.take(partner)
    total += _cross(now, first, partner)
    keep = (total < 0).nonzero()[0]
    keep = keep[tight.fits(tight.delta.take(first[keep], axis=1) + tight.delta.take(partner[keep], axis=1))]
    keep = keep[np.lexsort((partner[keep], at[keep], total[keep]))]
    return np.stack([first[keep], partner[keep]], axis=1), total[keep]


def _together(now: _Round, pairs: np.ndarray, total: np.ndarray, least: float) -> np.ndarray:
    """The moves of the best pairs (``pairs``, priced ``total``, best first) that share no asset,
    each taken while, priced with the cross terms of those before it, it still improves by more
    than ``least`` and the tight rows hold the sum (the rows are linear, the objective quadratic:
    both exact; the other rows are the exact check's)."""
    tight = now.tight
    apart = _disjoint(now.moves.owner, pairs)
    pairs, total, flat = pairs[apart], total[apart], pairs[apart].ravel()
    cross = _cross(now, np.repeat(flat, len(flat)), np.tile(flat, len(flat))).reshape(len(flat), -1)
    return pairs[_taken_together(total, cross, tight.delta.take(flat, axis=1), tight, least)].ravel()


def _taken_together(total: np.ndarray, cross: np.ndarray, delta: np.ndarray, tight: _Tight, least: float) -> list[int]:
    """:func:`_together`'s greedy over disjoint pairs (prices ``total``, the moves' cross terms
    ``cross`` and tight-row changes ``delta``, two columns a pair): the places of the pairs taken."""
    summed = delta.reshape(len(delta), -1, 2).sum(axis=2)  # each pair's change (rows x pairs)
    low, high = tight.low - _CHECK, tight.high + _CHECK  # ``tight.fits``' bounds
    taken, columns, change = [0], [0, 1], delta[:, 0] + delta[:, 1]
    for k in range(1, len(total)):
        price = total[k] + cross[2 * k : 2 * k + 2].take(columns, axis=1).sum()
        if not price < -least:
            continue
        after = change + summed[:, k]
        if ((after >= low) & (after <= high)).all():
            taken.append(k)
            columns += [2 * k, 2 * k + 1]
            change = after
    return taken


def _cross(now: _Round, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The cross terms of the pairs of moves (``first``, ``second``): with few shared rows, each
    pair's product of the moves' changes of them; else from the moves the pairs name alone."""
    pricer, z = now.search.pricer, now.point.z
    if pricer.shared_gram is None:
        change = now.shared
        return np.asarray(2.0 * np.einsum("ij,ij->j", change.take(first, axis=1), change.take(second, axis=1)))
    used, places = np.unique(np.concatenate([first, second]), return_inverse=True)
    left, right = places[: len(first)], places[len(first) :]
    tries, rows = np.unique(left, return_inverse=True)
    return np.asarray(pricer.cross(z, subset(now.moves, used), tries)[rows, right])


def _partners(tight: _Tight, tries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a place in ``tries``, a move) that could keep the tight rows together (a superset:
    the caller checks them exactly): where a try alone breaks tight rows, the moves that give
    back enough of its tightest one (a threshold on that row's changes); where it breaks none,
    every move. Every row's pool sorted at once and every threshold found by one search: a loop
    over the rows some try breaks cost most of an exchange on 100 binding assets (19 such rows)."""
    delta, m = tight.delta, tight.delta.shape[1]
    left = delta.take(tries, axis=1)  # rows x tries
    over, under = left > tight.high[:, None] + _CHECK, left < tight.low[:, None] - _CHECK
    # a partner at most (at least) the room the try leaves, and then some (the check's tolerance)
    up, down = tight.high[:, None] + 2 * _CHECK - left, tight.low[:, None] - 2 * _CHECK - left
    most = np.where(over, up, -np.inf).max(axis=1, initial=-np.inf)
    least = np.where(under, down, np.inf).min(axis=1, initial=np.inf)
    # the moves some try could use, by row (np.nonzero's order: a 2-D nonzero cost ~3x this)
    row, pool = np.divmod(((delta <= most[:, None]) | (delta >= least[:, None])).ravel().nonzero()[0], m)
    change = delta[row, pool]
    order = np.lexsort((change, row))  # by row, then change: thresholds take ties whole (any order: the same pairs)
    keys, pool = _by_row(row.take(order), change.take(order)), pool.take(order)
    start, stop = np.zeros(left.shape, dtype=np.intp), np.full(left.shape, m + 1, dtype=np.intp)
    r, t = over.nonzero()
    start[r, t] = keys.searchsorted(_by_row(r, -np.inf), side="left")
    stop[r, t] = keys.searchsorted(_by_row(r, up[r, t]), side="right")
    r, t = under.nonzero()
    start[r, t] = keys.searchsorted(_by_row(r, down[r, t]), side="left")
    stop[r, t] = keys.searchsorted(_by_row(r, np.inf), side="right")
    count = np.maximum(stop - start, 0)
    row_of = np.argmin(count, axis=0)  # each try's tightest row
    places = np.arange(len(tries))
    size, begin = count[row_of, places], start[row_of, places]
    free = size > m  # broken on no tight row: every move
    size[free] = 0
    at = np.repeat(places, size)
    partner = pool.take(ranges(begin, size))
    if free.any():
        at = np.concatenate([at, np.repeat(places[free], m)])
        partner = np.concatenate([partner, np.tile(np.arange(m), int(free.sum()))])
    return at, partner


def _by_row(row: np.ndarray, value: np.ndarray | float) -> np.ndarray:
    """Keys ordered by ``row``, then ``value`` (complex numbers compare that way), each exact."""
    keys = np.empty(row.size, dtype=complex)
    keys.real, keys.imag = row, value
    return keys


def _thrifty(gain: np.ndarray, tight: _Tight, improving: np.ndarray, take: int) -> np.ndarray:
    """The ``take`` improving moves the tight rows block that gain most per unit of a row (by their
    best place in one row's ranking; ties: the first move): with a binding turnover cap the most
    improving moves are the dear lots, and the exchange that pays (one lot sold less of a dear
    name for one more of a cheaper one) starts from a cheap lot."""
    rank = np.full(len(gain), np.inf)  # each move's best place in a row's ranking
    delta = tight.delta.take(improving, axis=1)
    breaks = (delta < tight.low[:, None] - _CHECK) | (delta > tight.high[:, None] + _CHECK)
    row, place = np.divmod(breaks.ravel().nonzero()[0], breaks.shape[1])  # by row, then move: a 2-D nonzero's order
    per_unit = gain.take(improving.take(place)) / np.abs(delta[row, place])
    order = np.lexsort((place, per_unit, row))
    row, place = row.take(order), place.take(order)
    first = row.searchsorted(row)  # where each row's ranking starts
    np.minimum.at(rank, improving.take(place), (np.arange(len(row)) - first).astype(float))
    ranked = np.isfinite(rank).nonzero()[0]  # the blocked ones: a stable sort of them alone keeps their order
    return np.asarray(ranked[rank[ranked].argsort(kind="stable")[:take]])


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
        if _Tight.near(search, now.values, settings.tight_reach).size == 0:
            return
        wide = now.neighbours(point.shares, True)
        gain = _snap(search.pricer.changes(point.z, point.shares, wide))
        tight = _Tight.of(search, point.z, wide, settings.tight_reach, now.values)
        owner = wide.owner
        inside = (tight.delta >= tight.low[:, None] - _CHECK) & (tight.delta <= tight.high[:, None] + _CHECK)
        keeps = inside.all(axis=0)
        blocked_once = np.flatnonzero(inside.sum(axis=0) == len(tight.low) - 1)
        ranked: dict[
            tuple[int, float], tuple[np.ndarray, np.ndarray, float]
        ] = {}  # by (row, side): helpers, best first
        for a in blocked_once[np.argsort(gain[blocked_once], kind="stable")][: settings.chain_tries]:
            r = int(np.flatnonzero(~inside[:, a])[0])
            over = tight.delta[r, a] - tight.high[r]
            need, sign = (over, -1.0) if over > 0 else (tight.low[r] - tight.delta[r, a], 1.0)
            if (r, sign) not in ranked:  # one stable sort per row and side: a try's asset is left out after
                room = sign * tight.delta[r]  # what each move gives back on row r
                helps = np.flatnonzero((room > settings.chain_room) & keeps)
                helps = helps[np.argsort(gain[helps] / room[helps], kind="stable")]
                ranked[r, sign] = helps, room, _most_room(owner, room, helps, settings.chain_options)
            helps, room, most = ranked[r, sign]
            if most * (1 + 1e-12) < need * (1 + settings.chain_margin):  # no try of this row finds the room
                continue
            helps = helps[owner[helps] != owner[a]][: settings.chain_options]
            chosen = _cheapest_room(owner[helps], room[helps], need, settings)
            if chosen is not None:
                yield _Proposal(wide, np.concatenate([[a], np.sort(helps[chosen])]))


def _most_room(owner: np.ndarray, room: np.ndarray, helps: np.ndarray, options: int) -> float:
    """At least the room ``_cheapest_room`` can find among the first ``options`` of ``helps`` (in
    order) of any one try, whose own asset's are left out first: each asset's largest in a window
    longer by the most options of one asset."""
    if helps.size == 0:
        return 0.0
    mine, place = np.unique(owner.take(helps), return_inverse=True)
    window = options + int(np.bincount(place).max())
    best = np.zeros(len(mine))
    np.maximum.at(best, place[:window], room.take(helps[:window]))
    return float(best.sum())


def _cheapest_room(owner: np.ndarray, room: np.ndarray, need: float, settings: DescentSettings) -> np.ndarray | None:
    """At most one option per asset (indices into the arrays, given in order of loss per unit of
    room) giving at least ``need`` room in total at little loss: each taken if its asset has none
    yet or a smaller one (which it replaces), until the room suffices (the greedy of a
    multiple-choice knapsack; the exact check is the caller's). None if all are not enough."""
    picked: dict[int, int] = {}
    total = 0.0
    rooms = room.tolist()
    for k, asset in enumerate(owner.tolist()):
        before = picked.get(asset)
        extra = rooms[k] - (0.0 if before is None else rooms[before])
        if extra <= 0:
            continue
        picked[asset] = k
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
        disjoint = pairs[_disjoint(owner, pairs)]
        # Many exchanges at once first (they interact only through the cross terms): the best
        # disjoint ones, then the best half, ...; then the best few alone.
        for take in _halvings(len(disjoint))[:-1]:
            yield _Proposal(moves, disjoint[:take].ravel())
        for pair in pairs[: settings.checks]:
            yield _Proposal(moves, pair)


def _disjoint(owner: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The places of the pairs (rows of move indices, best first) that share no asset with a better one."""
    used: set[int] = set()
    keep = []
    for k, (a, b) in enumerate(owner.take(pairs).tolist()):  # Python ints: numpy scalars cost ~5x in the loop
        if a not in used and b not in used:
            used.update((a, b))
            keep.append(k)
    return np.array(keep, dtype=np.intp)
