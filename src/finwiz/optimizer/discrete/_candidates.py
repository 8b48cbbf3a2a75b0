"""Each asset's candidate trades and single-asset moves, as moves of the model's trade variables.

Each asset gets a few candidate trades: the continuous trade rounded down and up to its lot, no
trade, the smallest trade that meets the minimum size, selling out (and under
``min_position_value``, the position closed or raised to the minimum). The separable groups (one
asset's buy or sell: long-only, restricted lists, bands, the ESG screen) and the minimum position
(``_min_position.Sized``) are bounds on each asset's candidates (``_Separable``). Every candidate
is a fixed number of shares, so the trade variables, and with them the cost, the turnover and the
net purchase (exact costs included), are a fixed move of ``z`` (``_Moves``). The descent's
neighbourhood of a point (``_lot_moves``) is built the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import Affine, column
from finwiz.optimizer.discrete._min_position import Sized, sized_options, stuck_refusal
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import meets_minimum, trade_point, trade_scalars

_EPS = 1e-12
_SNAP = 1e-12  # relative: well above float noise (1e-16), far below a lot
_CHECK = 1e-12  # the exact numpy check's tolerance (weight units)
_ON_GRID = 1e-9  # relative: a trade this close to a lot multiple is on the lot grid


def _candidates(data: ProblemData, target_shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate signed share trades, an (assets x 5) table: no trade, the continuous trade rounded
    down and up to its lot, the smallest trade meeting the minimum size, and selling out; under
    ``min_position_value``, two more columns: the position closed and raised to the minimum.

    Returns the table and which entries are distinct and meet the minimum size.
    """
    lot, held, price = data.lot, data.shares, data.prices
    # A trade within float noise of a lot multiple or of the whole holding is exactly that: an
    # optimum polished onto an active bound (sell everything) comes back an ulp either side of
    # it, and which side must not change the candidates (same input, same trades).
    lots = target_shares / lot
    tolerance = _SNAP * np.maximum(1.0, np.abs(lots))
    lots = np.where(np.abs(lots - np.round(lots)) <= tolerance, np.round(lots), lots)
    s = lots * lot
    # A sell that leaves a remnant within solver noise (below a cent, or 1e-8 of the value) is the
    # sell-out: a warm-started solve stops ~1e-7 off the bound ``sell <= held`` where a cold one
    # lands on it, and "sell 64.0" became "sell 63.999993" after another request.
    s = np.where((s < 0) & (np.abs(s + held) * price <= _sell_out_noise(data)), -held, s)
    down = np.floor(s / lot + _EPS) * lot
    up = np.ceil(s / lot - _EPS) * lot
    has_min = (data.min_trade_value > 0) & (s != 0)
    step = np.where(has_min, np.sign(s) * np.ceil(data.min_trade_value / (lot * price) - _EPS) * lot, 0.0)
    # An asset crossing sides (a long holding with a short target, or the reverse) must trade at
    # least its holding, in one trade: offered whatever the continuous trade (a re-solve that
    # fixed it as too small kept it on its side, and "no trade" then broke side_change).
    crossing = data.crossing
    if crossing.any():
        smallest = np.ceil(data.min_trade_value / (lot * price) - _EPS) * lot
        # The holding itself (a sell-out, odd lots allowed) or past it by whole lots, at least the minimum.
        past = np.abs(held) + np.maximum(np.ceil((smallest - np.abs(held)) / lot - _EPS), 0.0) * lot
        step = np.where(crossing, -np.sign(held) * past, step)
        has_min = has_min | crossing
    sell_out = _sell_out_allowed(data, s)
    table = np.column_stack([np.zeros_like(s), down, up, step, np.where(sell_out, -held, 0.0), *sized_options(data)])
    valid = np.ones(table.shape, bool)
    valid[:, 3] = has_min
    valid[:, 4] = sell_out
    for j in range(1, table.shape[1]):
        for k in range(j):
            valid[:, j] &= ~(valid[:, k] & (table[:, j] == table[:, k]))
    valid &= meets_minimum(data, table * price[:, None])
    return table, valid


@dataclass(frozen=True)
class _Moves:
    """Each candidate as a move of the trade variables: buy and sell of its asset, and the scalar
    columns c, tau, nu (all fractions of V_ref, absolute, not relative to the optimum)."""

    owner: np.ndarray
    shares: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    scalars: np.ndarray  # (m, SCALARS): c, tau, nu, T, G
    last: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(
        default_factory=list, compare=False, repr=False
    )  # the last change asked for and its ``z`` (a round's pricing and its tight rows ask at one z)
    kept: tuple[_Curvature, np.ndarray] | None = field(default=None, compare=False, repr=False)
    """A table's kept curvatures and each move's place in it (``_LotMoves``), else None."""

    def change(self, data: ProblemData, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each move's change of ``z``: its asset's buy and sell, and the scalar columns (m x SCALARS;
        the asset's own share of them at ``z``, exact costs, is what the move replaces)."""
        if self.last and self.last[0][0] is z:
            return self.last[0][1]
        owner = self.owner
        z_buy, z_sell = z.take(owner), z.take(data.n + owner)
        if len(owner) > data.n:  # moves share assets: each asset's once, gathered (the same floats)
            n = data.n
            # take: fancy indexing of an n x SCALARS array's rows costs ~4x (the same rows)
            d_x = self.scalars - trade_scalars(data, (z[:n] - z[n : 2 * n]) * data.ref_value).take(owner, axis=0)
        else:
            d_x = self.scalars - _moves_at(data, owner, z_buy - z_sell)
        self.last[:] = [(z, (self.buy - z_buy, self.sell - z_sell, d_x))]
        return self.last[0][1]

    def matrix(self, n: int) -> sparse.csc_array:
        """The moves' buy and sell as columns over ``z[:2n]``, sparse (built without the scalar
        rows: a row slice of a CSC costs more than the product it feeds)."""
        m = len(self.owner)
        # Each column's two entries in row order (buy, then sell), placed at once: the same CSC as
        # from (row, column) pairs, whose conversion cost most of it (~0.2 ms at 100 assets).
        rows = np.column_stack([self.owner, self.owner + n]).ravel()
        values = np.column_stack([self.buy, self.sell]).ravel()
        return sparse.csc_array((values, rows, np.arange(0, 2 * m + 1, 2)), shape=(2 * n, m))


class _Curvature:
    """Each move's own curvature (``_pricing._Pricer.second``) over one table of moves, kept while
    the move and its asset's trade stand: it depends on nothing else, so a descent round prices
    only the moves of the assets that moved (the same floats: the sum is per move)."""

    def __init__(self, size: int) -> None:
        self.values = np.zeros(size)
        self.known = np.zeros(size, bool)
        self.grams: object = None  # the Gram entries the values are of

    def of(self, grams: object, at: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The curvatures of the table's moves ``at`` under the Gram entries ``grams`` (a pricer's,
        shared by its copies with another gradient); ``compute(which)`` those of the moves
        ``which`` (a mask over ``at``) not kept."""
        if grams is not self.grams:
            self.known[:] = False
            self.grams = grams
        todo = ~self.known[at]
        if todo.any():
            self.values[at[todo]] = compute(todo)
            self.known[at[todo]] = True
        return np.asarray(self.values[at])


def _moves(data: ProblemData, owner: np.ndarray, option: np.ndarray) -> _Moves:
    value = option * data.prices[owner] / data.ref_value
    buy, sell = np.maximum(value, 0.0), np.maximum(-value, 0.0)
    return _Moves(owner, option, buy, sell, trade_scalars(data, option * data.prices[owner], owner))


@dataclass(frozen=True)
class _Separable:
    """The separable rows (each touches one asset's buy or sell) gathered per asset, to check
    any number of candidate trades at once: row value = coefficient x the candidate's buy or sell
    + offset, against the row's bounds."""

    row_of: np.ndarray  # (groups, n): the asset's row in each group, -1 for none
    coef_buy: np.ndarray  # (groups, n), by asset
    coef_sell: np.ndarray
    offset: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    sized: Sized | None = None  # min_position_value: a position strictly between 0 and it is not allowed

    @classmethod
    def of_model(cls, model: Model) -> _Separable:
        """The model's separable groups and its minimum position."""
        separable = cls.of([g.linear() for g in model.groups if g.separable], model.data.n)
        return replace(separable, sized=Sized.of(model.data))

    @classmethod
    def of(cls, groups: list[tuple[Affine, np.ndarray, np.ndarray]], n: int) -> _Separable:
        k = len(groups)
        row_of = np.full((k, n), -1)
        arrays = [np.zeros((k, n)) for _ in range(5)]
        coef_buy, coef_sell, offset, lower, upper = arrays
        lower[:] = -np.inf
        upper[:] = np.inf
        for g, (rows, lo, up) in enumerate(groups):
            cols = column(rows.cols, n)
            asset, sell = cols % n, cols >= n
            row_of[g, asset] = rows.rows
            np.add.at(coef_buy[g], asset[~sell], rows.vals[~sell])
            np.add.at(coef_sell[g], asset[sell], rows.vals[sell])
            has = np.flatnonzero(row_of[g] >= 0)
            r = row_of[g, has]
            offset[g, has], lower[g, has], upper[g, has] = rows.offset[r], lo[r], up[r]
        return cls(row_of, coef_buy, coef_sell, offset, lower, upper)

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's bounds widened by the check's tolerance (groups x n), computed once: the
        descent checks every asset's moves each round."""
        lower, upper = self.lower, self.upper
        tol = _CHECK * np.maximum(
            1.0, np.abs(np.where(np.isfinite(upper), upper, 0)) + np.abs(np.where(np.isfinite(lower), lower, 0))
        )
        return lower - tol, upper + tol

    def ok(self, moves: _Moves) -> np.ndarray:
        """Which moves keep every separable row of their own asset."""
        i = moves.owner
        value = self.coef_buy.take(i, axis=1) * moves.buy + self.coef_sell.take(i, axis=1) * moves.sell
        value += self.offset.take(i, axis=1)
        low, high = self._bounds
        keeps = ((value <= high.take(i, axis=1)) & (value >= low.take(i, axis=1))).all(axis=0)
        return np.asarray(keeps if self.sized is None else keeps & self.sized.ok(i, moves.shares))


def _moves_at(data: ProblemData, owner: np.ndarray, value: np.ndarray) -> np.ndarray:
    return trade_scalars(data, value * data.ref_value, owner)


def _trade_point(data: ProblemData, shares: np.ndarray) -> np.ndarray:
    """``z`` of share trades, exact costs and taxes."""
    return trade_point(data, shares * data.prices)


def _sell_out_noise(data: ProblemData) -> float:
    """The value (currency) below which what a continuous sell leaves of a position is solver
    noise, not a choice: a cent, or 1e-8 of the value (well inside the 1e-7 a solve is held to)."""
    return max(NOISE_VALUE, 1e-8 * data.ref_value)


def _sell_out_allowed(data: ProblemData, trade: np.ndarray) -> np.ndarray:
    """Selling out is a whole trade, lots or not (an odd lot may be sold), offered for a sell that
    would leave little anyway: at most the minimum trade or one lot in value."""
    residual = (data.shares + trade) * data.prices
    limit = np.maximum(data.min_trade_value, data.lot * data.prices)
    return np.asarray((trade < 0) & (not data.allow_short) & (residual <= limit))


def _lot_moves(
    data: ProblemData,
    shares: np.ndarray,
    separable: _Separable,
    candidates: np.ndarray | None,
    wide: bool = False,
) -> _Moves:
    """Every asset one lot up or down on its lot grid (``wide``: two lots too), to no trade,
    selling out, the smallest trade meeting the minimum either way, or back to one of its first
    candidates (``candidates``, assets x k: a trade the repair dropped can come back), where the
    minimum size and the separable rows allow it (a sold-out odd lot moves back onto the grid)."""
    return _LotMoves(data, separable, candidates)(shares, wide)


class _LotMoves:
    """:func:`_lot_moves` of one descent, kept between its rounds: a move is a fixed trade of its
    asset (its buy, sell, scalar columns and separable check depend on nothing else), so only the
    assets whose trade changed since the last call are priced again (built afresh each round, the
    neighbourhood was a large part of the descent on large books)."""

    def __init__(self, data: ProblemData, separable: _Separable, candidates: np.ndarray | None) -> None:
        self.data, self.separable, self.candidates = data, separable, candidates
        # the candidates' options, flat in their order (column by column), and each option's asset: every round's
        self.flat = None if candidates is None else np.ascontiguousarray(candidates.T).ravel()
        self.owners: dict[int, np.ndarray] = {}
        self.kept: dict[bool, tuple[np.ndarray, _Moves, np.ndarray]] = {}  # by wide: options, moves, ok
        self.curved: dict[bool, tuple[np.ndarray, _Curvature]] = {}  # by wide: the trades they are at, curvatures

    def adopt(self, other: _LotMoves, ok: np.ndarray) -> None:
        """Start from ``other``'s narrow moves with their separable check ``ok``, on arrays of
        its own: a table reprices its changed moves in place, which would rewrite ``other``'s."""
        options, every, _ = other.kept[False]
        copied = _Moves(every.owner, every.shares, every.buy.copy(), every.sell.copy(), every.scalars.copy())
        self.kept[False] = (options, copied, ok)

    def _options(self, shares: np.ndarray, wide: bool) -> np.ndarray:
        data, lot = self.data, self.data.lot
        n, lots = data.n, shares / lot
        rounded = lots.round()
        on_grid = np.abs(lots - rounded) <= _ON_GRID * np.maximum(1.0, np.abs(lots))
        up = np.where(on_grid, rounded + 1, np.ceil(lots)) * lot
        down = np.where(on_grid, rounded - 1, np.floor(lots)) * lot
        out = np.where(_sell_out_allowed(data, down), -data.shares, 0.0)
        step = np.ceil(data.min_trade_value / (lot * data.prices) - _EPS) * lot
        columns = [up, down, np.zeros(n), out, step, -step, *sized_options(data)]
        if wide:
            columns += [up + lot, down - lot]
        if self.flat is not None:
            columns.append(self.flat)
        return np.concatenate(columns)

    def __call__(self, shares: np.ndarray, wide: bool) -> _Moves:
        data = self.data
        options = self._options(shares, wide)
        owner = self.owners.get(len(options))
        if owner is None:
            owner = self.owners.setdefault(len(options), np.tile(np.arange(data.n), len(options) // data.n))
        before = self.kept.get(wide)
        curved = self.curved.get(wide)
        curvature = _Curvature(len(options)) if before is None or curved is None else curved[1]
        if before is None:
            every = _moves(data, owner, options)
            ok = self.separable.ok(every)
        else:  # the moves of the assets whose options changed, priced again in place (only kept here)
            old, every, ok = before
            again = (options != old).nonzero()[0]
            fresh = _moves(data, owner[again], options[again])
            every.buy[again], every.sell[again], every.scalars[again] = fresh.buy, fresh.sell, fresh.scalars
            every = _Moves(owner, options, every.buy, every.sell, every.scalars)
            ok[again] = self.separable.ok(fresh)
            curvature.known[again] = False
            if curved is not None:  # an asset's moves curve from its trade: those of the moved assets again
                curvature.known[(shares != curved[0])[owner]] = False
        self.kept[wide] = (options, every, ok)
        self.curved[wide] = (shares.copy(), curvature)
        keep = (options != shares[owner]) & meets_minimum(data, options * data.prices[owner]) & ok
        at = keep.nonzero()[0]
        # take: numpy's row indexing of a moves x SCALARS array is slower (same values)
        scalars = every.scalars.take(at, axis=0)
        return _Moves(
            owner.take(at), options.take(at), every.buy.take(at), every.sell.take(at), scalars, kept=(curvature, at)
        )


def _candidate_set(
    model: Model, trades: np.ndarray, separable: _Separable | None = None
) -> tuple[np.ndarray, np.ndarray, bool, _Moves, _Separable]:
    """The candidate table, which entries are admissible (distinct, minimum size, every separable
    row of their asset), whether a traded asset had none, the admissible candidates as moves
    (grouped by asset), and the separable rows (``separable``: the model's, when the caller has them)."""
    data = model.data
    target_shares = trades * data.ref_value / data.prices
    # Interior-point solutions carry ~1e-9 noise on untraded assets; floor() would turn it into
    # a one-lot trade, so trades worth under a cent are exactly zero.
    target_shares = np.where(np.abs(target_shares) * data.prices < NOISE_VALUE, 0.0, target_shares)
    table, valid = _candidates(data, target_shares)
    owner_all = np.repeat(np.arange(data.n), table.shape[1])
    every = _moves(data, owner_all, table.ravel())
    separable = _Separable.of_model(model) if separable is None else separable
    valid &= separable.ok(every).reshape(valid.shape)
    refusal = stuck_refusal(model, np.asarray(~valid.any(axis=1)))
    if refusal is not None:  # held below the minimum, and neither closing nor raising it is allowed
        raise refusal
    stuck = ~valid.any(axis=1) & (target_shares != 0)
    valid[~valid.any(axis=1), 0] = True  # nothing admissible: no trade, and the limits decide feasibility
    keep = valid.ravel()
    moves = _Moves(owner_all[keep], every.shares[keep], every.buy[keep], every.sell[keep], every.scalars[keep])
    return table, valid, bool(stuck.any()), moves, separable


def asset_spans(row: np.ndarray, asset: np.ndarray, rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``rows`` rows' least and greatest asset over the entries (``row``, ``asset``); ``n``
    and -1 in a row without any. They differ where a row holds two assets (no sort, as np.unique did)."""
    least, most = np.full(rows, n), np.full(rows, -1)
    np.minimum.at(least, row, asset)
    np.maximum.at(most, row, asset)
    return least, most


def ranges(start: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The indices ``start[i], ..., start[i] + size[i] - 1`` of every ``i``, concatenated (a compressed
    matrix's entries of some rows or columns, read off its ``indptr``)."""
    return np.repeat(start - size.cumsum() + size, size) + np.arange(int(size.sum()))


def _snap(values: np.ndarray) -> np.ndarray:
    """Objective changes on a grid of a billionth of the largest: values closer than that are tied
    (fractional lots differ by ~1e-20, float noise of the continuous optimum), and ties go to the
    first in order, so an ulp of solver noise never changes the trades (same input, same trades)."""
    unit = 1e-9 * max(float(np.abs(values).max(initial=0.0)), 1e-300)
    return np.asarray((values / unit).round() * unit)


def _cheapest(table: np.ndarray, valid: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Each asset's cheapest admissible candidate (index into the admissible ones; ``price`` is
    snapped, so a tie goes to the first column)."""
    n = table.shape[0]
    index = np.full(table.shape, -1)
    index[valid] = np.arange(int(valid.sum()))
    price_table = np.full(table.shape, np.inf)
    price_table[valid] = price
    return np.asarray(index[np.arange(n), np.argmin(price_table, axis=1)])
