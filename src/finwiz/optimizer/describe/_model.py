"""The one description of the problem: what each term states, once, and what every consumer reads.

A term describes its piece as data (:class:`Description`): squares of affine rows and linear parts
for the objective, and :class:`LimitGroup` s for the constraints, all over the trade variables

    z = [buy (n), sell (n), c, tau, nu, T, G]

(fractions of ``V_ref``; ``c`` the total cost, ``tau = 1'(buy + sell)`` the turnover,
``nu = 1'(buy - sell)`` the net purchase, and in a taxable account ``T`` the tax and ``G`` the net
gain its sales realise (both 0 otherwise); post-trade weights ``w = x0 + buy - sell``). From that one
description the native QP (``_qp``), the cvxpy problem (``_assembler``, for user terms, the
power-cone impact, exact mode and the diagnosis), the whole-share step (``discrete/``), the
compliance table (``_compliance``) and the diagnosis's units are all derived; none of them restates
a limit's formula.

A limit is a ratio of rows: ``lower <= rows(z) / per(z) <= upper``. Caps on post-trade weights are
``w_i / (1 - c) <= cap``, the turnover cap is ``tau / (V / V_ref) <= cap``, the ESG floor is the
value-weighted average score ``s'w / 1'w >= floor``. :meth:`LimitGroup.linear` is the one place where
a ratio becomes the linear row the solvers take (``rows - bound x per``) and where rows are backed
off to leave room for whole shares; :meth:`LimitGroup.value` is what the compliance table shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

__all__ = [
    "COST",
    "GAIN",
    "NET",
    "SCALARS",
    "TAX",
    "TURNOVER",
    "Affine",
    "Description",
    "ImpactForm",
    "LimitGroup",
    "TaxForm",
    "trade_vector",
]

COST, TURNOVER, NET, TAX, GAIN = -1, -2, -3, -4, -5
"""Column codes of the scalar variables, placed after buy and sell: the cost ``c``, the turnover
``tau = 1'(buy + sell)``, the net purchase ``nu = 1'(buy - sell)``, the tax ``T`` and the net
realised gain ``G``. Terms write their one-row limits on these instead of dense rows over every
asset: the budget, a turnover cap and a uniform cost rate were three nearly parallel dense rows,
and ADMM took ~1000 iterations cold on them. Each is a sum over assets of a function of that
asset's trade alone (``c`` and ``T``, ``G`` piecewise: impact, lots), which is what lets the
whole-share step price a candidate's share of them exactly."""
SCALARS = 5
"""How many scalar columns follow buy and sell in ``z``."""
_SPARSE_ROWS = 1_000_000  # entries from which rows are evaluated as a kept sparse matrix, not by bincount


def column(code: np.ndarray, n: int) -> np.ndarray:
    """Place of each column code in ``z``: assets' buy/sell as they are, the scalar columns
    after them (``-1, -2, ... -> 2n, 2n+1, ...``)."""
    return np.where(code < 0, 2 * n - 1 - code, code)


def trade_vector(buy: np.ndarray, sell: np.ndarray, cost: float, tax: float = 0.0, gain: float = 0.0) -> np.ndarray:
    """``z = [buy, sell, c, tau, nu, T, G]`` for given trades (fractions of ``V_ref``)."""
    scalars = [cost, float(buy.sum() + sell.sum()), float(buy.sum() - sell.sum()), tax, gain]
    return np.concatenate([buy, sell, scalars])


@dataclass(frozen=True)
class Affine:
    """Rows ``A z + b`` over ``z = [buy (n), sell (n)]`` and the scalar columns (``COST``,
    ``TURNOVER``, ``NET``, ``TAX``, ``GAIN``, as negative column codes), as triplets."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    offset: np.ndarray

    @property
    def m(self) -> int:
        """Number of rows."""
        return len(self.offset)

    def __getattr__(self, name: str) -> np.ndarray:
        """``rows``, ``cols`` and ``vals`` of deferred rows (:meth:`weights_dense`, and a stack of
        them), written on first read: the solvers and the pricer read a covariance's root as its
        matrix, and its n^2 triplets (3 x 64 MB at 2,000 assets) only the cvxpy build needs."""
        deferred = self.__dict__.get("_deferred")
        if name not in ("rows", "cols", "vals") or (deferred is None and name not in self.__dict__):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if deferred is not None:  # another thread may write them too: the same values
            self.__dict__.update(zip(("rows", "cols", "vals"), deferred.triplets(), strict=True))
            self.__dict__.pop("_deferred", None)
        triplet: np.ndarray = self.__dict__[name]
        return triplet

    @property
    def nnz(self) -> int:
        """Number of triplets (not written for it where they are deferred)."""
        deferred = self.__dict__.get("_deferred")
        return len(self.vals) if deferred is None else deferred.nnz

    @classmethod
    def _deferring(cls, deferred: _Deferred, offset: np.ndarray) -> Affine:
        out = object.__new__(cls)
        out.__dict__.update(offset=offset, _deferred=deferred)
        return out

    @classmethod
    def weights_diag(
        cls, scale: np.ndarray, x0: np.ndarray, base: np.ndarray | None = None, idx: np.ndarray | None = None
    ) -> Affine:
        """Row r: ``scale_r (w_i - base_i)`` for asset ``i = idx[r]`` (default: every asset)."""
        n = len(x0)
        idx = np.arange(n) if idx is None else idx
        rows = np.arange(len(idx))
        shift = x0[idx] if base is None else (x0 - base)[idx]
        return cls(
            np.concatenate([rows, rows]),
            np.concatenate([idx, idx + n]),
            np.concatenate([scale, -scale]),
            scale * shift,
        )

    @classmethod
    def weights_dense(cls, matrix: np.ndarray, x0: np.ndarray, base: np.ndarray | None = None) -> Affine:
        """``M (w - base)`` for a dense ``M`` (rows x n)."""
        shift = x0 if base is None else x0 - base
        out = cls._deferring(_Deferred((matrix,)), matrix @ shift)
        out.__dict__["_dense"] = matrix  # frozen dataclass: kept beside the fields, for dense consumers
        return out

    @property
    def dense(self) -> np.ndarray | None:
        """``M`` when these rows are ``M (w - base)`` from :meth:`weights_dense`, else None: a
        covariance's root read as the matrix it is instead of rebuilt from n^2 triplets."""
        matrix: np.ndarray | None = self.__dict__.get("_dense")
        return matrix

    @property
    def gram_eigen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(values, vectors, M'M)`` for :attr:`dense` ``M`` where a full-rank covariance's term
        kept them (see ``risk._model.root_eigen``), else None."""
        eigen: tuple[np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_gram_eigen")
        return eigen

    @classmethod
    def weights_sparse(cls, row_of: np.ndarray, coef: np.ndarray, m: int, x0: np.ndarray) -> Affine:
        """Row ``r``: the sum of ``coef_i w_i`` over the assets with ``row_of[i] == r`` (``-1``: none)."""
        n = len(x0)
        idx = np.flatnonzero(row_of >= 0)
        rows = row_of[idx]
        offset = np.zeros(m)
        np.add.at(offset, rows, coef[idx] * x0[idx])
        both = np.concatenate([rows, rows])
        return cls(both, np.concatenate([idx, idx + n]), np.concatenate([coef[idx], -coef[idx]]), offset)

    @classmethod
    def side(cls, idx: np.ndarray, n: int, sell: bool) -> Affine:
        """Row r: ``buy_i`` (or ``sell_i``) of asset ``i = idx[r]``."""
        return cls(np.arange(len(idx)), idx + (n if sell else 0), np.ones(len(idx)), np.zeros(len(idx)))

    @classmethod
    def traded(cls, coef: np.ndarray) -> Affine:
        """One row: ``coef' (buy + sell)`` (per-asset coefficients; for equal ones use ``TURNOVER``)."""
        n = len(coef)
        return cls(np.zeros(2 * n, dtype=np.int64), np.arange(2 * n), np.concatenate([coef, coef]), np.zeros(1))

    @classmethod
    def scalar(cls, column: int, coef: float = 1.0, offset: float = 0.0) -> Affine:
        """One row: ``coef x`` one of the scalar columns (``COST``, ``TURNOVER``, ...) ``+ offset``."""
        return cls(np.zeros(1, dtype=np.int64), np.array([column]), np.array([coef], dtype=float), np.array([offset]))

    @classmethod
    def constant(cls, value: float) -> Affine:
        """One row that is the number ``value``."""
        empty = np.zeros(0)
        return cls(empty.astype(np.int64), empty.astype(np.int64), empty, np.array([value], dtype=float))

    @classmethod
    def stack(cls, affines: Sequence[Affine]) -> Affine:
        """The rows of ``affines`` one after the other."""
        if not affines:
            empty = np.zeros(0)
            return cls(empty.astype(np.int64), empty.astype(np.int64), empty, empty)
        base = np.cumsum([0] + [a.m for a in affines])
        offset = np.concatenate([a.offset for a in affines])
        if any("_deferred" in a.__dict__ for a in affines):  # their triplets stacked where they are read
            out = cls._deferring(_Deferred(tuple(affines)), offset)
        else:
            out = cls(*_stacked_triplets(affines), offset)
        out.__dict__["_dense_rows"] = [
            (int(b), a.dense) for a, b in zip(affines, base, strict=False) if a.dense is not None
        ]
        return out

    @property
    def dense_rows(self) -> list[tuple[int, np.ndarray]]:
        """``(first row, M)`` of each block of these rows stacked from :meth:`weights_dense`."""
        parts: list[tuple[int, np.ndarray]] = self.__dict__.get("_dense_rows", [])
        return parts

    def plus(self, column: int, coef: float | np.ndarray) -> Affine:
        """These rows plus ``coef x`` a scalar column (one coefficient, or one per row)."""
        values = np.broadcast_to(np.asarray(coef, dtype=float), (self.m,))
        return Affine(
            np.concatenate([self.rows, np.arange(self.m)]),
            np.concatenate([self.cols, np.full(self.m, column)]),
            np.concatenate([self.vals, values]),
            self.offset,
        )

    def minus_multiple(self, per: Affine, factor: np.ndarray) -> Affine:
        """Row r minus ``factor_r x`` the one row ``per``."""
        k = len(per.vals)
        if k == 1:  # one column (1 - c): each row's new entry without repeat and tile, the same values
            rows = np.concatenate([self.rows, np.arange(self.m)])
            cols = np.concatenate([self.cols, np.full(self.m, per.cols[0])])
            vals = np.concatenate([self.vals, -factor * per.vals[0]])
        else:
            rows = np.concatenate([self.rows, np.repeat(np.arange(self.m), k)])
            cols = np.concatenate([self.cols, np.tile(per.cols, self.m)])
            vals = np.concatenate([self.vals, -np.repeat(factor, k) * np.tile(per.vals, self.m)])
        offset = self.offset - factor * per.offset[0]
        if k and _shares_a_column(per.cols, self.cols):  # e.g. the cash row has c, and so has 1 - c
            rows, cols, vals = _merged(rows, cols, vals, rows * (int(cols.max()) + SCALARS + 1) + (cols + SCALARS))
        return Affine(rows, cols, vals, offset)

    def evaluate(self, z: np.ndarray) -> np.ndarray:
        """The rows at ``z = [buy, sell, c, tau, nu, T, G]`` (see :func:`trade_vector`)."""
        n = (len(z) - SCALARS) // 2
        if self.nnz >= _SPARSE_ROWS and (self.dense is not None or self.dense_rows):
            return self._by_blocks(z, n)
        if self.vals.size >= _SPARSE_ROWS:
            return np.asarray(self._matrix(n) @ z + self.offset)
        values = np.bincount(self.rows, weights=self.vals * z[self.places(n)], minlength=self.m)
        return np.asarray(values + self.offset)

    def _by_blocks(self, z: np.ndarray, n: int) -> np.ndarray:
        """:meth:`evaluate` with the :meth:`weights_dense` blocks as matrix products on
        ``buy - sell`` and the other rows from their few triplets (kept)."""
        rows, places, vals = self.rest(n)
        out = np.bincount(rows, weights=vals * z[places], minlength=self.m) + self.offset
        trade = z[:n] - z[n : 2 * n]
        for first, matrix in self.blocks:
            out[first : first + len(matrix)] += matrix @ trade
        return np.asarray(out)

    @property
    def blocks(self) -> list[tuple[int, np.ndarray]]:
        """``(first row, M)`` of every :meth:`weights_dense` block of these rows (themselves or stacked)."""
        return [(0, self.dense)] if self.dense is not None else self.dense_rows

    def rest(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The triplets outside the :attr:`blocks` (rows, places in ``z``, values), kept: the
        evaluation and the whole-share Gram entries read them instead of the n^2 block entries."""
        rest: tuple[np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_rest")
        deferred = self.__dict__.get("_deferred")
        if rest is None and deferred is not None:  # the parts outside the blocks, their triplets only
            rest = deferred.rest(n)
            self.__dict__["_rest"] = rest  # frozen dataclass: kept beside the fields
        if rest is None:
            dense = np.zeros(self.m, dtype=bool)
            for first, matrix in self.blocks:
                dense[first : first + len(matrix)] = True
            keep = ~dense[self.rows]
            rest = (self.rows[keep], column(self.cols[keep], n), self.vals[keep])
            self.__dict__["_rest"] = rest  # frozen dataclass: kept beside the fields
        return rest

    def places(self, n: int) -> np.ndarray:
        """:func:`column` of the column codes for ``n`` assets (kept: the descent evaluates the
        same rows at every step)."""
        kept = self.__dict__.get("_places")
        if kept is None or kept[0] != n:
            kept = (n, column(self.cols, n))
            self.__dict__["_places"] = kept  # frozen dataclass: kept beside the fields
        places: np.ndarray = kept[1]
        return places

    def _matrix(self, n: int) -> sparse.csr_matrix:
        """The rows as a sparse matrix over ``z`` (kept: a dense covariance's root is evaluated at
        every step of the whole-share descent)."""
        kept = self.__dict__.get("_csr")
        if kept is None or kept.shape[1] != 2 * n + SCALARS:
            kept = sparse.csr_matrix((self.vals, (self.rows, self.places(n))), shape=(self.m, 2 * n + SCALARS))
            self.__dict__["_csr"] = kept  # frozen dataclass: kept beside the fields
        return kept


def _stacked_triplets(affines: Sequence[Affine]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` (shifted to each one's first row), ``cols`` and ``vals`` of ``affines`` one after the other."""
    base = np.cumsum([0] + [a.m for a in affines])
    return (
        np.concatenate([a.rows + b for a, b in zip(affines, base, strict=False)]),
        np.concatenate([a.cols for a in affines]),
        np.concatenate([a.vals for a in affines]),
    )


@dataclass(frozen=True)
class _Deferred:
    """How to write deferred triplets (:meth:`Affine.__getattr__`): from one dense matrix ``M``
    (``M`` on buy, ``-M`` on sell) or as the stack of ``parts``."""

    parts: tuple[Any, ...]  # (M,) or the stacked Affines

    @property
    def nnz(self) -> int:
        if len(self.parts) == 1 and isinstance(self.parts[0], np.ndarray):
            return 2 * self.parts[0].size
        return sum(a.nnz for a in self.parts)

    def triplets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not (len(self.parts) == 1 and isinstance(self.parts[0], np.ndarray)):
            return _stacked_triplets(self.parts)
        matrix = self.parts[0]
        m, n = matrix.shape
        # Written in place, buy's entries then sell's: no intermediate n^2 arrays to concatenate.
        rows, cols, vals = np.empty((2, m, n), dtype=np.int64), np.empty((2, m, n), dtype=np.int64), np.empty((2, m, n))
        rows[:] = np.arange(m)[:, None]
        cols[0], cols[1] = np.arange(n), np.arange(n, 2 * n)
        vals[0] = matrix
        np.negative(matrix, out=vals[1])
        return rows.ravel(), cols.ravel(), vals.ravel()

    def rest(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`Affine.rest` of the stack: each part's triplets outside its dense blocks."""
        if len(self.parts) == 1 and isinstance(self.parts[0], np.ndarray):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        base = np.cumsum([0] + [a.m for a in self.parts])
        pieces = [a.rest(n) if a.blocks else (a.rows, column(a.cols, n), a.vals) for a in self.parts]
        return (
            np.concatenate([rows + b for (rows, _, _), b in zip(pieces, base, strict=False)]),
            np.concatenate([places for _, places, _ in pieces]),
            np.concatenate([vals for _, _, vals in pieces]),
        )


def _merged(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, ...]:
    """The entries of equal ``key`` summed, in key order (``np.unique`` then ``np.bincount``; a few
    entries, the cash row's, in Python: the same order and sums, without np.unique's overhead)."""
    if not 0 < len(key) <= 32:
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return rows[first], cols[first], np.bincount(inverse, weights=vals, minlength=len(unique))
    keys, values = key.tolist(), vals.tolist()
    firsts: list[int] = []
    sums: list[float] = []
    for j in sorted(range(len(keys)), key=keys.__getitem__):  # stable, as np.unique's mergesort
        if firsts and keys[firsts[-1]] == keys[j]:
            sums[-1] += values[j]
        else:
            firsts.append(j)
            sums.append(0.0 + values[j])  # bincount's sum starts at 0.0 (-0.0 becomes 0.0)
    first = np.array(firsts, dtype=np.intp)
    return rows[first], cols[first], np.array(sums, dtype=float)


def _shares_a_column(few: np.ndarray, cols: np.ndarray) -> bool:
    """Whether any of ``few`` is in ``cols`` (``np.isin`` without its set machinery, for a few
    columns: a ratio's denominator has one or two)."""
    if len(few) > 4:
        return bool(np.isin(few, cols).any())
    return any(bool((cols == c).any()) for c in few.tolist())


@dataclass(frozen=True)
class LimitGroup:
    """``lower <= rows(z) / per(z) <= upper`` for constraint group ``name`` (``per`` None: 1).

    ``members`` labels each row (the asset or sector it speaks of) so a breach or a conflict can be
    named; ``unit`` and ``show`` (a factor per row, from row units to ``unit``) say how the compliance
    table and the diagnosis state amounts. A ratio group is one-sided (its ``lower`` or its
    ``upper`` is all infinite) so that it linearises to one row per member.
    """

    name: str
    rows: Affine
    lower: np.ndarray
    upper: np.ndarray
    members: tuple[str, ...]
    unit: str = "weight"
    per: Affine | None = None
    show: np.ndarray | float = 1.0
    per_asset: bool = False  # members are assets: the compliance table shows the tightest one
    _linear: dict[float, tuple[Affine, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )  # linear(backoff), kept: a rebalance's re-solves reuse their groups; never passed on by replace

    @property
    def separable(self) -> bool:
        """Whether every row touches the buy or sell of one asset only (a bound on that asset's
        candidates in the whole-share step), not a scalar column or several assets. Kept: every
        stage asks it of every group, and a group is never changed."""
        kept = self.__dict__.get("_separable")
        if kept is None:
            kept = self.per is None and not (self.rows.cols < 0).any()
            kept = kept and bool((np.bincount(self.rows.rows, minlength=self.rows.m) <= 1).all())
            self.__dict__["_separable"] = kept  # frozen dataclass: kept beside the fields
        return bool(kept)

    def linear(self, backoff: float = 0.0) -> tuple[Affine, np.ndarray, np.ndarray]:
        """``(rows, lower, upper)`` of the linear rows the solvers take; coupled rows are tightened by
        ``backoff`` (weight units) where their bound is finite, separable ones never (a trade bound
        of zero must stay exactly zero)."""
        if backoff in self._linear:
            return self._linear[backoff]
        out = self._linearise(backoff)
        self._linear[backoff] = out
        return out

    def _linearise(self, backoff: float) -> tuple[Affine, np.ndarray, np.ndarray]:
        give = 0.0 if self.separable else backoff
        if self.per is None:
            return self.rows, self.lower + give, self.upper - give
        if np.isfinite(self.upper).any():
            return (
                self.rows.minus_multiple(self.per, self.upper),
                np.full(self.rows.m, -np.inf),
                -np.full(self.rows.m, give),
            )
        return self.rows.minus_multiple(self.per, self.lower), np.full(self.rows.m, give), np.full(self.rows.m, np.inf)

    def value(self, z: np.ndarray) -> np.ndarray:
        """``rows / per`` at ``z``, in row units (where ``per <= 0`` the bound itself: vacuous)."""
        rows = self.rows.evaluate(z)
        if self.per is None:
            return rows
        per = float(self.per.evaluate(z)[0])
        if per <= 0:
            return np.where(np.isfinite(self.lower), self.lower, self.upper)
        return rows / per


@dataclass(frozen=True)
class ImpactForm:
    """A convex market-impact cost added to ``c``: ``k o |u|^{3/2}`` exactly (``power``, a power
    cone) or the least-squares fit ``a |u| + b u^2`` over the trades an asset may need (``fit``,
    second-order cone). Per asset, in ``V_ref`` units."""

    kind: str  # "power" or "fit"
    first: np.ndarray  # k (power) or a (fit)
    second: np.ndarray | None = None  # b (fit)


@dataclass(frozen=True)
class TaxForm:
    """The tax lots that define ``T`` and ``G``: selling ``q_l`` (``V_ref`` units, ``0 <= q_l <=
    cap_l``) from lot ``l`` of asset ``owner_l`` realises the gain ``gain_l q_l`` and the tax
    ``tax_l q_l``; each asset's sell is the sum of its lots' (``sell_i = sum_{l of i} q_l``),
    ``T = tax'q`` and ``G = gain'q``. Linear: a convex piece once each asset's side is fixed (a
    loss lot's negative tax would otherwise pay for selling and buying back the same asset)."""

    owner: np.ndarray
    cap: np.ndarray
    tax: np.ndarray
    gain: np.ndarray
    long: np.ndarray | None = None  # netting: each lot's term (long-term), for the region's rows
    rows: np.ndarray | None = None
    """Netting: the region's rows ``a S + b L <= bound`` (k x 3, ``V_ref`` units) on this
    rebalance's net short- and long-term gains ``S``, ``L``; the tax is linear in the region (its
    rates in ``tax``). Solved natively: the rows ride the lot ladder's segments (linear in the
    sells, as the tax and gain columns are); through cvxpy (one variable per lot) when the ladder's
    climb finds no point."""
    views: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What a consumer derives from the form, kept with it (the native QP's ``Ladder``): the solves
    of one rebalance share the form, and so its views."""


@dataclass
class Description:
    """What one term states: its objective and its limits, as data (see the module docstring).

    The objective is ``sum (s o (w - b))^2`` over ``weight_squares``, ``(r (z_col + o))^2`` over
    ``scalar_squares``, ``||F z + f||^2`` over ``low_rank``, ``linear`` (one row) plus
    ``cost_weight x c`` and ``count x`` the number of trades. ``surrogate`` is a linear stand-in the
    continuous solve uses for the count (re-weighted L1); the discrete step and every comparison
    of whole-share answers price the true count instead. ``cost`` are the per-asset rates that
    define ``c >= rate'(buy + sell)``; ``impact`` the convex impact cost added to ``c`` (not a QP: a
    request with it is solved through cvxpy and Clarabel); ``tax`` the lots that define the tax and
    gain columns (the native QP's lot ladder, or cvxpy with one variable per lot).
    """

    weight_squares: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)
    scalar_squares: list[tuple[int, float, float]] = field(default_factory=list)
    low_rank: list[Affine] = field(default_factory=list)
    linear: Affine | None = None
    surrogate: Affine | None = None
    cost_weight: float = 0.0
    count: float = 0.0
    cost: np.ndarray | None = None
    impact: ImpactForm | None = None
    tax: TaxForm | None = None
    limits: list[LimitGroup] = field(default_factory=list)
