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

from finwiz.optimizer._kept import kept
from finwiz.optimizer.describe._model import SCALARS, Affine, column
from finwiz.optimizer.discrete._candidates import _CHECK, _LotMoves, _Moves, _moves_at, _Separable, asset_spans, ranges
from finwiz.optimizer.discrete._thin import thin_gram_entries
from finwiz.optimizer.solve._assembler import Model, Stacked
from finwiz.optimizer.solve._csc import majors

_DENSE_GRAM = 500_000  # entries of the squared rows below which their Gram entries are taken dense
_GRAM = 4_000_000  # entries of the shared rows' Gram matrix at most, for every pair's cross term
_FEW_SHARED = 16  # shared rows up to which cross terms are priced from the rows themselves


class _Pricer:
    """Exact objective changes of single-asset moves, from the stacked objective
    ``||S z + s||^2 + q'z`` (+ a user gradient, + the true count): for a move ``d`` of one asset's
    buy, sell and the scalar columns, ``2 r'S d + ||S d||^2 + q'd`` with ``r = S z + s``. The Gram
    entries ``||S d||^2`` needs touch five columns and do not depend on ``z``: computed once."""

    def __init__(self, model: Model, stacked: Stacked, gradient: np.ndarray | None) -> None:
        n = model.data.n
        self.data, self.stacked, self.n = model.data, stacked, n
        squares = stacked.squares
        if squares.dense_rows and squares.nnz > _DENSE_GRAM:  # a root's n^2 triplets: too many to key or keep
            grams = _Grams.of(squares, n)
        else:
            key = (squares.rows, squares.cols, squares.vals, np.array([squares.m, n]))
            grams = kept("squares", key, lambda: _Grams.of(squares, n))
        self.grams = grams
        self.col_norm, self.g_bs = grams.col_norm, grams.g_bs
        self.g_bx, self.g_sx, self.g_xx = grams.g_bx, grams.g_sx, grams.g_xx
        self.linear = stacked.linear + (0.0 if gradient is None else gradient)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # the last point's gradient
        self._rows: tuple[np.ndarray, np.ndarray] | None = None  # the last priced z and its squared rows
        # What one lot of every asset is worth in objective: the scale of whole-share losses.
        lot_weight = model.data.lot * model.data.prices / model.data.ref_value
        self.unit = float(np.sum(self.col_norm[:n] * lot_weight**2)) or 1.0

    @property
    def s(self) -> sparse.csc_array:
        """The squared rows over ``z`` (:attr:`_Grams.s`)."""
        return self.grams.s

    @property
    def s_t(self) -> sparse.csr_array:
        """Their transpose (:attr:`_Grams.s_t`)."""
        return self.grams.s_t

    def with_gradient(self, gradient: np.ndarray | None) -> _Pricer:
        """This pricer with a user gradient added to the stacked linear part (the Gram entries shared)."""
        priced = copy.copy(self)
        priced.linear = self.stacked.linear + (0.0 if gradient is None else gradient)
        priced._last = priced._rows = None
        return priced

    def objective(self, z: np.ndarray, shares: np.ndarray) -> float:
        """The true objective at ``z`` (user terms linearised), trades ``shares``."""
        rows = self.stacked.squares.evaluate(z)
        self._rows = (z, rows)  # the accepted point is the last priced: the next round's gradient needs its rows
        return float(rows @ rows + self.linear @ z + self.stacked.count * np.count_nonzero(shares))

    def gradient(self, z: np.ndarray) -> np.ndarray:
        """The objective's gradient at ``z`` (the count left out): ``2 S'(S z + s) + q``; the last
        one kept (a round asks for it at the same point several times)."""
        last = self._last
        if last is not None and last[0].shape == z.shape and bool((last[0] == z).all()):  # np.array_equal's test
            return last[1]
        rows = self.squared_rows(z)
        grad = np.asarray(2.0 * self.grams.transposed(rows) + self.linear)
        self._last = (z.copy(), grad)
        return grad

    def squared_rows(self, z: np.ndarray) -> np.ndarray:
        """The squared rows ``S z + s`` (those of the last priced point when ``z`` is it)."""
        kept = self._rows
        return kept[1] if kept is not None and kept[0] is z else self.stacked.squares.evaluate(z)

    def shared(self, z: np.ndarray, moves: _Moves, which: np.ndarray | None = None) -> np.ndarray:
        """Each move's (or each of the moves ``which``'s) change of the squared rows two assets
        share (``shared_rows`` x moves): the only rows through which moves of two different
        assets interact."""
        n, rows = self.n, self.shared_rows
        d_buy, d_sell, d_x = moves.change(self.data, z)
        owner = moves.owner
        if which is not None:
            owner, d_buy, d_sell = owner.take(which), d_buy.take(which), d_sell.take(which)
            d_x = d_x.take(which, axis=0)
        on_scalars = rows[:, 2 * n :] @ d_x.T
        return np.asarray(rows.take(owner, axis=1) * d_buy + rows.take(n + owner, axis=1) * d_sell + on_scalars)

    def cross(self, z: np.ndarray, moves: _Moves, tries: np.ndarray) -> np.ndarray:
        """``2 (S d_a)'(S d_b)`` for every move ``a`` in ``tries`` and every move ``b`` of another
        asset: what two moves add to the sum of their changes (the objective is quadratic). The
        entries of two moves of one asset are not that (their rows of the asset's own weight are
        left out): callers leave those pairs out. From the shared rows (``shared``): without a
        covariance the cash row alone, an outer product (the sparse product of every row was
        most of a pair's time). With many shared rows (a dense covariance's) through their Gram
        matrix (``shared_gram``), each move touching a few columns: far cheaper than the rows."""
        gram = self.shared_gram
        if gram is None:
            change = self.shared(z, moves)
            return np.asarray(2.0 * (change[:, tries].T @ change))
        d = self._steps(z, moves)
        left = np.asarray(d[:, tries].T @ gram)  # tries x columns
        return np.asarray(2.0 * (d.T @ left.T).T)

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
    def shared_rows(self) -> np.ndarray:
        """The squared rows (dense) that touch a scalar column or the columns of two assets."""
        few = self.grams.few_shared
        return few if few is not None else self.grams.shared_dense()

    @cached_property
    def shared_gram(self) -> np.ndarray | None:
        """The shared rows' Gram matrix (dense, every column of ``z``) where they are many (more
        than ``_FEW_SHARED``) and it is not too large; else None."""
        rows, cols = self.shared_rows.shape
        if rows <= _FEW_SHARED or cols * cols > _GRAM:
            return None
        return np.asarray(self.shared_rows.T @ self.shared_rows)

    def linear_change(self, v: np.ndarray, z: np.ndarray, moves: _Moves) -> np.ndarray:
        """The change of ``v'z`` for each move from ``z``."""
        n, owner = self.n, moves.owner
        d_x = moves.scalars - _moves_at(self.data, owner, z[owner] - z[n + owner])
        return np.asarray(
            v[owner] * (moves.buy - z[owner]) + v[n + owner] * (moves.sell - z[n + owner]) + d_x @ v[2 * n :]
        )

    def changes(self, z: np.ndarray, shares: np.ndarray, moves: _Moves) -> np.ndarray:
        """The objective change of each move (an asset's new absolute trade) from ``z``."""
        first, second = self.parts(z, moves)
        count = self.stacked.count * ((moves.shares != 0).astype(float) - (shares.take(moves.owner) != 0))
        return np.asarray(first + second + count)

    def parts(self, z: np.ndarray, moves: _Moves) -> tuple[np.ndarray, np.ndarray]:
        """Each move's change of the smooth objective from ``z``, split into its first-order part
        (the gradient along the move) and its second-order part (the move's own curvature); the
        count left out."""
        steps = moves.change(self.data, z)
        first = self.first(self.gradient(z), moves.owner, steps)
        if moves.kept is None:
            return first, self.second(moves.owner, steps)
        curvature, at = moves.kept
        return first, curvature.of(
            self.grams, at, lambda todo: self.second(moves.owner[todo], tuple(s[todo] for s in steps))
        )

    def first(self, grad: np.ndarray, owner: np.ndarray, steps: tuple[np.ndarray, ...]) -> np.ndarray:
        """The gradient ``grad`` along each move (of asset ``owner``, changes ``steps``: buy, sell, scalars)."""
        d_buy, d_sell, d_x = steps
        n = self.n
        return np.asarray(grad.take(owner) * d_buy + grad.take(n + owner) * d_sell + d_x @ grad[2 * n :])

    def second(self, owner: np.ndarray, steps: tuple[np.ndarray, ...]) -> np.ndarray:
        """Each move's own curvature ``||S d||^2`` (of asset ``owner``, changes ``steps``): it
        depends on that asset's trade alone."""
        d_buy, d_sell, d_x = steps
        return np.asarray(
            self.col_norm.take(owner) * d_buy**2
            + self.col_norm.take(self.n + owner) * d_sell**2
            + 2 * self.g_bs.take(owner) * d_buy * d_sell
            + 2 * d_buy * np.einsum("ij,ij->i", self.g_bx.take(owner, axis=0), d_x)
            + 2 * d_sell * np.einsum("ij,ij->i", self.g_sx.take(owner, axis=0), d_x)
            + _quadratic_form(d_x, self.g_xx)
        )


@dataclass(frozen=True)
class _Grams:
    """The squared rows ``S`` over ``z`` and the Gram entries of single-asset moves (see
    :class:`_Pricer`): they depend on the rows only, which a re-solve at new prices keeps."""

    squares: Affine
    rest: sparse.csc_array  # S without its dense ``blocks``
    blocks: list[tuple[int, np.ndarray]]  # a covariance's root: M on buy, -M on sell (none: ``rest`` is S)
    col_norm: np.ndarray
    g_bs: np.ndarray
    g_bx: np.ndarray
    g_sx: np.ndarray
    g_xx: np.ndarray

    @classmethod
    def of(cls, squares: Affine, n: int) -> _Grams:
        shape, blocks = (squares.m, 2 * n + SCALARS), squares.dense_rows
        if not blocks or squares.m * (2 * n + SCALARS) <= _DENSE_GRAM:
            s = sparse.csc_array((squares.vals, (squares.rows, column(squares.cols, n))), shape=shape)
            return cls(squares, s, [], *_gram_entries(s, n))
        # The blocks' entries from their matrices, not from n^2 sparse triplets.
        rows, places, vals = squares.rest(n)
        rest = sparse.csc_array((vals, (rows, places)), shape=shape)
        col_norm, g_bs, g_bx, g_sx, g_xx = _gram_entries(rest, n)
        for _, matrix in blocks:
            norms = np.einsum("ij,ij->j", matrix, matrix)
            col_norm[:n] += norms
            col_norm[n : 2 * n] += norms
            g_bs -= norms
        return cls(squares, rest, blocks, col_norm, g_bs, g_bx, g_sx, g_xx)

    @cached_property
    def s(self) -> sparse.csc_array:
        """``S`` as one sparse matrix (with dense blocks, built only where a caller needs it)."""
        if not self.blocks:
            return self.rest
        squares, n = self.squares, (self.rest.shape[1] - SCALARS) // 2
        return sparse.csc_array((squares.vals, (squares.rows, column(squares.cols, n))), shape=self.rest.shape)

    @cached_property
    def s_t(self) -> sparse.csr_array:
        """``S'`` (CSR)."""
        return self.s.T.tocsr()

    @cached_property
    def _rest_t(self) -> sparse.csr_array:
        return self.rest.T.tocsr() if self.blocks else self.s_t

    def transposed(self, rows: np.ndarray) -> np.ndarray:
        """``S' rows``, a dense block's part as ``M' rows`` on buy and its negative on sell."""
        out = np.asarray(self._rest_t @ rows)
        n = (len(out) - SCALARS) // 2
        for first, matrix in self.blocks:
            part = matrix.T @ rows[first : first + len(matrix)]
            out[:n] += part
            out[n : 2 * n] -= part
        return out

    def shared_dense(self) -> np.ndarray:
        """The rows ``shared`` of ``S``, dense: placed from the CSC's entries (the same values as
        scipy's row slice and ``toarray``, which took ~0.2 ms of a 100-asset request)."""
        s, rows = self.s, self.shared
        if not s.has_canonical_format:  # repeated entries are summed by toarray
            return np.asarray(s[rows, :].toarray()) if rows.size else np.zeros((0, s.shape[1]))
        place = np.full(s.shape[0], -1)
        place[rows] = np.arange(len(rows))
        at = place.take(s.indices)
        entry = np.flatnonzero(at >= 0)
        out = np.zeros((len(rows), s.shape[1]))
        out[at.take(entry), majors(s.indptr).take(entry)] = s.data.take(entry)
        return out

    @cached_property
    def few_shared(self) -> np.ndarray | None:
        """:meth:`shared_dense` kept with the rows where they are few (at most ``_FEW_SHARED``, the
        cross terms' own rows then): every request at these rows asks for them; many (a dense
        covariance's) stay with each pricer, so the kept table's memory does not grow."""
        return self.shared_dense() if len(self.shared) <= _FEW_SHARED else None

    @cached_property
    def shared(self) -> np.ndarray:
        """Which squared rows touch a scalar column or the columns of two assets (``_Pricer.shared_rows``),
        found once with the rows: a re-solve at new prices keeps them (docs/decisions/settle-and-descent.md)."""
        s, n = self.s, (self.s.shape[1] - SCALARS) // 2
        col = majors(s.indptr)
        on = col < 2 * n
        least, most = asset_spans(s.indices[on], col[on] % max(n, 1), s.shape[0], n)
        scalar = np.zeros(s.shape[0], dtype=bool)
        scalar[s.indices[~on]] = True
        return np.flatnonzero((most > least) | scalar)


def _gram_entries(s: sparse.csc_array, n: int) -> tuple[np.ndarray, ...]:
    """Column norms of the squared rows ``s``, each asset's buy-sell product and the buy and sell
    columns' products with the scalar columns (see :class:`_Grams`)."""
    thin = thin_gram_entries(s, n)
    if thin is not None:
        return thin
    if s.shape[0] * s.shape[1] <= _DENSE_GRAM:  # small: dense numpy beats scipy's overheads
        dense = s.toarray()
        # The scalar columns copied out: as a strided view they sent ``buy.T @ scalars`` to
        # numpy's slow loop.
        buy, sell, scalars = dense[:, :n], dense[:, n : 2 * n], np.ascontiguousarray(dense[:, 2 * n :])
        col_norm = np.einsum("ij,ij->j", dense, dense)
        g_bs = np.einsum("ij,ij->j", buy, sell)
    else:
        buy_cols, sell_cols = s[:, :n], s[:, n : 2 * n]
        col_norm = np.asarray(s.multiply(s).sum(axis=0)).ravel()
        g_bs = np.asarray(buy_cols.multiply(sell_cols).sum(axis=0)).ravel()
        scalars = s[:, 2 * n :].toarray()
        buy, sell = buy_cols, sell_cols
    touched = np.flatnonzero(np.any(scalars != 0, axis=1))
    if len(touched) == 1 and isinstance(buy, np.ndarray):  # one row (a cash row): each entry is one product
        row = int(touched[0])
        g_bx, g_sx = np.multiply.outer(buy[row], scalars[row]), np.multiply.outer(sell[row], scalars[row])
    else:
        g_bx, g_sx = buy.T @ scalars, sell.T @ scalars
    return col_norm, g_bs, np.asarray(g_bx), np.asarray(g_sx), scalars.T @ scalars


def _quadratic_form(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``x_i' g x_i`` for each row ``x_i`` (the scalar columns: a few), the same floats as
    ``einsum("ij,jk,ik->i")`` (terms in its order), at a third of its time on thousands of moves;
    only the terms of ``g``'s nonzero entries (one without lots or taxes: the cash square): the
    others add signed zeros to a running sum, which change nothing (the final ``+ 0.0`` clears a ``-0.0``)."""
    if len(x) <= _FEW_MOVES:  # the same products, summed in the same order (a running sum), the zeros adding nothing
        return _terms_summed(x.T, g)
    j, k = np.nonzero(g)  # row-major: the running sum's order
    if len(x) <= _MANY_MOVES:  # the terms at once (a few rows of moves): below a loop's overheads
        if j.size == 0:
            return np.zeros(len(x))
        c = x.T
        terms = (c.take(j, axis=0) * g[j, k][:, None]) * c.take(k, axis=0)
        return np.asarray(terms.cumsum(axis=0)[-1] + 0.0)
    out = np.zeros(len(x))
    columns = x.T.copy()
    for a, b in zip(j.tolist(), k.tolist(), strict=True):
        out += columns[a] * g[a, b] * columns[b]
    return out


def _terms_summed(c: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``sum_jk c_j g_jk c_k`` per column of ``c``, a running sum over ``j, k`` in order."""
    terms = (c[:, None, :] * g[:, :, None]) * c[None, :, :]
    return np.asarray(terms.reshape(g.size, c.shape[1]).cumsum(axis=0)[-1] + 0.0)


_FEW_MOVES = 64  # moves up to which ``_quadratic_form`` takes every column's terms (a call's overhead rules)
_MANY_MOVES = 5000  # ... and the used columns' terms at once (then a loop: no moves x 25 block)
_DENSE_ROWS = 500_000  # entries of the coupled rows below which they are also kept dense


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
    named: tuple[tuple[str, tuple[str, ...]], ...] = ()  # each group's name and its rows' members, in row order

    @cached_property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """Each row's (group, member), to name a conflict: built only then (~34 us at 500 assets)."""
        return tuple((name, member) for name, members in self.named for member in members)

    @cached_property
    def dense(self) -> np.ndarray | None:
        """``a_trade`` as a dense block when small (scipy's slice of it costs far more than numpy's)."""
        rows, cols = self.a_trade.shape
        return self.a_trade.toarray() if rows * cols <= _DENSE_ROWS else None

    def block(self, select: np.ndarray) -> np.ndarray:
        """The rows ``select`` of ``a_trade``, dense: placed from the CSR's arrays (the same entries
        as scipy's row slice and ``toarray``, which cost most of the tight rows' time each round)."""
        if self.dense is not None:
            return np.asarray(self.dense[select])
        csr = self.by_row
        if not csr.has_canonical_format:  # repeated entries are summed by toarray
            return np.asarray(csr[select, :].toarray())
        start, size = csr.indptr[select], np.diff(csr.indptr)[select]
        at = ranges(start, size)
        out = np.zeros((len(select), csr.shape[1]))
        out[np.repeat(np.arange(len(select)), size), csr.indices[at]] = csr.data[at]
        return out

    def values(self, z: np.ndarray) -> np.ndarray:
        n2 = self.a_trade.shape[1]
        return np.asarray(self.a_trade @ z[:n2] + self.a_scalar @ z[n2:] + self.offset)

    def holds(self, values: np.ndarray) -> bool:
        return bool((values <= self.upper + _CHECK).all() and (values >= self.lower - _CHECK).all())

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
        # take: the same columns as fancy indexing, in less time
        if select is not None:
            block = self.block(select)
            return _summed(
                block.take(owner, axis=1), d_buy, block.take(n + owner, axis=1), d_sell, self.a_scalar[select] @ d_x.T
            )
        if self.dense is not None:  # small: the dense columns (zeros add nothing: the same floats)
            dense = self.dense
            return _summed(
                dense.take(owner, axis=1), d_buy, dense.take(n + owner, axis=1), d_sell, self.a_scalar @ d_x.T
            )
        a, m = self.a_trade, len(owner)
        out = np.zeros((a.shape[0], m))
        for cols, step in ((owner, d_buy), (n + owner, d_sell)):
            # The moves' columns' entries (one per row: the stacked rows were summed), added as
            # the dense product adds them, so both give the same floats.
            size = a.indptr[cols + 1] - a.indptr[cols]
            at = ranges(a.indptr[cols], size)
            out[a.indices[at], np.repeat(np.arange(m), size)] += a.data[at] * np.repeat(step, size)
        out += self.a_scalar @ d_x.T  # in place: the same sum without a rows x moves temporary
        return out


def _summed(buy: np.ndarray, d_buy: np.ndarray, sell: np.ndarray, d_sell: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """``buy * d_buy + sell * d_sell + rest``, the same operations in the same order, in place: a
    rows x moves temporary over ~128 kB is a fresh mapping each time (~5x the arithmetic's time)."""
    buy *= d_buy
    sell *= d_sell
    buy += sell
    buy += rest
    return buy


@dataclass(frozen=True)
class Pieces:
    """What the whole-share steps judge one model's moves by, built once per model and passed down
    (the rounding, the search and the polish of one stage share them): its coupled rows, its
    separable rows and its pricer without a user gradient."""

    model: Model
    rows: _Rows
    separable: _Separable
    pricer: _Pricer

    @cached_property
    def lot_moves(self) -> _LotMoves:
        """The one-lot moves of the model's descents without first candidates (the rounding's from
        its cheapest choice, then the polish), kept between them: the polish starts where the
        rounding's descent ended, its moves priced already."""
        return _LotMoves(self.model.data, self.separable, None)

    @classmethod
    def of(cls, model: Model) -> Pieces:
        separable = _Separable.of_model(model)  # the minimum position value in each asset's allowed set
        return cls(model, _coupled_rows(model), separable, _Pricer(model, model.stacked(continuous=False), None))


def pieces_of(model: Model, pieces: Pieces | None) -> Pieces:
    """``pieces`` when they are ``model``'s, else ``model``'s own, built."""
    return pieces if pieces is not None and pieces.model is model else Pieces.of(model)


def _coupled_rows(model: Model) -> _Rows:
    coupled = [g for g in model.groups if not g.separable]
    n = model.data.n
    rows_list = [g.linear() for g in coupled]
    stacked = Affine.stack([r for r, _, _ in rows_list])
    key = (stacked.rows, stacked.cols, stacked.vals, np.array([stacked.m, n]))
    a_trade, a_scalar, by_row = kept("rows", key, lambda: _row_matrices(stacked, n))
    empty = np.zeros(0)
    lower = np.concatenate([lo for _, lo, _ in rows_list]) if rows_list else empty
    upper = np.concatenate([up for _, _, up in rows_list]) if rows_list else empty
    named = tuple((g.name, g.members) for g in coupled)
    return _Rows(a_trade, a_scalar, stacked.offset, lower, upper, by_row, named)


def _row_matrices(stacked: Affine, n: int) -> tuple[sparse.csc_array, np.ndarray, sparse.csr_array]:
    """The coupled rows' trade part over buy/sell (CSC, and CSR for row slices) and their dense
    scalar part (rows x SCALARS)."""
    rows, cols, vals = stacked.rows, column(stacked.cols, n), stacked.vals
    on_trade = cols < 2 * n
    a_trade = sparse.csr_array((vals[on_trade], (rows[on_trade], cols[on_trade])), shape=(stacked.m, 2 * n))
    a_scalar = np.zeros((stacked.m, SCALARS))
    np.add.at(a_scalar, (rows[~on_trade], cols[~on_trade] - 2 * n), vals[~on_trade])
    return a_trade.tocsc(), a_scalar, a_trade.tocsr()


def _row_prices(rows: _Rows, duals: np.ndarray | None) -> np.ndarray | None:
    """``A'y``: what the coupled rows' multipliers ``y`` charge per unit of each column of ``z``
    (None without multipliers for these rows)."""
    if duals is None or len(duals) != len(rows.offset):
        return None
    return np.concatenate([rows.a_trade.T @ duals, rows.a_scalar.T @ duals])
