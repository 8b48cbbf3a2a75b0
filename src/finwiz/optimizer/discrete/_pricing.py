"""Exact objective changes of single-asset moves (``_Pricer``) and the coupled rows (``_Rows``).

The objective of a move is the strategy's own (every term, the user's included): the exact change
of the stacked quadratic when one asset alone moves (gradient plus its own curvature, from the
squared rows' Gram entries), a user's cvxpy term through its gradient, and the true trade count.
The coupled rows (cash, caps, sectors, turnover, ESG floor) are linear in the trade variables; their
multipliers price the Lagrangian (``_row_prices``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS, Affine, column
from finwiz.optimizer.discrete._candidates import _CHECK, _Moves, _moves_at, _Separable
from finwiz.optimizer.solve._assembler import Model, Stacked

_DENSE_GRAM = 500_000  # entries of the squared rows below which their Gram entries are taken dense
_GRAM = 4_000_000  # entries of the Gram matrix S'S (and of a dense S) at most, for every pair's cross term


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

    def with_gradient(self, gradient: np.ndarray | None) -> _Pricer:
        """This pricer with a user gradient added to the stacked linear part (the Gram entries shared)."""
        priced = copy.copy(self)
        priced.linear = self.stacked.linear + (0.0 if gradient is None else gradient)
        return priced

    def objective(self, z: np.ndarray, shares: np.ndarray) -> float:
        """The true objective at ``z`` (user terms linearised), trades ``shares``."""
        rows = self.stacked.squares.evaluate(z)
        return float(rows @ rows + self.linear @ z + self.stacked.count * np.count_nonzero(shares))

    def gradient(self, z: np.ndarray) -> np.ndarray:
        """The objective's gradient at ``z`` (the count left out): ``2 S'(S z + s) + q``."""
        return np.asarray(2.0 * (self.s_t @ self.stacked.squares.evaluate(z)) + self.linear)

    def cross(self, z: np.ndarray, moves: _Moves, tries: np.ndarray) -> np.ndarray:
        """``2 (S d_a)'(S d_b)`` for every move ``a`` in ``tries`` and every move ``b``: what two
        moves of different assets add to the sum of their changes."""
        change = self.s @ self._steps(z, moves)
        return np.asarray(2.0 * (change[:, tries].T @ change).toarray())

    def _steps(self, z: np.ndarray, moves: _Moves) -> sparse.csc_array:
        """Each move's change of ``z`` as a column (sparse: its asset's buy, sell and the scalars)."""
        n, owner = self.n, moves.owner
        d_buy, d_sell, d_x = moves.change(self.data, z)
        m = len(owner)
        rows = np.concatenate([owner, n + owner, np.repeat(2 * n + np.arange(SCALARS)[None, :], m, axis=0).ravel()])
        cols = np.concatenate([np.arange(m), np.arange(m), np.repeat(np.arange(m), SCALARS)])
        vals = np.concatenate([d_buy, d_sell, d_x.ravel()])
        return sparse.csc_array((vals, (rows, cols)), shape=(2 * n + SCALARS, m))

    @cached_property
    def gram(self) -> np.ndarray | None:
        """``S'S`` over every column of ``z`` (dense), or None where it would be too large."""
        rows, cols = self.s.shape
        if cols * cols > _GRAM:
            return None
        if rows * cols <= _GRAM:  # a dense covariance's rows are dense: BLAS beats the sparse product
            dense = self.s.toarray()
            return np.asarray(dense.T @ dense)
        return np.asarray((self.s_t @ self.s).toarray())

    def cross_all(self, z: np.ndarray, moves: _Moves, tries: np.ndarray) -> np.ndarray:
        """:meth:`cross` through the Gram matrix ``S'S``: ``2 d_a' (S'S) d_b`` for every move ``a``
        in ``tries`` and every move ``b``, each move touching a few columns, so the cost is that of
        the tries x moves block (not of the squared rows): on 431 names at $50k against a sample
        covariance, ``Pair``'s round took 16 ms CPU instead of 60, all 862 x 862 one-lot pairs 55 ms."""
        gram = self.gram
        if gram is None:
            return self.cross(z, moves, tries)
        d = self._steps(z, moves)
        left = np.asarray(d[:, tries].T @ gram)  # tries x columns
        return np.asarray(2.0 * (d.T @ left.T).T)

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
        grad = self.gradient(z)
        d_buy, d_sell, d_x = moves.change(self.data, z)
        first = grad[owner] * d_buy + grad[n + owner] * d_sell + d_x @ grad[2 * n :]
        second = (
            self.col_norm[owner] * d_buy**2
            + self.col_norm[n + owner] * d_sell**2
            + 2 * self.g_bs[owner] * d_buy * d_sell
            + 2 * d_buy * np.einsum("ij,ij->i", self.g_bx[owner], d_x)
            + 2 * d_sell * np.einsum("ij,ij->i", self.g_sx[owner], d_x)
            + _quadratic_form(d_x, self.g_xx)
        )
        count = self.stacked.count * ((moves.shares != 0).astype(float) - (shares[owner] != 0))
        return np.asarray(first + second + count)


def _quadratic_form(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``x_i' g x_i`` for each row ``x_i`` (the scalar columns: a few), the same floats as
    ``einsum("ij,jk,ik->i")`` (terms in its order), at a third of its time on thousands of moves;
    the columns no move changes (without lots, the tax and gain) add nothing and are skipped."""
    out = np.zeros(len(x))
    columns = x.T.copy()
    used = np.flatnonzero(np.any(x != 0, axis=0)).tolist()
    for j in used:
        for k in used:
            out += columns[j] * g[j, k] * columns[k]
    return out


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

    def changes(
        self,
        owner: np.ndarray,
        d_buy: np.ndarray,
        d_sell: np.ndarray,
        d_x: np.ndarray,
        select: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each move's change of the rows (rows x moves; a move of asset ``owner`` changes its buy
        and sell by ``d_buy``, ``d_sell`` and the scalar columns by ``d_x``): the rows ``select``
        (few: the tight ones) through their dense block, or every row through the sparse columns
        of the moves' assets, without a dense rows x assets block."""
        n = self.a_trade.shape[1] // 2
        if select is not None:
            block = self.by_row[select, :].toarray()
            return np.asarray(block[:, owner] * d_buy + block[:, n + owner] * d_sell + self.a_scalar[select] @ d_x.T)
        a, m = self.a_trade, len(owner)
        out = np.zeros((a.shape[0], m))
        for cols, step in ((owner, d_buy), (n + owner, d_sell)):
            # The moves' columns' entries (one per row: the stacked rows were summed), added as
            # the dense product adds them, so both give the same floats.
            size = a.indptr[cols + 1] - a.indptr[cols]
            at = np.repeat(a.indptr[cols] - np.cumsum(size) + size, size) + np.arange(int(size.sum()))
            out[a.indices[at], np.repeat(np.arange(m), size)] += a.data[at] * np.repeat(step, size)
        return np.asarray(out + self.a_scalar @ d_x.T)


@dataclass(frozen=True)
class Pieces:
    """What the whole-share steps judge one model's moves by, built once per model and passed down
    (the rounding, the search and the polish of one stage share them): its coupled rows, its
    separable rows and its pricer without a user gradient."""

    model: Model
    rows: _Rows
    separable: _Separable
    pricer: _Pricer

    @classmethod
    def of(cls, model: Model) -> Pieces:
        separable = _Separable.of_model(model)  # the minimum position value in each asset's allowed set
        return cls(model, _coupled_rows(model), separable, _Pricer(model, model.stacked(continuous=False), None))


def pieces_of(model: Model, pieces: Pieces | None) -> Pieces:
    """``pieces`` when they are ``model``'s, else ``model``'s own, built."""
    return pieces if pieces is not None and pieces.model is model else Pieces.of(model)


def _coupled_rows(model: Model) -> _Rows:
    coupled = [g for g in model.groups if not g.separable]
    a_trade, a_scalar, offset, lower, upper = _stack_rows([g.linear() for g in coupled], model.data.n)
    labels = tuple((g.name, member) for g in coupled for member in g.members)
    return _Rows(a_trade.tocsc(), a_scalar, offset, lower, upper, a_trade.tocsr(), labels)


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


def _row_prices(rows: _Rows, duals: np.ndarray | None) -> np.ndarray | None:
    """``A'y``: what the coupled rows' multipliers ``y`` charge per unit of each column of ``z``
    (None without multipliers for these rows)."""
    if duals is None or len(duals) != len(rows.offset):
        return None
    return np.concatenate([rows.a_trade.T @ duals, rows.a_scalar.T @ duals])
