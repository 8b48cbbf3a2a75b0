"""The whole-share answer searched further where one lot is a large piece of the account.

The rounding's descent stops when no single move gains a hundredth of an average lot's worth, and
tries exchanges of two assets only among the few best single moves. Where granularity is coarse
(small accounts, dear shares, large minimum trades), that leaves answers several percent above the
whole-share optimum: one more share of a name, or one lot of one name against one of another,
priced through the cash square or a covariance, would still improve them (issue 23 measured 4-21 %
on a third of independently generated 15-40-name accounts).

Here, after the rounding, a descent over the search's move kinds (``_mended.search_kinds``):
every improving single move (one lot up or down, to no trade, to the minimum, each asset's own
Newton step in whole lots and, on few assets, value-matched steps: a cheap asset's side of an
exchange against one dear lot), then every exchange of two assets' moves (``Pair``: all pairs, not
only the improving ones: with a cash square, buying one lot of A and selling one of B can gain
where each alone loses), priced exactly: the two moves' own changes plus their cross term
``2 (S d_a)'(S d_b)`` of the squared rows (covariance, cash, tracking; ``_Pricer.cross``), costs
and the count being separable. The coupled rows are linear in the trade variables, so a pair keeps
them when the sum of its two changes does; the best improving pairs are checked on the exact
objective and every row before one is taken. Where there are too many moves to pair them all
(more than ``all_pairs``: 431 names at $50k), ``EveryPair``: every one-lot move against every
other. Then ``Mended``: an improving move or pair that breaks one coupled row, with a third
asset's trade moved by as many lots as that row needs. Then, on few assets (at most ``_FEW``),
combinations of a few assets' trades and exchanges of one lot each of three assets
(``_neighbourhood``); then kicks: a dear lot cut by one lot or dropped, held there while the
others re-settle, taken when the result is lower. Repeated until nothing improves: the returned
answer cannot be improved by any single move or any exchange of one lot each of two (or, on few
assets, three) assets.

When the cheap path is enough (decided from the problem): a fine grid (fractional shares), a
taxable account's lots (their own polish), and
a book where one lot is a small piece of an average position (more than ``_FEW`` assets and a
median lot under ``_GATE`` of V/n: the 431-500-asset $10M benchmarks, where the rounding is
within a fraction of one lot of every asset of its bound), and a book of more than ``_MOST``
assets (its moves are priced against dense coupled rows: on the $2M binding book at 2,000 assets
the search made 4 moves in its 2 s budget, for 0.06 %, doubling the request's time) skip the
search.

What it leaves out, each measured to change no answer of the 37 small accounts of
benchmarks/test_bench_small.py nor of the 7 ``min_position_value`` ones of
benchmarks/test_bench_min_position.py: exchanges and combinations check the rows on the improving
sets only (``kept_by_rows``); a window or a triple none of whose sets can gain (``can_gain``) is
not enumerated, nor a partial set of a window that cannot (``_neighbourhood._Bounds``); a kick
that breaks a coupled row is not descended from, and a kicked descent not below the point within
``_KICK_LEAD`` moves is left there (given up sooner when too far above it for the moves left:
``_KICK_REACH``, ``_KICK_CREEP``); a search reaching a point an earlier search of the same model
passed (``searched``: ``_stage._flips``'s starts) ends where that one ended. The measured record
(quality, CPU per kind, each cut's effect) is in docs/decisions/small-accounts-search.md.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from finwiz.optimizer._trace import note
from finwiz.optimizer.discrete._candidates import _LotMoves, _Moves, _moves, _Separable
from finwiz.optimizer.discrete._descent import DescentSettings, _Point, _Search, descend_from
from finwiz.optimizer.discrete._mended import search_kinds
from finwiz.optimizer.discrete._move_kinds import Tally
from finwiz.optimizer.discrete._neighbourhood import (
    TRIPLE_MOVES,
    best_combination,
    best_triple,
    hoods,
    joined,
    matched_steps,
    priced_windows,
    subset,
)
from finwiz.optimizer.discrete._newton import DenseRows, Kept, Probes, newton_lots
from finwiz.optimizer.discrete._objective import achieved, point_of
from finwiz.optimizer.discrete._pricing import Pieces, pieces_of
from finwiz.optimizer.solve._assembler import Model, user_gradient_at
from finwiz.optimizer.verify._compliance import meets_minimum

__all__ = ["SearchOutcome", "coarse", "exchange_search"]

_ENOUGH = 1e-9
"""Relative loss of the whole-share answer against the continuous bound under which nothing is searched."""
SEARCH = DescentSettings(relative_gain=1e-11, lot_gain=0.0, snap=False)
"""The search's descent: every move that gains more than float noise, priced raw."""
_GAIN = SEARCH.relative_gain


@dataclass(frozen=True)
class SearchOutcome:
    """The searched trades, how many exchanges were taken, and whether its budget stopped it."""

    shares: np.ndarray
    exchanges: int
    timed_out: bool
    reason: str = ""  # what stopped it, when its budget did (the warning)


def exchange_search(
    model: Model,
    shares: np.ndarray,
    bound: float | None,
    time_limit: float,
    pieces: Pieces | None = None,
    searched: dict[bytes, np.ndarray] | None = None,
) -> SearchOutcome:
    """``shares`` improved by single moves, two-asset exchanges, dropped trades and combinations
    of a few assets' trades until none improves (see the module); ``pieces``: the model's, if built.
    ``searched``: where earlier searches of the same model went from the points they passed
    (read and added to): a search that reaches one of them ends where that search ended."""
    data = model.data
    if data.fractional or data.lots is not None or not coarse(model):
        return SearchOutcome(shares, 0, False)
    # The budget is the thread's own CPU time: on a loaded machine, or with eight threads sharing
    # the interpreter, wall time stopped the search early and the same request got other trades.
    start = time.thread_time()
    pieces = pieces_of(model, pieces)
    pricer = pieces.pricer.with_gradient(user_gradient_at(model, *point_of(data, shares)))
    rows = DenseRows(*(getattr(pieces.rows, f.name) for f in dataclasses.fields(pieces.rows)))
    local = _Local(Kept(data, pricer, rows), pieces.separable, start + time_limit, time_limit)
    point = local.search.at(shares)
    if bound is not None and point.value - bound <= _ENOUGH * max(abs(point.value), 1e-300):
        return SearchOutcome(shares, 0, False)
    point, passed = local.run(local.descend(point, local.separable), {} if searched is None else searched)
    late = local.stopped  # a search that ended because nothing improved is not reported stopped
    reason = f"whole-share search stopped at its budget: {local.stopped_by}" if late else ""
    if late:
        note(f"{reason} after {local.tally.moves} moves")
    if not local.keeps(point) or not achieved(model, point.shares) < achieved(model, shares):
        return SearchOutcome(shares, 0, late, reason)  # never an answer breaking a limit
    if searched is not None and not late:
        searched.update(dict.fromkeys(passed, point.shares))
    if local.tally.moves and not late:
        tally = local.tally
        note(
            f"whole-share search: {tally.moves} moves ({tally.pairs} two-asset exchanges, {local.kicks} kicks,"
            f" {local.combinations} combinations, {local.triples} three-asset exchanges)"
        )
    return SearchOutcome(point.shares, local.tally.moves, late, reason)


def coarse(model: Model) -> bool:
    """Whether one lot is a large piece of the account and the search can afford it: few assets (at
    most ``_FEW``), or at most ``_MOST`` assets with a median lot worth at least ``_GATE`` of an
    average position (431 names at $50k-$250k at S&P prices; not the $10M benchmark books at 431
    and 500 assets, whose rounding is within a fraction of one lot of every asset of their bound)."""
    data = model.data
    if data.n <= _FEW:
        return True
    worth = data.lot * data.prices
    return data.n <= _MOST and float(np.median(worth)) >= _GATE * data.ref_value / data.n


_FEW = 60
_GATE = 0.1
_MOST = 500
_KICK_TRIALS = 24  # kicks tried in one search at most
_WORK = 12_000_000  # candidates priced: the generated 15-40-name accounts use at most ~9.8M (~1.5 s)
_CLOCK_WORK = 200_000  # work between two reads of the CPU clock (~30 ms of search)
_KICK_ROUNDS = 40  # moves of a kicked descent at most (Newton steps make few enough)
_KICK_LEAD = 4
"""Moves in which a kicked descent must get below the point it kicked, or it is left there: every
kick taken on the small accounts got there within 4 (record: docs/decisions/small-accounts-search-2.md)."""
_KICK_REACH = 0.02
"""What one move of a kick's trial descent is taken to gain at most, as a fraction of the point: a
trial further above it than that per move of its lead left is given up (a trial gains most in its
first move, then creeps; no trial taken on the small accounts was that far)."""
_KICK_CREEP = 3.0
"""... or than this many times its last move's gain per move left: a trial that creeps does not make
up its distance (a taken trial's later move gained at most ~4x its previous one)."""
_KICKS = 6  # the dearest traded lots tried dropped (each followed by a descent without them)
_COARSE = 0.05
"""A traded lot is tried dropped when it is worth at least this fraction of an average position."""


@dataclass
class _Local:
    """The local search's state: the exact pricer and rows, the separable rows, the deadline
    and what was taken."""

    search: _Search
    separable: _Separable
    deadline: float
    limit: float = 0.0  # the CPU seconds the deadline allows (named in the warning)
    tally: Tally = field(default_factory=Tally)  # the moves and exchanges the descents took
    kicks: int = 0
    trials: int = 0
    combinations: int = 0
    triples: int = 0
    stopped: bool = False  # whether the budget cut the search short
    stopped_by: str = ""  # which limit: the count of work, or the CPU safety
    clocked: int = 0  # the work when the CPU clock was last read
    probes: Probes | None = None  # the one-lot moves' parts, kept between rounds (``newton_lots``)
    tables: dict[int, tuple[_Separable, _LotMoves]] = field(default_factory=dict)  # by separable: its moves
    holding: dict[int, tuple[_Separable, int]] = field(default_factory=dict)  # a kick's separable: the asset held
    matched: dict[bytes, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # ``matched_steps``'s, kept

    def lot_moves(self, shares: np.ndarray, separable: _Separable) -> _Moves:
        """The rounding's one-lot moves (``_candidates._lot_moves``) under ``separable``, its table
        kept between rounds: only the assets whose trade changed are priced again."""
        kept = self.tables.get(id(separable))
        if kept is None or kept[0] is not separable:
            kept = self.tables[id(separable)] = (separable, self._table(separable))
        return kept[1](shares, False)

    def _table(self, separable: _Separable) -> _LotMoves:
        """A new one-lot table under ``separable``; a kick's (one asset held) starts from the
        search's own table, only the held asset's entries checked again (the others' rows are
        the same): each kick's first round built the whole table."""
        table = _LotMoves(self.search.data, separable, None)
        held, main = self.holding.get(id(separable)), self.tables.get(id(self.separable))
        if held is None or held[0] is not separable or main is None or False not in main[1].kept:
            return table
        _, every, ok = main[1].kept[False]
        mine = np.flatnonzero(every.owner == held[1])
        ok = ok.copy()
        ok[mine] = separable.ok(subset(every, mine))
        table.adopt(main[1], ok)
        return table

    def tick(self) -> bool:
        """Whether the budget is now spent (``stopped``): the work counted so far (``charge``)
        or, as a safety only, the CPU deadline (read once per ``_CLOCK_WORK`` of work)."""
        # A count of work first, so the same request stops at the same point whatever the load
        # (guarantee 6: a CPU or wall budget gave other trades on a loaded machine); the CPU
        # deadline is only a safety for what the count does not foresee. The thread's CPU clock
        # is a system call that cost up to ~1 ms while BLAS threads spin (0.14 s of seed 7's
        # 0.95 s of benchmarks/test_bench_small.py when read every round): read it seldom.
        self.charge(self.search.data.n)
        if not self.stopped and self.tally.work > _WORK:
            self.stopped, self.stopped_by = True, f"its count of work ({_WORK:,} candidates priced)"
        if not self.stopped and self.tally.work - self.clocked >= _CLOCK_WORK:
            self.clocked = self.tally.work
            if time.thread_time() > self.deadline:
                self.stopped, self.stopped_by = True, f"its CPU safety ({self.limit:g} s)"
        return self.stopped

    def run(self, point: _Point, searched: dict[bytes, np.ndarray]) -> tuple[_Point, list[bytes]]:
        """From ``point`` (descended): combinations and triples (few assets only), then kicks,
        until none improves or the budget is spent, or a point an earlier search passed
        (``searched``) is reached: then where that search ended. The point and the points
        passed (as keys of ``searched``)."""
        # Combinations and triples on few assets only: at 431 names ($50k, risk-aware) their windows
        # took the budget the kicks had used well (objective 6.5 % higher).
        few = self.search.data.n <= _FEW
        passed: list[bytes] = []
        while (key := point.shares.tobytes()) not in searched and not self.tick():
            passed.append(key)
            kicked = self.combine(point) if few else None
            if kicked is None and few:
                kicked = self.triple(point)
            if kicked is None:
                kicked = self.kick(point)
            if kicked is None:
                return point, passed
            point = kicked
        if key in searched:
            return self.search.at(searched[key]), passed
        return point, passed

    def charge(self, candidates: int) -> None:
        """Count ``candidates`` priced (moves, pairs, combinations, triples): the work."""
        self.tally.work += candidates

    def keeps(self, point: _Point) -> bool:
        """Whether ``point`` keeps every limit: minimum size, separable and coupled rows."""
        data, rows = self.search.data, self.search.rows
        every = _moves(data, np.arange(data.n), point.shares)
        sized = meets_minimum(data, point.shares * data.prices)
        return bool(sized.all() and self.separable.ok(every).all() and rows.holds(rows.values(point.z)))

    def descend(self, point: _Point, separable: _Separable, steepest: bool = False, rounds: int = 10**9) -> _Point:
        """The engine's descent (``_descent``) over the search's move kinds (``search_kinds``):
        improving single moves (every asset's best at once where together they keep the rows
        and improve, else the best half, ..., unless ``steepest``), then the best improving
        exchange, until neither; within the budget (``tick``)."""

        def neighbours(shares: np.ndarray, wide: bool) -> _Moves:
            moves = self._moves(shares, separable)
            self.charge(len(moves.owner))
            return moves

        kinds = search_kinds(self.tally, steepest, separable)
        settings = dataclasses.replace(SEARCH, rounds=rounds)
        return descend_from(self.search, point, neighbours, kinds, settings, spent=self.tick)

    def _moves(self, shares: np.ndarray, separable: _Separable) -> _Moves:
        """One lot up or down, to no trade, to the minimum (the rounding's moves), each asset's
        Newton step on its own (``newton_lots``: whole lots, within the rows; where two lots or
        more): a cheap share far from its best takes one move, not one round per lot; and the
        value-matched steps (``matched_steps``) that pair with one lot of a dear asset."""
        data = self.search.data
        n = data.n
        lots = self.lot_moves(shares, separable)
        self.tally.basic = len(lots.owner)
        if self.probes is None:
            self.probes = Probes.empty(self.search)
        jump = newton_lots(self.search, shares, self.probes) * data.lot
        target = shares + jump
        keep = np.abs(jump) >= 2 * data.lot  # the minimum trade size: below, with the matched steps
        owner, option = np.flatnonzero(keep), target[keep]
        if n <= _FEW:  # few assets (as the combinations): the moves table stays small
            matched_owner, matched_option = matched_steps(data, shares, self.matched)
            owner, option = np.concatenate([owner, matched_owner]), np.concatenate([option, matched_option])
        sized = meets_minimum(data, option * data.prices[owner])
        owner, option = owner[sized], option[sized]
        if owner.size:
            extra = _moves(data, owner, option)
            lots = joined(lots, subset(extra, np.flatnonzero(separable.ok(extra))))
        return lots

    def combine(self, point: _Point) -> _Point | None:
        """The best combination of a few assets' trades (``_neighbourhood``) that improves, then
        the descent; neighbourhoods of the traded assets, largest trade in value first, in
        overlapping windows."""
        gain = _GAIN * max(abs(point.value), 1e-300)
        windows = hoods(self.search, point.shares)
        priced = priced_windows(self.search, self.separable, point, windows)
        for hood, window in zip(windows, priced, strict=True):
            if self.tick():
                return None
            self.charge(int(np.prod([len(o) + 1 for o in hood.options])))
            found = best_combination(self.search, self.separable, point, hood, gain, window)
            if found is not None:
                self.combinations += 1
                return self.descend(found, self.separable)
        return None

    def triple(self, point: _Point) -> _Point | None:
        """The best improving exchange of one move each of three assets (``best_triple``) among
        the one-lot moves, then the descent."""
        moves = self.lot_moves(point.shares, self.separable)
        self.charge(min(len(moves.owner), TRIPLE_MOVES) ** 3)
        found = best_triple(self.search, moves, point, _GAIN * max(abs(point.value), 1e-300))
        if found is None:
            return None
        self.triples += 1
        return self.descend(found, self.separable)

    def kick(self, point: _Point) -> _Point | None:
        """A dear trade cut by one lot (or dropped) and the others re-settled around it: one dear
        lot paid for by many cheap ones, which neither one move nor an exchange of two reaches.
        The dearest traded lots are tried in turn; the first whose descent (that asset held there,
        then free again) ends below ``point`` is taken."""
        data = self.search.data
        for a, value in self._kicks(point):
            if not meets_minimum(data, np.array([value * data.prices[a]]))[0]:
                continue  # a trade under the minimum size: not a candidate
            if self.tick():
                return None
            trial = point.shares.copy()
            trial[a] = value
            held = _hold(self.separable, a, value * data.prices[a] / data.ref_value)
            self.holding[id(held)] = (held, a)
            # Steepest (one move at a time): room a kick frees goes to the best use first.
            self.trials += 1
            if self.trials > _KICK_TRIALS:
                return None
            start = self.search.at(trial)
            if not self.search.rows.holds(self.search.rows.values(start.z)):
                # A kick that breaks a coupled row: the descent takes only moves to points that
                # keep every row, so only one that mends it at once (none was ever taken).
                continue
            after = self.lead(start, held, point)
            if after.value < point.value * (1 - _GAIN):  # below the point within its lead: the rest of its rounds
                after = self.descend(after, held, steepest=True, rounds=_KICK_ROUNDS - _KICK_LEAD)
            if after.value < point.value * (1 - _GAIN) and self.keeps(after):
                self.kicks += 1
                return self.descend(after, self.separable)
        return None

    def lead(self, start: _Point, held: _Separable, point: _Point) -> _Point:
        """A kick's trial from ``start`` descended (steepest, ``held``) ``_KICK_LEAD`` moves at most,
        given up once it is further above ``point`` than ``_KICK_REACH`` of it per move left, or
        (after its first move) than ``_KICK_CREEP`` times its last move's gain per move left."""
        after = start
        for left in range(_KICK_LEAD - 1, -1, -1):
            moved = self.descend(after, held, steepest=True, rounds=1)
            reach = _KICK_REACH * abs(point.value)
            if after is not start:
                reach = min(reach, _KICK_CREEP * (after.value - moved.value))
            if moved is after or moved.value - point.value > reach * left:
                return moved
            after = moved
        return after

    def _kicks(self, point: _Point) -> list[tuple[int, float]]:
        """The kicks to try, in order: the dearest coarse traded lots cut by one lot, then
        dropped. (Untraded assets set to their own best trade, under a trade count, were tried
        too: on the 37 small accounts of benchmarks/test_bench_small.py none of their 84 trials
        was taken, nor of 70 sized by ``newton_lots`` without the rows; they were a quarter of
        the kicks' trials.)"""
        data = self.search.data
        worth = data.lot * data.prices
        # Coarse lots only: a lot worth a good part of an average position (V / n).
        traded = np.flatnonzero((point.shares != 0) & (worth >= _COARSE * data.ref_value / data.n))
        out: list[tuple[int, float]] = []
        for a in traded[np.argsort(-worth[traded], kind="stable")][:_KICKS]:
            toward = point.shares[a] - np.sign(point.shares[a]) * data.lot[a]  # one lot less traded
            out += [(int(a), float(v)) for v in dict.fromkeys([float(toward), 0.0])]
        return out


def _hold(separable: _Separable, asset: int, trade: float) -> _Separable:
    """``separable`` with one more group: ``asset``'s net trade held at ``trade`` (V_ref units)."""
    n = separable.row_of.shape[1]
    row_of, zero = np.full((1, n), -1), np.zeros((1, n))
    row_of[0, asset] = 0
    buy, sell = zero.copy(), zero.copy()
    buy[0, asset], sell[0, asset] = 1.0, -1.0
    lower, upper = np.full((1, n), -np.inf), np.full((1, n), np.inf)
    lower[0, asset] = upper[0, asset] = trade
    return _Separable(
        np.vstack([separable.row_of, row_of]),
        np.vstack([separable.coef_buy, buy]),
        np.vstack([separable.coef_sell, sell]),
        np.vstack([separable.offset, zero]),
        np.vstack([separable.lower, lower]),
        np.vstack([separable.upper, upper]),
        separable.sized,
    )
