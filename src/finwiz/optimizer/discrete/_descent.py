"""The descent on the exact objective: one short loop over a table of move kinds.

From whole-share trades that keep every row, each round prices every single-asset move of the
current trades (one lot up or down, to no trade, selling out, the minimum size, back to a first
candidate: the ``neighbours``) exactly, and asks the move kinds (``_move_kinds.MOVE_KINDS``), in
table order, for proposals: sets of moves, at most one per asset. The first proposal that keeps
every row and lowers the exact objective is taken. Some kinds run in a round where single moves
are worth a round, the others (``stalled``) only where none is, and the search's (``always``,
``_search``) in every round. Every threshold of the descent and the search is a field of
``DescentSettings``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import ClassVar

import numpy as np

from finwiz.optimizer._trace import count
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _snap, _trade_point
from finwiz.optimizer.discrete._pricing import _Pricer, _Rows

Neighbours = Callable[[np.ndarray, bool], _Moves]
"""The single-asset moves of share trades (``True``: two lots either way too)."""


@dataclass(frozen=True)
class DescentSettings:
    """Every threshold of the descent, in one place."""

    rounds: int = 200
    """Descent rounds at most."""
    relative_gain: float = 1e-7
    """A move improves when it lowers the objective by more than this fraction of it (float noise)."""
    round_gain: float = 1e-2
    """A round runs only while all its moves together could gain more than this fraction of what one
    lot of every asset is worth (the whole-share allowance): the rest is below what rounding costs."""
    lot_gain: float = 1e-2
    """... and a move counts only if it also gains this fraction of what one lot of an average asset
    is worth: the descent goes for what matters (with every improving move from the start, the
    default strategy ended 2.4 % higher on one exact-MIQP instance). A strict descent (``polish``)
    then goes on over every improving move, so that no single lot improves its answer."""
    pair_tries: int = 24
    """An exchange pairs at most this many of the most improving single moves with every other move."""
    thrifty_tries: int = 96
    """... then this many of the improving moves the tight rows block, by their best place in a
    row's ranking by gain per unit of it (fewer left a binding turnover cap's exchanges unfound)."""
    thrifty_gain: float = 0.05
    """... such a pair taken only if it gains this fraction of what one lot of every asset is worth:
    each taken costs a round (0.1 left one unfound; docs/decisions/turnover-exchanges.md)."""
    chain_tries: int = 24
    """A chain is tried for at most this many moves blocked by one tight row (the most promising first)."""
    chain_options: int = 32
    """A chain is made of the cheapest this many helper moves, or not at all."""
    chain_margin: float = 1e-9
    """A chain's helpers give back this fraction more room than the blocked move needs."""
    chain_room: float = 1e-12
    """A helper gives back more than this room (weight units) on the blocking row, or does not help."""
    tight_reach: float = 2.0
    """A row is tight when within this many of the dearest lots (in value) of one of its bounds."""
    snap: bool = True
    """Single moves' gains snapped to a billionth of the largest (ties go to the first in order)."""
    all_pairs: int = 400
    """The search's exchanges pair every move with every other when there are at most this many..."""
    pair_moves: int = 96
    """... else the rounding's one-lot moves (if at most ``all_pairs``) and this many best-priced ones."""
    checks: int = 16
    """The search checks exactly at most this many of a round's best single moves, or pairs, each."""


@dataclass(frozen=True)
class _Point:
    """Share trades, the model's variables ``z`` there and their exact objective."""

    shares: np.ndarray
    z: np.ndarray
    value: float
    rows: np.ndarray | None = field(default=None, compare=False)  # the coupled rows at z, once checked


@dataclass(frozen=True)
class _Search:
    """What the descent's moves are judged by: the request, the exact pricer and the coupled rows."""

    data: ProblemData
    pricer: _Pricer
    rows: _Rows

    def at(self, shares: np.ndarray) -> _Point:
        """The point of share trades ``shares``."""
        z = _trade_point(self.data, shares)
        return _Point(shares, z, self.pricer.objective(z, shares))

    def apply(self, point: _Point, moves: _Moves, chosen: np.ndarray) -> _Point | None:
        """``point`` after the moves ``chosen`` (one per asset), if together they keep every row
        and lower the exact objective."""
        if chosen.size == 0:
            return None
        trial = point.shares.copy()
        trial[moves.owner[chosen]] = moves.shares[chosen]
        after = self.at(trial)
        if not after.value < point.value:
            return None
        values = self.rows.values(after.z)
        return replace(after, rows=values) if self.rows.holds(values) else None

    @cached_property
    def dearest(self) -> float:
        """The value of the dearest lot (what a tight row's reach counts in)."""
        return float(np.max(self.data.lot * self.data.prices, initial=0.0))

    @cached_property
    def surely(self) -> tuple[np.ndarray, np.ndarray]:
        """The coupled rows' bounds passed by float noise's margin (``_SURELY``): what ``broken`` checks."""
        return self.rows.lower - _SURELY, self.rows.upper + _SURELY


_SURELY = 1e-9  # weight units: a summed change past a bound by more breaks it (float noise is ~1e-15)
_NOISE = 1e-9  # relative to the objective's terms: a summed change above 0 by more is surely no gain
_SNAPPED = 1e-9  # what ``_snap`` moves a gain by at most, relative to the largest


@dataclass(frozen=True)
class _Tight:
    """The rows one lot of some asset could cross (a cash budget spent, a cap met), their room
    either way, and each move's change of them (tight rows x moves: the tight rows are few)."""

    low: np.ndarray
    high: np.ndarray
    delta: np.ndarray

    @staticmethod
    def near(search: _Search, values: np.ndarray, lots: float) -> np.ndarray:
        """The rows within ``lots`` of the dearest lots of their bounds (``values``: the rows at z)."""
        rows = search.rows
        reach = lots * search.dearest / search.data.ref_value
        return np.asarray((np.minimum(rows.upper - values, values - rows.lower) <= reach).nonzero()[0])

    @classmethod
    def of(cls, search: _Search, z: np.ndarray, moves: _Moves, lots: float, values: np.ndarray | None = None) -> _Tight:
        """The tight rows at ``z`` (``values``: the rows there, if known) and ``moves``' changes of them."""
        data, rows = search.data, search.rows
        values = rows.values(z) if values is None else values
        tight = cls.near(search, values, lots)
        d_buy, d_sell, d_x = moves.change(data, z)
        delta = rows.changes(moves.owner, d_buy, d_sell, d_x, tight)
        return cls(rows.lower[tight] - values[tight], rows.upper[tight] - values[tight], delta)

    def holds(self, chosen: np.ndarray, takes: list[int]) -> np.ndarray:
        """Whether the first ``take`` moves of ``chosen`` (for each of ``takes``) together may keep
        the tight rows: their summed changes past no bound by more than float noise (all prefixes
        in one pass: the tight rows refuse most of the descent's proposals)."""
        if not takes:
            return np.zeros(0, bool)
        total = self.delta.take(chosen, axis=1).cumsum(axis=1).take(np.asarray(takes) - 1, axis=1)
        return np.asarray(~((total > self.high[:, None] + _SURELY) | (total < self.low[:, None] - _SURELY)).any(axis=0))

    def fits(self, delta: np.ndarray, row: int | None = None) -> np.ndarray:
        """Which changes (rows x ..., the rows first) keep every tight row (or only tight row ``row``)."""
        shape = (-1,) + (1,) * (delta.ndim - 1)
        low, high = self.low.reshape(shape), self.high.reshape(shape)
        if row is not None:
            low, high = low[row : row + 1], high[row : row + 1]
        return np.asarray(((delta >= low - _CHECK) & (delta <= high + _CHECK)).all(axis=0))


@dataclass
class _Round:
    """One round: the point, its single moves and their exact gains (snapped), which of them
    improve enough (``better``), each asset's best of those in order of gain, and whether they
    are worth a round."""

    search: _Search
    point: _Point
    moves: _Moves
    gain: np.ndarray
    better: np.ndarray
    worth: bool
    neighbours: Neighbours
    settings: DescentSettings

    @classmethod
    def of(
        cls,
        search: _Search,
        point: _Point,
        moves: _Moves,
        neighbours: Neighbours,
        settings: DescentSettings = DescentSettings(),
        coarse: float = 0.0,
        blocked: np.ndarray | None = None,
        gain: np.ndarray | None = None,
    ) -> _Round:
        """The round at ``point`` over ``moves`` (``gain``: their snapped gains, if known); a move
        improves by more than ``coarse`` and is not ``blocked``."""
        if gain is None:
            gain = _snap(search.pricer.changes(point.z, point.shares, moves))
        better = gain < -max(settings.relative_gain * abs(point.value), coarse)
        if blocked is not None:
            better &= ~blocked
        if coarse == 0 or not better.any():
            return cls(search, point, moves, gain, better, bool(better.any()), neighbours, settings)
        # Worth a round by each asset's best move summed in order of gain: the first kind (AllBest) takes them.
        best = _best_per_asset(moves, gain, better)
        worth = -gain.take(best).sum() >= settings.round_gain * search.pricer.unit
        made = cls(search, point, moves, gain, better, bool(worth), neighbours, settings)
        made.__dict__["best"] = best  # what ``best`` would compute: kept as its cached value
        return made

    @cached_property
    def best(self) -> np.ndarray:
        """Each asset's best improving move, in order of gain (built for the first kind that asks)."""
        return _best_per_asset(self.moves, self.gain, self.better)

    @cached_property
    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each single move's change of every coupled row (rows x moves), and the room below and
        above each row (built for the first kind that asks)."""
        search, z = self.search, self.point.z
        rows = search.rows
        values = self.values
        delta = rows.changes(self.moves.owner, *self.moves.change(search.data, z))
        return delta, rows.lower - values, rows.upper - values

    def broken(self, chosen: np.ndarray) -> bool:
        """Whether the moves ``chosen`` (of different assets) together surely break a coupled row:
        the rows are linear and the costs separable, so the moves' changes add up, and a sum past
        a bound by more than float noise is a point the exact check refuses (found without it;
        the tight rows first: :meth:`_Tight.holds`)."""
        return self.breaking(chosen).size > 0

    def breaking(self, chosen: np.ndarray) -> np.ndarray:
        """The coupled rows the moves ``chosen`` together surely break (:meth:`broken`'s)."""
        search, z, n = self.search, self.point.z, self.search.data.n
        rows = search.rows
        d_buy, d_sell, d_x = (s.take(chosen, axis=0) for s in self.moves.change(search.data, z))
        owner = self.moves.owner.take(chosen)
        step = np.zeros(2 * n)
        step[owner], step[n + owner] = d_buy, d_sell
        total = self.values + rows.a_trade @ step + rows.a_scalar @ d_x.sum(axis=0)
        low, high = search.surely
        return np.asarray(((total > high) | (total < low)).nonzero()[0])

    def holding(self, chosen: np.ndarray, rows: np.ndarray, takes: list[int]) -> np.ndarray:
        """Whether the first ``take`` moves of ``chosen`` (for each of ``takes``) may keep the coupled
        ``rows`` (as :meth:`_Tight.holds`, one pass for all): the rows a longer prefix broke, which
        refute most shorter ones without a whole check each (a sum past a bound by more than float
        noise, however summed, is one the exact check refuses)."""
        search = self.search
        first = chosen[: max(takes)]
        d_buy, d_sell, d_x = (s.take(first, axis=0) for s in self.moves.change(search.data, self.point.z))
        delta = search.rows.changes(self.moves.owner.take(first), d_buy, d_sell, d_x, rows)
        values = self.values.take(rows)
        watched = _Tight(search.rows.lower.take(rows) - values, search.rows.upper.take(rows) - values, delta)
        return watched.holds(np.arange(len(first)), takes)

    @cached_property
    def scale(self) -> float:
        """The size of the terms summed into the objective at the round's point (its float noise's scale)."""
        pricer, z = self.search.pricer, self.point.z
        rows = pricer.squared_rows(z)
        count = abs(pricer.stacked.count) * np.count_nonzero(self.point.shares)
        return float(abs(self.point.value) + rows @ rows + np.abs(pricer.linear) @ np.abs(z) + count)

    def worse(self, chosen: np.ndarray, takes: list[int]) -> np.ndarray:
        """Whether the first ``take`` moves of ``chosen`` (of different assets; for each of
        ``takes``) together surely do not lower the objective (``together``: their change past its
        noise; all False where the shared rows are many). The exact check refuses those: most of
        the halvings a round tries, each a whole point priced."""
        change, noise = self.together(chosen, takes)
        return np.asarray(change > noise)

    def together(self, chosen: np.ndarray, takes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The objective's change by the first ``take`` moves of ``chosen`` (of different assets;
        for each of ``takes``) and a bound on its error: the objective is quadratic, so the change
        is the sum of the moves' own (``gain``) plus ``||sum c||^2 - sum ||c||^2`` over their
        changes ``c`` of the rows two assets share (``_Pricer.shared``: moves of different assets
        interact only there); the error is the snap's and float noise. Zero, with an infinite
        error, where the shared rows are many (``_Grams.few_shared``) or the account has no lots:
        there the rows, not the objective, refuse most sets, and this cost more than it saved."""
        pricer = self.search.pricer
        if self.search.data.lots is None or pricer.grams.few_shared is None or len(chosen) == 0 or not takes:
            return np.zeros(len(takes)), np.full(len(takes), np.inf)
        at, chosen = np.asarray(takes) - 1, chosen[: max(takes)]
        gain = self.gain.take(chosen)
        c = pricer.shared(self.point.z, self.moves, chosen)
        run = np.cumsum(c, axis=1)
        joint = np.einsum("ij,ij->j", run, run).take(at)
        alone = np.cumsum(np.einsum("ij,ij->j", c, c)).take(at)
        summed, size = np.cumsum(np.stack([gain, np.abs(gain)]), axis=1).take(at, axis=1)
        noise = _NOISE * (size + joint + alone + self.scale) + (at + 1) * self.snapped
        return summed + joint - alone, noise

    @cached_property
    def shared(self) -> np.ndarray:
        """Each single move's change of the squared rows two assets share (``_Pricer.shared``): the
        exchanges' cross terms, asked for by more than one of a round's steps."""
        return self.search.pricer.shared(self.point.z, self.moves)

    @cached_property
    def snapped(self) -> float:
        """What ``_snap`` may have moved a single move's gain by at most (the round's gains are snapped)."""
        return _SNAPPED * float(np.max(np.abs(self.gain), initial=0.0))

    @cached_property
    def values(self) -> np.ndarray:
        """The coupled rows at the round's point (kept on it when a move made it)."""
        point = self.point
        return self.search.rows.values(point.z) if point.rows is None else point.rows

    @cached_property
    def fitting(self) -> np.ndarray:
        """Each single move's gain where it keeps every row on its own, ``inf`` elsewhere."""
        delta, low, high = self.rows
        fits = np.all((delta >= low[:, None] - _CHECK) & (delta <= high[:, None] + _CHECK), axis=0)
        return np.where(fits, self.gain, np.inf)

    @cached_property
    def tight(self) -> _Tight:
        """The tight rows and each single move's change of them (built for the first kind that asks)."""
        return _Tight.of(self.search, self.point.z, self.moves, self.settings.tight_reach, self.values)


@dataclass(frozen=True)
class _Proposal:
    """Moves of a table (at most one per asset) to take together."""

    moves: _Moves
    chosen: np.ndarray


class MoveKind(ABC):
    """One kind of move of the whole-share descent: ``propose`` yields sets of moves, the most
    promising first; ``apply`` takes one when, checked exactly, it keeps every row and lowers the
    objective."""

    name: ClassVar[str]
    stalled: ClassVar[bool] = False
    """Whether the kind runs only in a round where no single move is worth a round (else only in one where some is)."""
    always: ClassVar[bool] = False
    """Whether the kind runs in every round (the search's: a round worth it is the rounding's notion)."""

    @abstractmethod
    def propose(self, now: _Round) -> Iterator[_Proposal]:
        """The sets of moves to try, in order."""

    def apply(self, now: _Round, proposal: _Proposal) -> _Point | None:
        """The round's point after ``proposal``, if it keeps every row and lowers the objective."""
        return now.search.apply(now.point, proposal.moves, proposal.chosen)

    def step(self, now: _Round) -> _Point | None:
        """The first proposal ``apply`` takes; None if none."""
        for proposal in self.propose(now):
            accepted = self.apply(now, proposal)
            if accepted is not None:
                return accepted
        return None


def descend(
    search: _Search,
    shares: np.ndarray,
    neighbours: Neighbours,
    kinds: Sequence[MoveKind],
    settings: DescentSettings = DescentSettings(),
    strict: bool = False,
) -> np.ndarray:
    """Descent on the exact objective from ``shares`` (which keep every row), keeping every row:
    each round the first move kind whose proposal is taken moves the point. Moves gaining under
    ``settings.lot_gain`` of an average lot's worth are left unless ``strict``, which then goes on
    over every improving move. Stops when no kind moves the point: the answer then cannot be
    bettered by moving any one asset by one lot."""
    return descend_from(search, search.at(shares), neighbours, kinds, settings, strict).shares


def descend_from(
    search: _Search,
    point: _Point,
    neighbours: Neighbours,
    kinds: Sequence[MoveKind],
    settings: DescentSettings = DescentSettings(),
    strict: bool = False,
    spent: Callable[[], bool] | None = None,
) -> _Point:
    """:func:`descend` from ``point``, to a point; each round first asks ``spent`` whether a
    budget is spent (then the point stands)."""
    coarse = settings.lot_gain * search.pricer.unit / search.data.n
    blocked: np.ndarray | None = None  # the coarse moves a round found all blocked, left out once
    priced: tuple[_Moves, np.ndarray] | None = None  # the single moves of the point, kept while it stands
    for _ in range(settings.rounds):
        if spent is not None and spent():
            break
        count("descent")
        if priced is None:
            moves = neighbours(point.shares, False)
            gain = search.pricer.changes(point.z, point.shares, moves)
            priced = moves, _snap(gain) if settings.snap else gain
        now = _Round.of(search, point, priced[0], neighbours, settings, coarse, blocked, priced[1])
        if strict and coarse > 0 and not now.worth:  # nothing coarse left: every improving move from here on
            coarse = 0.0
            continue
        accepted = _first_taken(kinds, now)
        if accepted is None and strict and coarse > 0:  # the coarse moves are all blocked: the fine ones next
            coarse, blocked = 0.0, now.better
            continue
        if accepted is None:
            break
        point, priced, blocked = accepted, None, None
    return point


def _first_taken(kinds: Sequence[MoveKind], now: _Round) -> _Point | None:
    """Where the first kind for this round (``stalled`` ones when no single move is worth a round,
    the others when some is) moves the point; None if none does."""
    for kind in kinds:
        if kind.always or kind.stalled != now.worth:
            accepted = kind.step(now)
            if accepted is not None:
                return accepted
    return None


def _best_per_asset(moves: _Moves, gain: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Each asset's best allowed move (the first of equal ones), assets in order of gain (equal
    gains: by asset). Two scatters instead of sorting every allowed move by asset and gain: a
    quarter of the time on thousands of moves."""
    candidates = allowed.nonzero()[0]  # the methods: numpy's functions wrap them in Python (~1 us a call)
    owner, value, end = moves.owner[candidates], gain[candidates], len(gain)
    assets = int(owner.max(initial=-1)) + 1
    best = np.empty(assets)
    best.fill(np.inf)
    np.minimum.at(best, owner, value)
    at_best = value == best[owner]
    first = np.empty(assets, dtype=np.intp)
    first.fill(end)
    np.minimum.at(first, owner[at_best], candidates[at_best])
    first = first[first < end]
    return np.asarray(first[gain[first].argsort(kind="stable")])


def _halvings(k: int) -> list[int]:
    """``k, k/2, k/4, ..., 1``."""
    out = []
    while k >= 1:
        out.append(k)
        k //= 2
    return out
