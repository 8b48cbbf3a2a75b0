"""A taxable account's native QP on its lots' segments (``_qp.Ladder``): the tax and gain
folded into the sells of each asset's segment, and a netting region's rows on them
(``_qp_build.build_qp`` applies them to the segment-free part it keeps per model)."""

from __future__ import annotations

import dataclasses

import numpy as np

from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.solve._qp import Ladder, _TaxTerms

__all__ = ["fold", "region_rows"]


def fold(
    lines: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float],
    q: np.ndarray,
    const: float,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, _TaxTerms]:
    """With ``lines`` (``Ladder.rows``: the segments' slopes and constants) ``T = a'sell + t0`` and
    ``G = b'sell + g0``: put them into the objective (``q``, in place, and the constant) and into
    every row that has them (``lower``/``upper`` in place), so that the QP has no free T and G
    columns (Clarabel stopped "almost solved" on them when nothing priced T). Returns the new
    triplets, the constant and what was folded."""
    _, _, slope_t, slope_g, t0, g0 = lines
    n = len(slope_t)
    price = q[2 * n + 3 : 2 * n + 5].copy()
    q[n : 2 * n] += price[0] * slope_t + price[1] * slope_g
    const += float(price[0] * t0 + price[1] * g0)
    q[2 * n + 3 : 2 * n + 5] = 0.0
    held: list[tuple[np.ndarray, np.ndarray]] = []
    new_rows, new_cols, new_vals = [rows], [cols], [vals]
    for col, slope, shift in ((2 * n + 3, slope_t, t0), (2 * n + 4, slope_g, g0)):
        on = (cols == col) & (rows >= 2 * n + SCALARS)  # not the column's own bound row (it stays at 0)
        at = np.flatnonzero(on)
        held.append((rows[at], vals[at]))
        for r, v in zip(rows[at], vals[at], strict=True):
            new_rows.append(np.full(n, r))
            new_cols.append(n + np.arange(n))
            new_vals.append(v * slope)
            lower[r] -= v * shift
            upper[r] -= v * shift
        vals = np.where(on, 0.0, vals)
        new_vals[0] = vals
    return (
        np.concatenate(new_rows),
        np.concatenate(new_cols),
        np.concatenate(new_vals),
        const,
        _TaxTerms(price, held[0], held[1]),
    )


def region_rows(
    ladder: Ladder,
    segments: np.ndarray,
    m: int,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    upper: np.ndarray,
    tax_terms: _TaxTerms,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _TaxTerms]:
    """A netting region's rows (the last ``k`` of ``m``, ``upper`` set in place) on the sells of
    ``segments``: every asset's entry stored, so the pattern does not depend on the segments."""
    assert ladder.region is not None
    coef, bound = ladder.region_rows(segments)
    k, n = coef.shape
    first = m - k
    upper[first:] = bound
    terms = dataclasses.replace(tax_terms, region_rows=np.arange(first, m), region=ladder.region[:, :2])
    return (
        np.concatenate([rows, np.repeat(np.arange(first, m), n)]),
        np.concatenate([cols, np.tile(n + np.arange(n), k)]),
        np.concatenate([vals, coef.ravel()]),
        terms,
    )
