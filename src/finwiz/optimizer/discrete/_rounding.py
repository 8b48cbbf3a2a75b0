"""From continuous trades to whole shares (and lots) that keep every hard constraint.

Everything here is read from the model's one description (``_model``): the limit groups' linear
rows and the stacked objective. Each asset gets a few candidate trades — the continuous trade
rounded down and up to its lot, no trade, the smallest trade that meets the minimum size, selling
out. The separable groups (one asset's buy or sell: long-only, restricted lists, bands, the ESG
screen) are bounds on each asset's candidates. Every candidate is a fixed number of shares, so the
trade variables — and with them the cost, the turnover and the net purchase, exact costs included
— are linear in the choice of one candidate per asset: the coupled rows (cash, caps, sectors,
turnover, ESG floor) over the candidates are a sparse 0/1 program.

The objective of a candidate is the strategy's own (every term, the user's included): the exact
change of the stacked quadratic when that asset alone moves from the continuous optimum (gradient
plus its own curvature, from the squared rows' Gram entries), a user's cvxpy term through its
gradient, and the true trade count — priced by the Lagrangian (the continuous solve's duals of the
coupled rows), so that the assets do not all lean into the limits that held the optimum back.

1. Each asset's cheapest candidate, when the coupled rows hold there;
2. otherwise the 0/1 program (prices in whole-share allowances): its LP relaxation on HiGHS, the
   assets it splits settled by a small 0/1 program with the others fixed, the full program (and
   a repair on the violated rows) only if that fails; where no choice keeps every row, an elastic
   program says how much each limit would have to give;
3. then a descent on the exact objective (the cash square and factor risk included): one-lot
   moves, to no trade, selling out, the minimum size, back to a first candidate, exchanges of two
   assets where binding rows block single moves, and chains (one move paid for by one- or two-lot
   moves of several others across a tight row), every step checked against every row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer._trace import count
from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import GAIN, SCALARS, Affine, column
from finwiz.optimizer.solve._assembler import Model, Stacked, user_gradient_at
from finwiz.optimizer.verify._compliance import meets_minimum, trade_point, trade_scalars
from finwiz.optimizer.verify._diagnosis import conflict

__all__ = ["RoundingOutcome", "gain_price", "polish", "round_trades", "side_margin"]

_MARGINS = (1e-10, 1e-8, 1e-6)  # tightening (weight units) so HiGHS's tolerances never breach a limit
_EPS = 1e-12
_SNAP = 1e-12  # relative: well above float noise (1e-16), far below a lot
_ROW_SCALE = 1e4
_CHECK = 1e-12  # the exact numpy check's tolerance (weight units)


@dataclass(frozen=True)
class RoundingOutcome:
    """Signed share trades per asset, and what the 0/1 program said about them."""

    shares: np.ndarray
    mip_gap: float | None
    seconds: float
    candidates: int
    lossy: bool
    """True when a traded asset had no candidate that kept its own rows (it was left untraded):
    binding limits left no room to round."""
    loss: float
    """The returned trades' objective above the continuous point's, in whole-share allowances (what
    one lot of every asset is worth in objective)."""
    relative_loss: float
    """The same, as a fraction of the objective at the continuous point."""


def _candidates(data: ProblemData, target_shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate signed share trades, an (assets x 5) table: no trade, the continuous trade rounded
    down and up to its lot, the smallest trade meeting the minimum size, and selling out.

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
    table = np.column_stack([np.zeros_like(s), down, up, step, np.where(sell_out, -held, 0.0)])
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

    def change(self, data: ProblemData, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each move's change of ``z``: its asset's buy and sell, and the scalar columns (m x SCALARS;
        the asset's own share of them at ``z``, exact costs, is what the move replaces)."""
        n, owner = data.n, self.owner
        d_x = self.scalars - _moves_at(data, owner, z[owner] - z[n + owner])
        return self.buy - z[owner], self.sell - z[n + owner], d_x

    def matrix(self, n: int) -> sparse.csc_array:
        """The moves as columns of ``z`` (rows: buy, sell, then the scalar columns), sparse."""
        m = len(self.owner)
        j = np.arange(m)
        rows = np.concatenate([self.owner, self.owner + n, *(np.full(m, 2 * n + k) for k in range(SCALARS))])
        vals = np.concatenate([self.buy, self.sell, self.scalars.T.ravel()])
        return sparse.csc_array((vals, (rows, np.tile(j, 2 + SCALARS))), shape=(2 * n + SCALARS, m))


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

    def ok(self, moves: _Moves) -> np.ndarray:
        """Which moves keep every separable row of their own asset."""
        i = moves.owner
        value = self.coef_buy[:, i] * moves.buy + self.coef_sell[:, i] * moves.sell + self.offset[:, i]
        lower, upper = self.lower[:, i], self.upper[:, i]
        tol = _CHECK * np.maximum(
            1.0, np.abs(np.where(np.isfinite(upper), upper, 0)) + np.abs(np.where(np.isfinite(lower), lower, 0))
        )
        return np.asarray(np.all((value <= upper + tol) & (value >= lower - tol), axis=0))


_DENSE_GRAM = 500_000  # entries of the squared rows below which their Gram entries are taken dense


class _Pricer:
    """Exact objective changes of single-asset moves, from the stacked objective
    ``||S z + s||^2 + q'z`` (+ a user gradient, + the true count): for a move ``d`` of one asset's
    buy, sell and the scalar columns, ``2 r'S d + ||S d||^2 + q'd`` with ``r = S z + s``. The Gram
    entries ``||S d||^2`` needs touch five columns and do not depend on ``z``: computed once."""

    def __init__(self, model: Model, stacked: Stacked, gradient: np.ndarray | None) -> None:
        n = model.data.n
        self.data, self.stacked, self.n = model.data, stacked, n
        squares = stacked.squares
        self.s = sparse.csc_array(
            (squares.vals, (squares.rows, column(squares.cols, n))), shape=(squares.m, 2 * n + SCALARS)
        )
        self.s_t = self.s.T.tocsr()
        self.linear = stacked.linear + (0.0 if gradient is None else gradient)
        if squares.m * (2 * n + SCALARS) <= _DENSE_GRAM:  # small: dense numpy beats scipy's overheads
            dense = self.s.toarray()
            # The scalar columns copied out: as a strided view they sent ``buy.T @ scalars`` to
            # numpy's slow loop (7 ms at 431 assets, against 0.07).
            buy, sell, scalars = dense[:, :n], dense[:, n : 2 * n], np.ascontiguousarray(dense[:, 2 * n :])
            self.col_norm = np.einsum("ij,ij->j", dense, dense)
            self.g_bs = np.einsum("ij,ij->j", buy, sell)
        else:
            buy_cols, sell_cols = self.s[:, :n], self.s[:, n : 2 * n]
            self.col_norm = np.asarray(self.s.multiply(self.s).sum(axis=0)).ravel()
            self.g_bs = np.asarray(buy_cols.multiply(sell_cols).sum(axis=0)).ravel()
            scalars = self.s[:, 2 * n :].toarray()
            buy, sell = buy_cols, sell_cols
        self.g_bx = np.asarray(buy.T @ scalars)
        self.g_sx = np.asarray(sell.T @ scalars)
        self.g_xx = scalars.T @ scalars
        # What one lot of every asset is worth in objective: the scale of whole-share losses.
        lot_weight = model.data.lot * model.data.prices / model.data.ref_value
        self.unit = float(np.sum(self.col_norm[:n] * lot_weight**2)) or 1.0

    def objective(self, z: np.ndarray, shares: np.ndarray) -> float:
        """The true objective at ``z`` (user terms linearised), trades ``shares``."""
        rows = self.stacked.squares.evaluate(z)
        return float(rows @ rows + self.linear @ z + self.stacked.count * np.count_nonzero(shares))

    def cross(self, z: np.ndarray, moves: _Moves, tries: np.ndarray) -> np.ndarray:
        """``2 (S d_a)'(S d_b)`` for every move ``a`` in ``tries`` and every move ``b``: what two
        moves of different assets add to the sum of their changes."""
        n, owner = self.n, moves.owner
        d_buy, d_sell, d_x = moves.change(self.data, z)
        m = len(owner)
        rows = np.concatenate([owner, n + owner, np.repeat(2 * n + np.arange(SCALARS)[None, :], m, axis=0).ravel()])
        cols = np.concatenate([np.arange(m), np.arange(m), np.repeat(np.arange(m), SCALARS)])
        vals = np.concatenate([d_buy, d_sell, d_x.ravel()])
        change = self.s @ sparse.csc_array((vals, (rows, cols)), shape=(2 * n + SCALARS, m))
        return np.asarray(2.0 * (change[:, tries].T @ change).toarray())

    def linear_change(self, v: np.ndarray, z: np.ndarray, moves: _Moves) -> np.ndarray:
        """The change of ``v'z`` for each move from ``z``."""
        n, owner = self.n, moves.owner
        d_x = moves.scalars - _moves_at(self.data, owner, z[owner] - z[n + owner])
        return np.asarray(
            v[owner] * (moves.buy - z[owner]) + v[n + owner] * (moves.sell - z[n + owner]) + d_x @ v[2 * n :]
        )

    def changes(self, z: np.ndarray, shares: np.ndarray, moves: _Moves) -> np.ndarray:
        """The objective change of each move (an asset's new absolute trade) from ``z``."""
        n, owner = self.n, moves.owner
        grad = 2.0 * (self.s_t @ self.stacked.squares.evaluate(z)) + self.linear
        d_buy, d_sell, d_x = moves.change(self.data, z)
        first = grad[owner] * d_buy + grad[n + owner] * d_sell + d_x @ grad[2 * n :]
        second = (
            self.col_norm[owner] * d_buy**2
            + self.col_norm[n + owner] * d_sell**2
            + 2 * self.g_bs[owner] * d_buy * d_sell
            + 2 * d_buy * np.einsum("ij,ij->i", self.g_bx[owner], d_x)
            + 2 * d_sell * np.einsum("ij,ij->i", self.g_sx[owner], d_x)
            + np.einsum("ij,jk,ik->i", d_x, self.g_xx, d_x)
        )
        count = self.stacked.count * ((moves.shares != 0).astype(float) - (shares[owner] != 0))
        return np.asarray(first + second + count)


def _moves_at(data: ProblemData, owner: np.ndarray, value: np.ndarray) -> np.ndarray:
    return trade_scalars(data, value * data.ref_value, owner)


@dataclass(frozen=True)
class _Rows:
    """The coupled rows over ``z``: ``lower <= a_trade z[:2n] + a_scalar z[2n:] + offset <= upper``
    (``a_scalar`` is rows x SCALARS: the cost, turnover, net purchase, tax and gain columns)."""

    a_trade: sparse.csc_array
    a_scalar: np.ndarray
    offset: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    by_row: sparse.csr_array  # a_trade again, for row slices
    labels: tuple[tuple[str, str], ...] = ()  # each row's (group, member), to name a conflict

    def values(self, z: np.ndarray) -> np.ndarray:
        n2 = self.a_trade.shape[1]
        return np.asarray(self.a_trade @ z[:n2] + self.a_scalar @ z[n2:] + self.offset)

    def holds(self, values: np.ndarray) -> bool:
        return bool(np.all(values <= self.upper + _CHECK) and np.all(values >= self.lower - _CHECK))

    def after(self, values: np.ndarray, asset: int, d_buy: float, d_sell: float, d_x: np.ndarray) -> np.ndarray:
        """The rows after one asset's move (its buy and sell columns and the scalars change)."""
        n = self.a_trade.shape[1] // 2
        out = values + self.a_scalar @ d_x
        for col, step in ((asset, d_buy), (n + asset, d_sell)):
            if step:
                lo, hi = self.a_trade.indptr[col], self.a_trade.indptr[col + 1]
                out[self.a_trade.indices[lo:hi]] += self.a_trade.data[lo:hi] * step
        return np.asarray(out)


def _trade_point(data: ProblemData, shares: np.ndarray) -> np.ndarray:
    """``z`` of share trades, exact costs and taxes."""
    return trade_point(data, shares * data.prices)


def _improve(
    data: ProblemData,
    shares: np.ndarray,
    pricer: _Pricer,
    rows: _Rows,
    separable: _Separable,
    max_rounds: int,
    candidates: np.ndarray | None = None,
    strict: bool = False,
) -> np.ndarray:
    """Descent on the exact objective over single-asset moves of one lot (up, down, or to no
    trade), keeping every row; moves gaining under a hundredth of an average lot's worth are left
    unless ``strict`` (see ``_LOT_GAIN``). Each round takes every asset's best improving move that keeps the
    tight rows on its own and applies the best half of them, then the best quarter, ... until the
    batch keeps every row and lowers the exact objective (moves interact through the coupled terms:
    a shared cash square, factor risk); where binding rows block every single move, the best
    exchange of two assets. Stops when no single move improves: the answer then cannot be bettered
    by moving any one asset by one lot."""
    search = _Search(data, pricer, rows)
    point = search.at(shares)
    coarse = _LOT_GAIN * pricer.unit / data.n
    blocked: np.ndarray | None = None  # the coarse moves a round found all blocked, left out once
    moves, gain = None, None  # the move table of the current trades, kept while they stand
    for _ in range(max_rounds):
        count("descent")
        if moves is None or gain is None:
            moves = _lot_moves(data, point.shares, separable, candidates)
            gain = _snap(pricer.changes(point.z, point.shares, moves))
        better = gain < -max(_GAIN * abs(point.value), coarse)
        if blocked is not None:
            better &= ~blocked
        best = _best_per_asset(moves, gain, better)
        worth = best.size > 0 and (coarse == 0 or -gain[best].sum() >= _ROUND_GAIN * pricer.unit)
        if not worth and coarse > 0 and strict:  # nothing coarse left: every improving move from here on
            coarse = 0.0
            continue
        if not worth:
            # No single move improves: a chain across a tight row may still do (its
            # helpers may move two lots; the descent's own moves stay at one, which measured
            # better on the exact-MIQP instances).
            if _Tight.near(data, rows, rows.values(point.z)).size == 0:
                break
            wide = _lot_moves(data, point.shares, separable, candidates, wide=True)
            wide_gain = _snap(pricer.changes(point.z, point.shares, wide))
            accepted = _chain(search, point, wide, wide_gain, _Tight.of(data, rows, point.z, wide))
            if accepted is None:
                break
            point, moves, blocked = accepted, None, None
            continue
        # Every asset's best improving move at once: accepted when it keeps every row and lowers
        # the objective (far from the limits, the usual case).
        accepted = search.apply(point, moves, best)
        tight = None
        if accepted is None:
            tight = _Tight.of(data, rows, point.z, moves)
            chosen = _best_per_asset(moves, gain, better & tight.fits(tight.delta))
            for take in _halvings(len(chosen)):
                accepted = search.apply(point, moves, chosen[:take])
                if accepted is not None:
                    break
        if accepted is None and tight is not None:  # binding rows block single moves: exchanges
            accepted = _exchange(search, point, moves, gain, tight)
        if accepted is None and coarse > 0 and strict:  # the coarse moves are all blocked: the fine ones next
            coarse, blocked = 0.0, better
            continue
        if accepted is None:
            break
        point, moves, blocked = accepted, None, None
    return point.shares


def _best_per_asset(moves: _Moves, gain: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Each asset's best allowed move, assets in order of gain."""
    order = np.lexsort((np.where(allowed, gain, np.inf), moves.owner))
    first = order[np.r_[True, moves.owner[order][1:] != moves.owner[order][:-1]]] if order.size else order
    first = first[allowed[first]]
    return np.asarray(first[np.argsort(gain[first], kind="stable")])


@dataclass(frozen=True)
class _Point:
    """Share trades, the model's variables ``z`` there and their exact objective."""

    shares: np.ndarray
    z: np.ndarray
    value: float


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
        if after.value < point.value and self.rows.holds(self.rows.values(after.z)):
            return after
        return None


@dataclass(frozen=True)
class _Tight:
    """The rows one lot of some asset could cross (a cash budget spent, a cap met), their room
    either way, and each move's change of them (tight rows x moves: the tight rows are few)."""

    low: np.ndarray
    high: np.ndarray
    delta: np.ndarray

    @staticmethod
    def near(data: ProblemData, rows: _Rows, values: np.ndarray) -> np.ndarray:
        """The rows within two of the dearest lots of their bounds (``values``: the rows at z)."""
        reach = 2.0 * float(np.max(data.lot * data.prices, initial=0.0)) / data.ref_value
        return np.flatnonzero(np.minimum(rows.upper - values, values - rows.lower) <= reach)

    @classmethod
    def of(cls, data: ProblemData, rows: _Rows, z: np.ndarray, moves: _Moves) -> _Tight:
        n, owner = data.n, moves.owner
        values = rows.values(z)
        tight = cls.near(data, rows, values)
        d_buy, d_sell, d_x = moves.change(data, z)
        a_tight = rows.by_row[tight, :].toarray()
        delta = a_tight[:, owner] * d_buy + a_tight[:, n + owner] * d_sell + rows.a_scalar[tight] @ d_x.T
        return cls(rows.lower[tight] - values[tight], rows.upper[tight] - values[tight], delta)

    def fits(self, delta: np.ndarray) -> np.ndarray:
        """Which changes (rows x ..., the rows first) keep every tight row."""
        shape = (-1,) + (1,) * (delta.ndim - 1)
        low, high = self.low.reshape(shape), self.high.reshape(shape)
        return np.asarray(np.all((delta >= low - _CHECK) & (delta <= high + _CHECK), axis=0))


_PAIR_TRIES = 24  # the most improving single moves paired with every other move
_CHAIN_OPTIONS = 32  # a chain is made of the cheapest this many helper moves, or not at all
_ROUNDS = 200  # descent rounds at most
_GAIN = 1e-7
"""A move improves when it lowers the objective by more than this fraction of it (float noise)."""
_ROUND_GAIN = 1e-2
"""A round runs only while all its moves together could gain more than this fraction of what one
lot of every asset is worth (the whole-share allowance): the rest is below what rounding costs."""
_LOT_GAIN = 1e-2
"""... and a move counts only if it also gains this fraction of what one lot of an average asset is worth:
the descent goes for what matters (with every improving move from the start, the default strategy
ended 2.4 % higher on one exact-MIQP instance). A strict descent (``polish``: exact mode's answer,
the second opinion's) then goes on over every improving move, so that no single lot improves its
answer; in the rounding itself that took 11-15 % more time for gains of 0.001-0.005 %."""


def _exchange(search: _Search, point: _Point, moves: _Moves, gain: np.ndarray, tight: _Tight) -> _Point | None:
    """The best pair of one-lot moves of two assets whose sum keeps the tight rows and lowers the
    objective: what the binding limits' duals trade at in the continuous problem. The pair's gain
    is taken as the sum of the two (cross terms are second order), then checked exactly."""
    owner = moves.owner
    improving = np.flatnonzero(gain < 0)
    if improving.size == 0 or tight.delta.shape[0] == 0:
        return None
    tries = improving[np.argsort(gain[improving], kind="stable")][:_PAIR_TRIES]
    fits = tight.fits(tight.delta[:, tries, None] + tight.delta[:, None, :])  # tries x moves
    fits &= owner[tries][:, None] != owner[None, :]
    total = np.where(fits, gain[tries][:, None] + gain[None, :] + search.pricer.cross(point.z, moves, tries), np.inf)
    a, b = divmod(int(np.argmin(total)), total.shape[1])
    if not total[a, b] < 0:
        return None
    return search.apply(point, moves, np.array([tries[a], b]))


def _chain(search: _Search, point: _Point, moves: _Moves, gain: np.ndarray, tight: _Tight) -> _Point | None:
    """A move blocked by a single tight row, with room made on that row by the moves of other
    assets that give it back at the least loss per unit, as many as it takes: one lot of a dear
    asset paid for by lots of several cheap ones, which no exchange of two can do. The most
    promising blocked moves are tried in turn, each chain checked exactly; the first that lowers
    the objective is taken."""
    owner = moves.owner
    inside = (tight.delta >= tight.low[:, None] - _CHECK) & (tight.delta <= tight.high[:, None] + _CHECK)
    # Not only improving ones: with a cash square, one more lot of anything costs more cash
    # than it gains alone, and only the chain improves.
    blocked_once = np.flatnonzero(inside.sum(axis=0) == len(tight.low) - 1)
    for a in blocked_once[np.argsort(gain[blocked_once], kind="stable")][:_PAIR_TRIES]:
        r = int(np.flatnonzero(~inside[:, a])[0])
        over = tight.delta[r, a] - tight.high[r]
        need, sign = (over, -1.0) if over > 0 else (tight.low[r] - tight.delta[r, a], 1.0)
        room = sign * tight.delta[r]  # what each move gives back on row r
        helps = np.flatnonzero((room > _EPS) & (owner != owner[a]) & inside.all(axis=0))
        chosen = _cheapest_room(owner[helps], gain[helps], room[helps], need)
        if chosen is None:
            continue
        accepted = search.apply(point, moves, np.concatenate([[a], helps[chosen]]))
        if accepted is not None:
            return accepted
    return None


def _cheapest_room(owner: np.ndarray, gain: np.ndarray, room: np.ndarray, need: float) -> np.ndarray | None:
    """At most one option per asset (indices into the arrays) giving at least ``need`` room in
    total at little loss: options in order of loss per unit of room, each taken if its asset has
    none yet or a smaller one (which it replaces), until the room suffices (the greedy of a
    multiple-choice knapsack; the exact check is the caller's). None if all are not enough."""
    picked: dict[int, int] = {}
    total = 0.0
    for k in np.argsort(gain / room, kind="stable")[:_CHAIN_OPTIONS]:
        asset, before = int(owner[k]), picked.get(int(owner[k]))
        extra = float(room[k]) - (0.0 if before is None else float(room[before]))
        if extra <= 0:
            continue
        picked[asset] = int(k)
        total += extra
        if total >= need * (1 + 1e-9):
            return np.array(sorted(picked.values()))
    return None


def _halvings(k: int) -> list[int]:
    """``k, k/2, k/4, ..., 1``."""
    out = []
    while k >= 1:
        out.append(k)
        k //= 2
    return out


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
    n, lot = data.n, data.lot
    lots = shares / lot
    on_grid = np.abs(lots - np.round(lots)) <= 1e-9 * np.maximum(1.0, np.abs(lots))
    up = np.where(on_grid, np.round(lots) + 1, np.ceil(lots)) * lot
    down = np.where(on_grid, np.round(lots) - 1, np.floor(lots)) * lot
    out = np.where(_sell_out_allowed(data, down), -data.shares, 0.0)
    step = np.ceil(data.min_trade_value / (lot * data.prices) - _EPS) * lot
    columns = [up, down, np.zeros(n), out, step, -step]
    if wide:
        columns += [up + lot, down - lot]
    if candidates is not None:
        columns += list(candidates.T)
    options = np.concatenate(columns)
    owner = np.tile(np.arange(n), len(columns))
    keep = (options != shares[owner]) & meets_minimum(data, options * data.prices[owner])
    moves = _moves(data, owner[keep], options[keep])
    ok = separable.ok(moves)
    return _Moves(moves.owner[ok], moves.shares[ok], moves.buy[ok], moves.sell[ok], moves.scalars[ok])


def _repair(
    chosen: np.ndarray,
    moves: _Moves,
    price: np.ndarray,
    trade_part: sparse.csr_array,
    scalar_cols: sparse.csr_array,
    offset: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_rounds: int = 200,
) -> np.ndarray | None:
    """Swap candidates until every coupled row holds: each round takes the swaps that remove the
    most violation per unit of objective given up, one per asset, until their gains would cover
    the violation (gains are not exactly additive: the next round checks); None if it gets stuck.
    Only the rows violated so far are looked at (no rows x candidates array)."""
    owner = moves.owner
    of_asset = np.full(int(owner.max()) + 1, -1)
    of_asset[owner[chosen]] = chosen
    by_row = sparse.csr_array(trade_part)
    dense_scalars = scalar_cols.toarray()
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
        block = by_row[rows, :].toarray()
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


def _row_prices(rows: _Rows, duals: np.ndarray | None) -> np.ndarray | None:
    """``A'y``: what the coupled rows' multipliers ``y`` charge per unit of each column of ``z``
    (None without multipliers for these rows)."""
    if duals is None or len(duals) != len(rows.offset):
        return None
    return np.concatenate([rows.a_trade.T @ duals, rows.a_scalar.T @ duals])


def gain_price(model: Model, duals: np.ndarray | None) -> float:
    """What the coupled rows' multipliers charge per unit of net realised gain (``G``, a fraction
    of ``V_ref``): a binding gain budget's price, 0 when it is slack or there are no multipliers."""
    v = _row_prices(_coupled_rows(model), duals)
    return 0.0 if v is None else max(float(v[2 * model.data.n - 1 - GAIN]), 0.0)


def round_trades(
    model: Model,
    buy: np.ndarray,
    sell: np.ndarray,
    *,
    gradient: np.ndarray | None = None,
    duals: np.ndarray | None = None,
    time_limit: float = 10.0,
) -> RoundingOutcome:
    """Whole-share (or lot) trades near the continuous optimum ``(buy, sell)`` (fractions of
    V_ref) that keep every limit of ``model`` and minimise its objective; ``gradient`` adds user
    terms' linearised objectives (over ``z``). ``duals`` are the continuous solve's multipliers of
    the coupled rows: candidates are first priced by the Lagrangian, so that each asset's cheapest
    does not lean, with every other asset, into the limits that held the optimum back. Raises
    :class:`InfeasibleRebalanceError` if no such trades exist among the candidates."""
    start = time.perf_counter()
    data = model.data
    n = data.n
    table, valid, stuck, moves, separable = _candidate_set(model, buy - sell)
    pricer = _Pricer(model, model.stacked(continuous=False), gradient)
    target = (buy - sell) * data.ref_value / data.prices
    rows = _coupled_rows(model)
    at = _trade_point(data, target)
    price = pricer.changes(at, target, moves)
    v = _row_prices(rows, duals)
    if v is not None:
        # At the optimum g + A'y = 0: the objective's gradient along a binding row is the row's
        # price. Priced with the Lagrangian, moving along it is neutral, not a gain.
        price = price + pricer.linear_change(v, at, moves)
    price = _snap(price)
    cheapest = _cheapest(table, valid, price)
    chosen_shares = moves.shares[cheapest]
    first = np.zeros(n)
    first[moves.owner[cheapest]] = chosen_shares
    gap: float | None = 0.0
    lossy = stuck  # a traded asset none of whose candidates kept its own rows was left untraded
    settled = not rows.holds(rows.values(_trade_point(data, first)))
    if settled:
        cheap = first
        # In whole-share allowances: raw changes are ~1e-9-1e-6, within HiGHS's optimality
        # tolerances (1e-7), where it called a choice 6x worse than the best one optimal.
        first, gap = _settle(data, moves, price / pricer.unit, cheapest, rows, time_limit)
        # The coupled rows moved an asset off both its cheapest candidate and the neighbours of
        # its continuous trade (a trade dropped or cut short): binding limits left no room to
        # round, and backing them off by a lot may do better.
        lots = target / data.lot
        neighbour = (np.abs(first / data.lot - lots) < 1.0 + 1e-9) & (np.sign(first) == np.sign(target))
        lossy = lossy or bool(np.any((first != cheap) & ~neighbour))
    # After a settle the descent may bring a candidate back (a trade the 0/1 program dropped);
    # from each asset's cheapest candidate it has nothing to bring back.
    final = _improve(data, first, pricer, rows, separable, max_rounds=_ROUNDS, candidates=table if settled else None)
    base = pricer.objective(at, target)
    lost = pricer.objective(_trade_point(data, final), final) - base
    seconds = time.perf_counter() - start
    relative = lost / max(abs(base), 1e-300)
    return RoundingOutcome(final, gap, seconds, len(moves.owner), lossy, lost / pricer.unit, relative)


def polish(model: Model, shares: np.ndarray, gradient: np.ndarray | None = None) -> np.ndarray:
    """``shares`` after the descent on the exact objective (see :func:`_improve`): for an answer
    from elsewhere (exact mode's MIP solver, which stops within its tolerances), so that no single
    one-lot move improves it either."""
    if gradient is None and model.user_terms:
        # A user's objective keeps its effect here too (priced by its gradient at these trades):
        # without it, the descent after the second opinion moved a linear tilt's trades back
        # towards the untilted optimum.
        z = _trade_point(model.data, shares)
        n = model.data.n
        gradient = user_gradient_at(model, z[:n], z[n : 2 * n], float(z[2 * n]))
    separable = _Separable.of([g.linear() for g in model.groups if g.separable], model.data.n)
    pricer = _Pricer(model, model.stacked(continuous=False), gradient)
    return _improve(model.data, shares, pricer, _coupled_rows(model), separable, max_rounds=_ROUNDS, strict=True)


def side_margin(model: Model, buy: np.ndarray, sell: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """For each of ``assets`` (a mask: assets the relaxation both buys and sells, V_ref units), how
    much cheaper selling only is than buying only (negative: sell only; 0 elsewhere). Around the
    relaxation's optimum each asset's own objective is ``H/2 (u - u*)^2`` in its net trade ``u``
    (``H`` its own curvature; the cash it frees or takes is spread over the others at no
    first-order cost, as at any optimum) plus the tax of what it sells: buying only costs
    ``H/2 min(u*, 0)^2``, selling only the least of that square plus the tax over its lots (at each
    lot's stationary point and ends)."""
    data = model.data
    out = np.zeros(data.n)
    lots = data.lots
    if lots is None:
        return out
    squares = model.stacked(continuous=False).squares
    on_buy = squares.cols.astype(np.int64)
    on_buy = np.where((on_buy >= 0) & (on_buy < data.n), on_buy, data.n)  # the buy columns' entries
    col_norm = np.bincount(on_buy, weights=squares.vals**2, minlength=data.n + 1)[: data.n]
    u = buy - sell
    unit = data.ref_value / data.prices  # shares per V_ref unit
    for i in np.flatnonzero(assets):
        curve = 2.0 * float(col_norm[i])
        held = lots.shares[i][lots.shares[i] > 0]
        ends = np.concatenate([[0.0], np.cumsum(held)]) / unit[i]  # lot boundaries, V_ref units
        slopes = lots.tax_weight * (lots.gain[i] * lots.rate[i])[: len(held)] / data.prices[i]
        inside = -u[i] - slopes / curve if curve > 0 else np.zeros(0)
        trial = np.clip(np.concatenate([ends, inside]), 0.0, ends[-1])
        _, tax, _ = lots.relief(trial * unit[i], np.full(len(trial), i))
        selling = float(np.min(0.5 * curve * (trial + u[i]) ** 2 + lots.tax_weight * tax / data.ref_value))
        out[i] = selling - 0.5 * curve * min(float(u[i]), 0.0) ** 2
    return out


def _candidate_set(model: Model, trades: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, _Moves, _Separable]:
    """The candidate table, which entries are admissible (distinct, minimum size, every separable
    row of their asset), whether a traded asset had none, the admissible candidates as moves
    (grouped by asset), and the separable rows."""
    data = model.data
    target_shares = trades * data.ref_value / data.prices
    # Interior-point solutions carry ~1e-9 noise on untraded assets; floor() would turn it into
    # a one-lot trade, so trades worth under a cent are exactly zero.
    target_shares = np.where(np.abs(target_shares) * data.prices < NOISE_VALUE, 0.0, target_shares)
    table, valid = _candidates(data, target_shares)
    owner_all = np.repeat(np.arange(data.n), table.shape[1])
    every = _moves(data, owner_all, table.ravel())
    separable = _Separable.of([g.linear() for g in model.groups if g.separable], data.n)
    valid &= separable.ok(every).reshape(valid.shape)
    stuck = ~valid.any(axis=1) & (target_shares != 0)
    valid[~valid.any(axis=1), 0] = True  # nothing admissible: no trade, and the limits decide feasibility
    keep = valid.ravel()
    moves = _Moves(owner_all[keep], every.shares[keep], every.buy[keep], every.sell[keep], every.scalars[keep])
    return table, valid, bool(stuck.any()), moves, separable


def _coupled_rows(model: Model) -> _Rows:
    coupled = [g for g in model.groups if not g.separable]
    a_trade, a_scalar, offset, lower, upper = _stack_rows([g.linear() for g in coupled], model.data.n)
    labels = tuple((g.name, member) for g in coupled for member in g.members)
    return _Rows(a_trade.tocsc(), a_scalar, offset, lower, upper, a_trade.tocsr(), labels)


def _snap(values: np.ndarray) -> np.ndarray:
    """Objective changes on a grid of a billionth of the largest: values closer than that are tied
    (fractional lots differ by ~1e-20, float noise of the continuous optimum), and ties go to the
    first in order, so an ulp of solver noise never changes the trades (same input, same trades)."""
    unit = 1e-9 * max(float(np.max(np.abs(values), initial=0.0)), 1e-300)
    return np.asarray(np.round(values / unit) * unit)


def _cheapest(table: np.ndarray, valid: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Each asset's cheapest admissible candidate (index into the admissible ones; ``price`` is
    snapped, so a tie goes to the first column)."""
    n = table.shape[0]
    index = np.full(table.shape, -1)
    index[valid] = np.arange(int(valid.sum()))
    price_table = np.full(table.shape, np.inf)
    price_table[valid] = price
    return np.asarray(index[np.arange(n), np.argmin(price_table, axis=1)])


_MILP_SECONDS = 2.0
"""The exact 0/1 program's time limit (or the settings', if smaller): its best incumbent is taken
after that (priced by the plain gradient, HiGHS once ran to a 10 s limit at 431 assets)."""


def _settle(
    data: ProblemData, moves: _Moves, price: np.ndarray, cheapest: np.ndarray, rows: _Rows, time_limit: float
) -> tuple[np.ndarray, float | None]:
    """Coupled rows bind at the cheapest choice: the exact 0/1 program over the candidates (priced
    by the Lagrangian, the cheapest choice is near feasible and HiGHS settles it in a few ms at
    431 assets), with a time limit; where it fails, a repair (swaps priced on the violated rows).

    Not the repair first: it keeps the limits wherever measured, but gives up objective the
    descent does not win back (5 % on one exact-MIQP instance of 45 assets, 0.5 % at 100 binding
    assets; ``benchmarks/results.md``)."""
    n = data.n
    trade_part = sparse.csr_array(rows.a_trade @ moves.matrix(n)[: 2 * n])
    scalar_cols = sparse.csr_array(rows.a_scalar)

    def admissible(chosen: np.ndarray) -> bool:
        shares = np.zeros(n)
        shares[moves.owner[chosen]] = moves.shares[chosen]
        return rows.holds(rows.values(_trade_point(data, shares)))

    try:
        chosen, gap = _milp(
            moves, price, trade_part, scalar_cols, rows, data, min(time_limit, _MILP_SECONDS), admissible, cheapest
        )
    except (InfeasibleRebalanceError, SolverError):
        repaired = _repair(cheapest, moves, price, trade_part, scalar_cols, rows.offset, rows.lower, rows.upper)
        if repaired is None:
            raise
        chosen, gap = repaired, None
    shares = np.zeros(n)
    shares[moves.owner[chosen]] = moves.shares[chosen]
    return shares, gap


def _stack_rows(
    rows_list: list[tuple[Affine, np.ndarray, np.ndarray]], n: int
) -> tuple[sparse.csr_array, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The coupled rows as (trade part over buy/sell, dense scalar part (rows x SCALARS), offset, bounds)."""
    stacked = Affine.stack([r for r, _, _ in rows_list])
    rows, cols, vals = stacked.rows, column(stacked.cols, n), stacked.vals
    on_trade = cols < 2 * n
    a_trade = sparse.csr_array((vals[on_trade], (rows[on_trade], cols[on_trade])), shape=(stacked.m, 2 * n))
    a_scalar = np.zeros((stacked.m, SCALARS))
    np.add.at(a_scalar, (rows[~on_trade], cols[~on_trade] - 2 * n), vals[~on_trade])
    empty = np.zeros(0)
    lower = np.concatenate([lo for _, lo, _ in rows_list]) if rows_list else empty
    upper = np.concatenate([up for _, _, up in rows_list]) if rows_list else empty
    return a_trade, a_scalar, stacked.offset, lower, upper


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
) -> tuple[np.ndarray, float | None]:
    """One candidate per asset under the coupled rows: binaries y, the scalar columns continuous.

    First the LP relaxation: at its vertex at most one asset per binding coupled row is split
    between candidates, so the others are fixed at their choice and only the split ones (then,
    if that is infeasible, also every asset the relaxation moved off its cheapest candidate) go
    into a small 0/1 program; the full program only if both are infeasible. Measured on 27
    binding requests at 100-500 assets: 7-24 ms against 20-300 ms for the full program, within
    0.2 whole-share allowances of its optimum in 22 (at most 2.1), before the descent."""
    offset, lower, upper = rows.offset, rows.lower, rows.upper
    n, m = data.n, len(moves.owner)
    one_hot = sparse.csr_array((np.ones(m), (moves.owner, np.arange(m))), shape=(n, m + SCALARS))
    # Definition rows: scalar_k - sum_j scalars_jk y_j = 0.
    definitions = sparse.hstack([sparse.csr_array(-moves.scalars.T), sparse.eye_array(SCALARS)]).tocsr()
    limits = sparse.hstack([trade_part, scalar_cols]).tocsr() * _ROW_SCALE
    matrix = sparse.vstack([one_hot, definitions, limits]).tocsc()
    objective = np.concatenate([price, np.zeros(SCALARS)])
    result: _Program | None = None
    for margin in _MARGINS:
        lo = np.concatenate([np.ones(n), np.zeros(SCALARS), (lower + margin - offset) * _ROW_SCALE])
        up = np.concatenate([np.ones(n), np.zeros(SCALARS), (upper - margin - offset) * _ROW_SCALE])
        chosen = _relaxed(moves, objective, matrix, lo, up, cheapest, time_limit)
        if chosen is not None and admissible(chosen):
            return chosen, None
        result = _program(objective, matrix, lo, up, np.ones(m, bool), time_limit)
        if result.x is None or admissible(np.flatnonzero(result.x[:m] > 0.5)):
            break
    else:
        raise SolverError("whole-share rounding could not meet the limits exactly", solver="HiGHS", status="inexact")
    if result is None or result.x is None:
        if result is not None and result.infeasible:
            raise InfeasibleRebalanceError(
                _gives(matrix, lo, up, data, m, rows, time_limit),
                "only whole shares make the request infeasible (fractional trades keep every limit); "
                "allow fractional shares or loosen a limit",
            )
        status = result.status if result is not None else "failed"
        raise SolverError(f"whole-share rounding failed: HiGHS {status}", solver="HiGHS", status=status)
    return np.flatnonzero(result.x[:m] > 0.5), result.gap


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
) -> np.ndarray | None:
    """The LP relaxation's choice, its split assets settled by a small 0/1 program (see
    :func:`_milp`); None when neither the split assets nor the moved ones can settle it."""
    m = len(moves.owner)
    relaxation = _program(objective, matrix, lo, up, np.zeros(m, bool), time_limit)
    if relaxation.x is None:
        return None
    y = relaxation.x[:m]
    taken = y > 1.0 - _SPLIT
    split = np.unique(moves.owner[(y > _SPLIT) & ~taken])
    moved = np.unique(moves.owner[taken & ~np.isin(np.arange(m), cheapest)])
    for free_assets in (split, np.union1d(split, moved)):
        free = np.isin(moves.owner, free_assets)
        fixed = np.flatnonzero(taken & ~free)
        if not free.any():
            return fixed
        columns = np.concatenate([np.flatnonzero(free), m + np.arange(SCALARS)])
        used = np.asarray(matrix[:, fixed].sum(axis=1)).ravel()
        binary = np.ones(int(free.sum()), bool)
        sub = _program(objective[columns], matrix[:, columns], lo - used, up - used, binary, time_limit)
        if sub.x is not None:
            return np.sort(np.concatenate([fixed, columns[:-SCALARS][sub.x[:-SCALARS] > 0.5]]))
    return None


_SPLIT = 1e-7  # a binary of the relaxation strictly between this and 1 - this is split


@dataclass(frozen=True)
class _Program:
    """What HiGHS said about one program: its point (None without a feasible one), whether it
    proved the program infeasible, the MIP gap and HiGHS's status name."""

    x: np.ndarray | None
    infeasible: bool = False
    gap: float | None = None
    status: str = ""


_FEASIBLE = 2  # HiGHS's primal_solution_status of a feasible point


def _program(
    objective: np.ndarray,
    matrix: sparse.csc_array,
    lo: np.ndarray,
    up: np.ndarray,
    binary: np.ndarray,
    time_limit: float,
    nonnegative: int = 0,
) -> _Program:
    """HiGHS on ``min objective'x, lo <= matrix x <= up`` with ``binary`` columns in {0, 1} (the
    rest: the scalar columns, free, then ``nonnegative`` columns >= 0); the relaxation when none is
    binary."""
    count("highs")
    import highspy

    k, rest = len(binary), len(objective) - len(binary)
    matrix = sparse.csc_array(matrix, copy=True)
    matrix.sum_duplicates()  # HiGHS refuses repeated entries; sorted ones are cheaper to pass
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(objective), matrix.shape[0]
    lp.col_cost_ = objective
    lp.col_lower_ = np.concatenate([np.zeros(k), np.full(rest - nonnegative, -np.inf), np.zeros(nonnegative)])
    lp.col_upper_ = np.concatenate([np.ones(k), np.full(rest, np.inf)])
    lp.row_lower_, lp.row_upper_ = lo, up
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    if binary.any():
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[b] for b in binary.tolist()] + [kinds[0]] * rest
    found = _Program(None)
    # HiGHS's presolve fails ("Solve error") on some of these small, nearly degenerate
    # programs, and without it HiGHS has called a feasible one infeasible: without it only
    # after such a failure (an infeasibility found with presolve stands). A relaxation goes
    # without it first: its dense rows (the scalars, the turnover) cost presolve 5x the simplex.
    for presolve in ("on", "off") if binary.any() else ("off", "on"):
        # The bare binding: the wrapper class prints a banner on stdout when it is built.
        h = highspy._Highs()  # type: ignore[attr-defined]
        h.setOptionValue("output_flag", False)  # before the model: HiGHS logs on passModel
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("presolve", presolve)
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        x = np.array(h.getSolution().col_value) if info.primal_solution_status == _FEASIBLE else None
        gap = float(info.mip_gap) if binary.any() and x is not None else None
        found = _Program(x, status == highspy.HighsModelStatus.kInfeasible, gap, status.name)
        if found.x is not None or (found.infeasible and presolve == "on"):
            break
    return found
