"""A taxable account's native QP on its lots' segments (``_qp.Ladder``): the tax and gain
folded into the sells of each asset's segment, and a netting region's rows on them
(``_qp_build.build_qp`` applies them to the segment-free part it keeps per model).

The matrix's pattern is the same at every segment (every sell's entry is stored in each row that
held ``T`` or ``G``, and in each region row): :class:`_Folding` keeps it per base, so a climb step
computes only the values (no triplets concatenated, no pattern digest, no conversion order)."""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from finwiz.optimizer._kept import kept
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.solve._csc import _Pattern, _pattern, csc
from finwiz.optimizer.solve._qp import Ladder, _TaxTerms

__all__ = ["on_segments"]

Triplets = tuple[np.ndarray, np.ndarray, np.ndarray]


def on_segments(
    triplets: Triplets,
    shape: tuple[int, int],
    ladder: Ladder,
    segments: np.ndarray,
    q: np.ndarray,
    const: float,
    lower: np.ndarray,
    upper: np.ndarray,
    cost_unit: float,
) -> tuple[float, sparse.csc_matrix, _TaxTerms]:
    """A base's ``triplets`` (``shape``: its ``A``'s) on ``segments``: with ``Ladder.rows``' lines
    ``T = a'sell + t0`` and ``G = b'sell + g0`` put into the objective (``q``, in place, and the
    constant) and into every row that has them, so that the QP has no free T and G columns
    (Clarabel stopped "almost solved" on them when nothing priced T); each sell from its segment's
    start and a netting region's rows on the sells (``lower`` and ``upper`` in place, every
    asset's entry stored); the cost column in ``cost_unit``. Returns the constant, ``A`` and what
    was folded."""
    n = len(segments)
    k = 0 if ladder.region is None else len(ladder.region)
    folding = _Folding.of(triplets, n, k, shape)
    lines = ladder.rows(segments)
    lower[n : 2 * n] = lines[0]
    vals, const, terms = folding.values(lines, q, const, lower, upper)
    if ladder.region is not None:
        coef, bound = ladder.region_rows(segments)
        first = shape[0] - k
        upper[first:] = bound
        terms = dataclasses.replace(terms, region_rows=np.arange(first, shape[0]), region=ladder.region[:, :2])
        vals = np.concatenate([vals, coef.ravel()])
    vals = np.where(folding.on_cost, vals * cost_unit, vals)  # ``_qp_rows.in_cost_unit``
    pattern = folding.pattern
    if pattern.order is None:
        return const, csc(folding.rows, folding.cols, vals, shape), terms
    data = vals[pattern.order]  # ``_csc.csc`` from its kept pattern, without the digest
    return const, sparse.csc_matrix((data, pattern.indices, pattern.indptr), shape=shape, copy=False), terms


_FOLDINGS: dict[int, _Folding] = {}
"""Each base's folding by the id of its rows array, dropped with the array (a weak reference:
nothing here keeps a base alive)."""


@dataclass(frozen=True, eq=False)
class _Folding:
    """What folding ``T`` and ``G`` (and ``k`` region rows) does to one base's triplets, the same at
    every segment: the rows that held each (and their coefficients), the base's values with those
    entries at 0, the folded pattern and its CSC conversion order."""

    base: tuple[weakref.ref[np.ndarray], ...]
    n: int
    k: int
    shape: tuple[int, int]
    held: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    zeroed: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    on_cost: np.ndarray
    pattern: _Pattern

    @classmethod
    def of(cls, triplets: Triplets, n: int, k: int, shape: tuple[int, int]) -> _Folding:
        """The folding of a base's ``triplets`` (never modified in place) for ``n`` assets and ``k``
        region rows of ``shape``'s matrix, kept per rows array."""
        key = id(triplets[0])
        kept_one = _FOLDINGS.get(key)
        if kept_one is not None and kept_one.fits(triplets, n, k, shape):
            return kept_one
        made = cls._made(*triplets, n, k, shape)
        if key not in _FOLDINGS:
            weakref.finalize(triplets[0], _FOLDINGS.pop, key, None)
        _FOLDINGS[key] = made
        return made

    @classmethod
    def _made(
        cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, k: int, shape: tuple[int, int]
    ) -> _Folding:
        new_rows, new_cols, held, on_either = [rows], [cols], [], np.zeros(len(cols), bool)
        for col in (2 * n + 3, 2 * n + 4):
            on = (cols == col) & (rows >= 2 * n + SCALARS)  # not the column's own bound row (it stays at 0)
            at = np.flatnonzero(on)
            held.append((rows[at], vals[at]))
            for r in rows[at].tolist():
                new_rows.append(np.full(n, r))
                new_cols.append(n + np.arange(n))
            on_either |= on
        if k:
            first = shape[0] - k
            new_rows.append(np.repeat(np.arange(first, shape[0]), n))
            new_cols.append(np.tile(n + np.arange(n), k))
        all_rows, all_cols = np.concatenate(new_rows), np.concatenate(new_cols)
        key = (all_rows, all_cols, np.array(shape))
        pattern = kept("csc", key, lambda: _pattern(all_rows, all_cols, shape[1]))
        return cls(
            base=(weakref.ref(rows), weakref.ref(cols), weakref.ref(vals)),
            n=n,
            k=k,
            shape=shape,
            held=(held[0], held[1]),
            zeroed=np.where(on_either, 0.0, vals),
            rows=all_rows,
            cols=all_cols,
            on_cost=all_cols == 2 * n,
            pattern=pattern,
        )

    def fits(self, triplets: Triplets, n: int, k: int, shape: tuple[int, int]) -> bool:
        """Whether it is the folding of these very triplets for ``n`` assets, ``k`` region rows, ``shape``."""
        same = all(a() is b for a, b in zip(self.base, triplets, strict=True))
        return same and (self.n, self.k, self.shape) == (n, k, shape)

    def values(
        self,
        lines: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float],
        q: np.ndarray,
        const: float,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> tuple[np.ndarray, float, _TaxTerms]:
        """The folded values at ``lines`` (the region rows' not included), the constant and what
        was folded; ``q``, ``lower`` and ``upper`` in place (see :func:`on_segments`)."""
        _, _, slope_t, slope_g, t0, g0 = lines
        n = self.n
        price = q[2 * n + 3 : 2 * n + 5].copy()
        q[n : 2 * n] += price[0] * slope_t + price[1] * slope_g
        const += float(price[0] * t0 + price[1] * g0)
        q[2 * n + 3 : 2 * n + 5] = 0.0
        new_vals = [self.zeroed]
        for (rows, vals), slope, shift in zip(self.held, (slope_t, slope_g), (t0, g0), strict=True):
            for r, v in zip(rows, vals, strict=True):
                new_vals.append(v * slope)
                lower[r] -= v * shift
                upper[r] -= v * shift
        return np.concatenate(new_vals), const, _TaxTerms(price, self.held[0], self.held[1])
