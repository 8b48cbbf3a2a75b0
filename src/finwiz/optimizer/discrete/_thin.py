"""The Gram entries of thin squared rows (``_pricing._gram_entries``) read off their CSC's own entries.

Where every column of ``S`` holds at most one entry (a diagonal risk: each asset's own row, a cash
row on the scalar columns), each Gram sum has one product besides the zeros a dense copy adds: the
same float however the sum runs (einsum may fuse a multiply-add: two terms could round otherwise).
The dense copy and its einsums (a 432 x 867 block at 431 assets, ~0.24 ms of a cold request) give
nothing the entries do not.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS


def thin_gram_entries(s: sparse.csc_array, n: int) -> tuple[np.ndarray, ...] | None:
    """Column norms, each asset's buy-sell product, the buy and sell columns' products with the
    scalar columns and theirs with each other, as the dense computation gives them; None unless
    each column holds at most one entry and one row touches the scalar columns (the dense
    computation's own outer products then)."""
    m, width = s.shape
    if width != 2 * n + SCALARS or not s.has_canonical_format:
        return None
    has = np.diff(s.indptr)
    if has.max(initial=0) > 1:
        return None
    has = has.astype(bool)
    first = np.minimum(s.indptr[:-1], max(s.nnz - 1, 0))  # each column's entry, where it has one
    row = np.where(has, s.indices.take(first) if s.nnz else 0, -1)
    value = np.where(has, s.data.take(first) if s.nnz else 0.0, 0.0) + 0.0  # toarray's: a stored -0.0 added to +0
    scalar_rows = np.unique(row[2 * n :][value[2 * n :] != 0])
    if scalar_rows.size != 1:
        return None
    scalars = np.zeros((m, SCALARS))
    scalars[row[2 * n :][has[2 * n :]], np.flatnonzero(has[2 * n :])] = value[2 * n :][has[2 * n :]]
    col_norm = np.where(has, value * value, 0.0)
    same = has[:n] & has[n : 2 * n] & (row[:n] == row[n : 2 * n])  # an asset's buy and sell in one row
    g_bs = np.where(same, value[:n] * value[n : 2 * n], 0.0) + 0.0  # einsum's sum from +0: never -0.0
    dense_row = np.where(row == scalar_rows[0], value, 0.0)  # the scalar row of S, dense
    g_bx = np.multiply.outer(dense_row[:n], scalars[scalar_rows[0]])
    g_sx = np.multiply.outer(dense_row[n : 2 * n], scalars[scalar_rows[0]])
    return col_norm, g_bs, g_bx, g_sx, scalars.T @ scalars
