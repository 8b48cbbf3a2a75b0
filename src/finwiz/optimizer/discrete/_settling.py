"""The settle: one candidate per asset when the coupled rows bind at each asset's cheapest.

The 0/1 program over the candidates (prices in whole-share allowances): its LP relaxation on
HiGHS, the assets it splits settled by a small 0/1 program with the others fixed, the full program
only if that fails; where HiGHS fails, a greedy repair (swaps priced on the violated rows) and then
the cheapening back (``_cheapen``). Where no choice keeps every row, an elastic program says how
much each limit would have to give.

Not the greedy first: the descent after the settle depends on which choice it starts from, and
from the greedy's it ended worse or in the back-off on 431-500 binding assets (docs/decisions/settle-and-descent.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy import sparse

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _trade_point
from finwiz.optimizer.discrete._highs import _Program, _program
from finwiz.optimizer.discrete._listed import breachable, listed, reach
from finwiz.optimizer.discrete._pricing import _Rows
from finwiz.optimizer.solve._csc import majors, pointers
from finwiz.optimizer.verify._diagnosis import conflict

_MARGINS = (1e-10, 1e-8, 1e-6)  # tightening (weight units) so HiGHS's tolerances never breach a limit
_ROW_SCALE = 1e4


_MILP_SECONDS = 2.0
"""The exact 0/1 program's time limit (or the settings', if smaller): its best incumbent is taken
after that (priced by the plain gradient, HiGHS has run to much longer limits on large books)."""


class _Program01:
    """The 0/1 program of one settle over the candidates ``moves``: their part of the rows, built once."""

    def __init__(
        self, data: ProblemData, moves: _Moves, price: np.ndarray, cheapest: np.ndarray, rows: _Rows, time_limit: float
    ) -> None:
        self.data, self.moves, self.price, self.cheapest, self.rows = data, moves, price, cheapest, rows
        self.trade_part = sparse.csr_array(rows.a_trade @ moves.matrix(data.n))
        self.scalar_cols = _csr(rows.a_scalar)
        self.limit = min(time_limit, _MILP_SECONDS)

    @cached_property
    def reached(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on each coupled row over every choice (``_listed.reach``), for each settle of it."""
        return reach(self.trade_part, self.scalar_cols, self.moves.owner, self.moves.scalars)

    @cached_property
    def stacked(self) -> _Stacked:
        """The 0/1 program's rows (:func:`_stacked`), for each settle of it."""
        return _stacked(self.moves, self.trade_part, self.scalar_cols, self.data.n)

    def settle(self) -> tuple[np.ndarray, float | None]:
        """Coupled rows bind at the cheapest choice: the trades of the exact 0/1 program over the
        candidates (priced by the Lagrangian, with a time limit), and its gap; where it fails, of
        the greedy (:meth:`greedy`)."""
        try:
            chosen, gap = self.solve(self.rows, True)
        except (InfeasibleRebalanceError, SolverError):
            repaired = self.greedy(self.rows)
            if repaired is None:
                raise
            chosen, gap = repaired, None
        return _shares(self.data.n, self.moves, chosen, gap)

    def inside(self, room: np.ndarray) -> tuple[np.ndarray, float | None] | None:
        """:meth:`settle` leaving ``room`` (per row, weight units) inside each row's bounds, by the
        0/1 program only (settled by the greedy, the 2000-asset binding answer lost 94 %); None when
        no candidate choice does."""
        rows = self.rows
        inside = replace(rows, lower=rows.lower + room, upper=rows.upper - room)
        try:
            return _shares(self.data.n, self.moves, *self.solve(inside))
        except (_RefusedError, SolverError):
            return None

    def admissible(self, chosen: np.ndarray, on: _Rows | None = None) -> bool:
        """Whether the choice keeps every row (exact check; of ``on`` if given)."""
        shares, _ = _shares(self.data.n, self.moves, chosen, None)
        rows = self.rows if on is None else on
        return rows.holds(rows.values(_trade_point(self.data, shares)))

    def greedy(self, on: _Rows) -> np.ndarray | None:
        """The choice by :func:`_repair` from the cheapest, then :func:`_cheapen`, on the rows ``on``;
        None where it gets stuck or the exact check refuses it."""
        choices = _Choices(self.moves, self.price, self.trade_part, self.scalar_cols)
        repaired = _repair(self.cheapest, choices, on)
        if repaired is None:
            return None
        chosen = _cheapen(repaired, choices, on)
        return chosen if self.admissible(chosen, on) else None

    def solve(self, on: _Rows, explain: bool = False) -> tuple[np.ndarray, float | None]:
        """The choice on the rows ``on``; refused, :class:`InfeasibleRebalanceError` saying what would
        have to give (``explain``) or :class:`_RefusedError`."""
        return _milp(
            self.moves,
            self.price,
            self.trade_part,
            self.scalar_cols,
            on,
            self.data,
            self.limit,
            self.admissible,
            self.cheapest,
            explain,
            self.reached,
            self.stacked,
        )


def _csr(dense: np.ndarray) -> sparse.csr_array:
    """``dense`` as a CSR from its nonzeros in row order (scipy's own conversion: the same arrays at
    ~5x the cost, 0.1 ms for the coupled rows' scalar columns)."""
    row, col = np.nonzero(dense)
    return sparse.csr_array((dense[row, col], col, pointers(row, dense.shape[0])), shape=dense.shape)


def _shares(n: int, moves: _Moves, chosen: np.ndarray, gap: float | None) -> tuple[np.ndarray, float | None]:
    shares = np.zeros(n)
    shares[moves.owner[chosen]] = moves.shares[chosen]
    return shares, gap


class _RefusedError(Exception):
    """No candidate choice keeps the rows (not explained: the caller has another try)."""


def _milp(
    moves: _Moves,
    price: np.ndarray,
    trade_part: sparse.csr_array,
    scalar_cols: sparse.csr_array,
    rows: _Rows,
    data: ProblemData,
    time_limit: float,
    admissible: Callable[[np.ndarray], bool],
    cheapest: np.ndarray,
    explain: bool = True,
    reached: tuple[np.ndarray, np.ndarray] | None = None,
    stacked: _Stacked | None = None,
) -> tuple[np.ndarray, float | None]:
    """One candidate per asset under the coupled rows: binaries y, the scalar columns continuous.

    First the LP relaxation: at its vertex at most one asset per binding coupled row is split
    between candidates, so the others are fixed at their choice and only the split ones (then,
    if that is infeasible, also every asset the relaxation moved off its cheapest candidate) go
    into a small 0/1 program; the full program only if both are infeasible: a fraction of the
    full program's time, near its optimum before the descent (docs/decisions/settle-and-descent.md)."""
    offset, lower, upper = rows.offset, rows.lower, rows.upper
    n, m = data.n, len(moves.owner)
    reached = reached or reach(trade_part, scalar_cols, moves.owner, moves.scalars)
    stacked = stacked or _stacked(moves, trade_part, scalar_cols, n)
    objective = np.concatenate([price, np.zeros(SCALARS)])
    result: _Program | None = None
    for margin in _MARGINS:
        lo = np.concatenate([np.ones(n), np.zeros(SCALARS), (lower + margin - offset) * _ROW_SCALE])
        up = np.concatenate([np.ones(n), np.zeros(SCALARS), (upper - margin - offset) * _ROW_SCALE])
        # Only the rows some choice could breach (_listed.breachable): most are far from it.
        keep = breachable(reached, (lower + margin - offset, upper - margin - offset))
        keep = np.concatenate([np.ones(n + SCALARS, bool), keep])
        program = (stacked.csc(keep), lo[keep], up[keep])
        chosen = _relaxed(moves, objective, *program, cheapest, time_limit, int(keep.sum()) - n - SCALARS)
        if chosen is not None and admissible(chosen):
            return chosen, None
        result = _program(objective, *program, np.ones(m, bool), time_limit)
        if result.x is None or admissible(np.flatnonzero(result.x[:m] > 0.5)):
            break
    else:
        raise SolverError("whole-share rounding could not meet the limits exactly", solver="HiGHS", status="inexact")
    if result is None or result.x is None:
        if result is not None and result.infeasible and not explain:
            raise _RefusedError
        if result is not None and result.infeasible:
            raise InfeasibleRebalanceError(
                _gives(stacked.csc(), lo, up, data, m, rows, time_limit),
                "only whole shares make the request infeasible (fractional trades keep every limit); "
                "allow fractional shares or loosen a limit",
            )
        status = result.status if result is not None else "failed"
        raise SolverError(f"whole-share rounding failed: HiGHS {status}", solver="HiGHS", status=status)
    return np.flatnonzero(result.x[:m] > 0.5), result.gap


@dataclass(frozen=True)
class _Stacked:
    """The 0/1 program's rows as entries (no two at one place), built into a CSC of some rows at once:
    scipy's CSR row slice and conversion cost more than the HiGHS call at 100 assets."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    shape: tuple[int, int]

    def csc(self, keep: np.ndarray | None = None) -> sparse.csc_array:
        """The rows ``keep`` (a mask; all without it), in order: placed from the entries sorted by
        column, then row, once (scipy's conversion from (row, column) pairs, the same CSC, took
        ~0.25 ms a settle at 100 assets)."""
        order = self.by_column
        at = order if keep is None else order[keep[self.rows[order]]]
        rows = self.rows[at] if keep is None else (np.cumsum(keep) - 1)[self.rows[at]]
        indptr = pointers(self.cols[at], self.shape[1])
        shape = self.shape if keep is None else (int(keep.sum()), self.shape[1])
        return sparse.csc_array((self.vals[at], rows, indptr), shape=shape)

    @cached_property
    def by_column(self) -> np.ndarray:
        """The entries' order by column, then row (a CSC's)."""
        return np.lexsort((self.rows, self.cols))


def _stacked(moves: _Moves, trade_part: sparse.csr_array, scalar_cols: sparse.csr_array, n: int) -> _Stacked:
    """The 0/1 program's rows over the candidates and the scalar columns: one candidate per
    asset, the definition rows ``scalar_k - sum_j scalars_jk y_j = 0``, and the coupled rows
    (scaled by ``_ROW_SCALE``); built from their entries at once: scipy's hstack and vstack of the
    blocks cost more than the HiGHS call at 100 assets."""
    m = len(moves.owner)
    d_col, d_row = np.nonzero(moves.scalars)
    limit = _entries(trade_part)
    on_scalars = scalar_cols.toarray()
    s_row, s_col = np.nonzero(on_scalars)
    rows = (moves.owner, n + d_row, n + np.arange(SCALARS), n + SCALARS + limit[0], n + SCALARS + s_row)
    cols = (np.arange(m), d_col, m + np.arange(SCALARS), limit[1], m + s_col)
    values = (
        np.ones(m),
        -moves.scalars[d_col, d_row],
        np.ones(SCALARS),
        limit[2] * _ROW_SCALE,
        on_scalars[s_row, s_col] * _ROW_SCALE,
    )
    shape = (n + SCALARS + trade_part.shape[0], m + SCALARS)
    return _Stacked(np.concatenate(rows), np.concatenate(cols), np.concatenate(values), shape)


def _entries(matrix: sparse.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows, columns and values of ``matrix``'s entries by row, then column, each place once
    (its COO with duplicates summed: read off a canonical CSR, where scipy's conversion cost more
    than building the program from them)."""
    if not (isinstance(matrix, sparse.csr_array) and matrix.has_canonical_format):
        coo = sparse.coo_array(matrix)
        coo.sum_duplicates()
        return coo.row, coo.col, coo.data
    return majors(matrix.indptr), matrix.indices, matrix.data


def _gives(
    matrix: sparse.csc_array,
    lo: np.ndarray,
    up: np.ndarray,
    data: ProblemData,
    m: int,
    rows: _Rows,
    time_limit: float,
) -> list[ConstraintConflict]:
    """How much each coupled limit would have to give for some whole-share candidate choice to keep
    them all: the 0/1 program with an elastic slack either way on every limit row, their sum (in
    weight units) minimised; per group the largest give (as a fraction of the value before trading
    and in currency, like the continuous diagnosis) and the member it falls on."""
    k = len(rows.lower)
    first = data.n + SCALARS  # the one-hot and definition rows come first
    eye = sparse.eye_array(k, format="csc")
    slack = sparse.vstack([sparse.csc_array((first, 2 * k)), sparse.hstack([eye, -eye])]).tocsc()
    objective = np.concatenate([np.zeros(m + SCALARS), np.full(2 * k, 1.0 / _ROW_SCALE)])
    elastic = _program(
        objective, sparse.hstack([matrix, slack]).tocsc(), lo, up, np.ones(m, bool), time_limit, nonnegative=2 * k
    )
    if elastic.x is None or len(rows.labels) != k:
        return [ConstraintConflict("whole_shares", 0.0, "no whole-share choice near the optimum keeps every limit")]
    give = (elastic.x[m + SCALARS : m + SCALARS + k] + elastic.x[m + SCALARS + k :]) / _ROW_SCALE
    worst: dict[str, tuple[float, str]] = {}
    for r in np.flatnonzero(give > _CHECK):
        name, member = rows.labels[r]
        if give[r] > worst.get(name, (0.0, ""))[0]:
            worst[name] = (float(give[r]), member)
    return [conflict(data, name, most, "with whole shares", member) for name, (most, member) in sorted(worst.items())]


def _relaxed(
    moves: _Moves,
    objective: np.ndarray,
    matrix: sparse.csc_array,
    lo: np.ndarray,
    up: np.ndarray,
    cheapest: np.ndarray,
    time_limit: float,
    limits: int,
) -> np.ndarray | None:
    """The LP relaxation's choice, its split assets settled by a small 0/1 program (see
    :func:`_milp`); None when neither the split assets nor the moved ones can settle it. The
    last ``limits`` rows are the coupled rows (the equality rows come first)."""
    m = len(moves.owner)
    # From the cheapest choice (each asset's cheapest, the scalars and the limit rows' slacks
    # basic): dual feasible, so a few pivots instead of one per asset from HiGHS's own start.
    is_cheapest = np.zeros(m, bool)
    is_cheapest[cheapest] = True
    columns = np.concatenate([is_cheapest, np.ones(SCALARS, bool)])
    equalities = matrix.shape[0] - limits
    basic = (columns, np.arange(matrix.shape[0]) >= equalities)
    relaxation = _program(objective, matrix, lo, up, np.zeros(m, bool), time_limit, basic=basic)
    if relaxation.x is None:
        return None
    y = relaxation.x[:m]
    taken = y > 1.0 - _SPLIT
    is_free = np.zeros(int(moves.owner.max(initial=-1)) + 1, bool)  # a lookup by asset: np.isin sorts
    for freed in ((y > _SPLIT) & ~taken, taken & ~is_cheapest):  # the split assets, then also the moved ones
        is_free[moves.owner[freed]] = True  # (no np.unique of them: ~50 us a call for the same set)
        free = is_free[moves.owner]
        fixed = np.flatnonzero(taken & ~free)
        if not free.any():
            return fixed
        done, chosen = listed(moves.owner, moves.scalars, objective[:m], matrix, (lo, up), fixed, free, limits)
        if done:  # few choices: listed (see _listed)
            if chosen is not None:
                return np.sort(np.concatenate([fixed, chosen]))
            continue
        columns = np.concatenate([np.flatnonzero(free), m + np.arange(SCALARS)])
        used = np.asarray(matrix[:, fixed].sum(axis=1)).ravel()
        binary = np.ones(int(free.sum()), bool)
        sub = _program(objective[columns], matrix[:, columns], lo - used, up - used, binary, time_limit)
        if sub.x is not None:
            return np.sort(np.concatenate([fixed, columns[:-SCALARS][sub.x[:-SCALARS] > 0.5]]))
    return None


_SPLIT = 1e-7  # a binary of the relaxation strictly between this and 1 - this is split


@dataclass(frozen=True)
class _Choices:
    """The candidates of one settle: their moves, prices (whole-share allowances) and their part
    of the coupled rows (rows x candidates, and the rows' scalar columns)."""

    moves: _Moves
    price: np.ndarray
    trade_part: sparse.csr_array
    scalar_cols: sparse.csr_array

    def block(self, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
        """Rows ``rows`` and columns ``cols`` of ``trade_part``, dense (sliced sparse at every size:
        the greedy runs only where HiGHS fails, so a dense copy for small books bought nothing)."""
        return np.asarray(sparse.csc_array(self.trade_part[rows])[:, cols].toarray())


def _repair(chosen: np.ndarray, choices: _Choices, on: _Rows, max_rounds: int = 200) -> np.ndarray | None:
    """Swap candidates until every coupled row holds: each round takes the swaps that remove the
    most violation per unit of objective given up, one per asset, until their gains would cover
    the violation (gains are not exactly additive: the next round checks); None if it gets stuck.
    Only the rows violated so far are looked at (no rows x candidates array)."""
    moves, price, offset, lower, upper = choices.moves, choices.price, on.offset, on.lower, on.upper
    owner = moves.owner
    of_asset = np.full(int(owner.max()) + 1, -1)
    of_asset[owner[chosen]] = chosen
    by_row = sparse.csr_array(choices.trade_part)
    dense_scalars = choices.scalar_cols.toarray()
    scalars = moves.scalars
    watched = np.zeros(len(offset), bool)
    for _ in range(max_rounds):
        current = of_asset[of_asset >= 0]
        pick = np.zeros(len(owner))
        pick[current] = 1.0
        values = by_row @ pick + dense_scalars @ scalars[current].sum(axis=0) + offset
        breach = np.maximum(values - upper, 0.0) + np.maximum(lower - values, 0.0)
        if breach.max(initial=0.0) <= _CHECK:
            return current
        watched |= breach > _CHECK
        rows = np.flatnonzero(watched)
        incumbent = of_asset[owner]
        block = choices.block(rows, slice(None))
        delta = block - block[:, incumbent]
        delta += dense_scalars[rows] @ (scalars - scalars[incumbent]).T
        after = values[rows, None] + delta
        left = (np.maximum(after - upper[rows, None], 0.0) + np.maximum(lower[rows, None] - after, 0.0)).sum(axis=0)
        gain = breach[rows].sum() - left
        worse = price - price[incumbent]
        score = np.where(gain > 1e-15, gain / np.maximum(worse, 1e-15), -np.inf)
        score[incumbent == np.arange(len(owner))] = -np.inf
        order = np.argsort(-score, kind="stable")
        order = order[np.isfinite(score[order])]
        if order.size == 0:
            return None
        _, first = np.unique(owner[order], return_index=True)
        batch = order[np.sort(first)]
        batch = batch[: int(np.searchsorted(np.cumsum(gain[batch]), breach[rows].sum())) + 1]
        of_asset[owner[batch]] = batch
    return None


def _cheapen(chosen: np.ndarray, choices: _Choices, on: _Rows) -> np.ndarray:
    """After :func:`_repair`: each asset back to a cheaper candidate where every coupled row still
    holds, the largest saving first, in passes until none fits. The repair's swaps, ranked by
    violation removed per unit of objective, overshoot a row (a position cut two lots where one
    keeps its cap); only the assets it moved have a cheaper candidate, so the block is rows x their
    candidates. One check per candidate and pass, not the whole block per step: a rescan per step
    was slow on 500 binding assets, where the position caps make every row coupled."""
    moves, price, trade_part, lower, upper = choices.moves, choices.price, choices.trade_part, on.lower, on.upper
    owner = moves.owner
    of_asset = np.full(int(owner.max()) + 1, -1)
    of_asset[owner[chosen]] = chosen
    incumbent = of_asset[owner]
    options = np.flatnonzero((incumbent >= 0) & (price[incumbent] - price > _SAVING))
    if options.size == 0:
        return chosen
    options = options[np.argsort(price[options] - price[incumbent[options]], kind="stable")]
    # Incumbents only get cheaper: these candidates' columns (rows x few) are all it ever reads.
    local = np.union1d(options, incumbent[options])
    dense_scalars = choices.scalar_cols.toarray()
    block = (choices.block(slice(None), local) + dense_scalars @ moves.scalars[local].T).T  # a row per candidate
    column = np.full(len(owner), -1)
    column[local] = np.arange(local.size)
    pick = np.zeros(len(owner))
    pick[chosen] = 1.0
    values = trade_part @ pick + dense_scalars @ moves.scalars[chosen].sum(axis=0) + on.offset
    high, low = upper + _CHECK, lower - _CHECK
    moved = True
    while moved:
        moved = False
        # Those that fit at the pass's start, checked again one by one as the values move.
        now = of_asset[owner[options]]
        options, now = (x[price[now] - price[options] > _SAVING] for x in (options, now))
        start = values + block[column[options]] - block[column[now]]
        fitting = np.all(start <= high, axis=1) & np.all(start >= low, axis=1)
        for option in options[fitting].tolist():
            was = int(of_asset[owner[option]])
            if price[was] - price[option] <= _SAVING:
                continue
            after = values + block[column[option]] - block[column[was]]
            if np.all(after <= high) and np.all(after >= low):
                values, moved = after, True
                of_asset[owner[option]] = option
    return of_asset[of_asset >= 0]


_SAVING = 1e-15  # whole-share allowances: a cheaper candidate saves more than float noise
