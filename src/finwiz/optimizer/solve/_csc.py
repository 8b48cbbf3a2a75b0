"""Triplets to CSC storage, the conversion order kept per sparsity pattern (the native QP's ``A``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["csc"]


@dataclass(frozen=True, eq=False)
class _Pattern:
    """Where each triplet lands in CSC storage, for one sparsity pattern."""

    rows: np.ndarray
    cols: np.ndarray
    order: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


_patterns: dict[tuple[int, int, int], _Pattern] = {}


def csc(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sparse.csc_matrix:
    """``csc_matrix((vals, (rows, cols)))`` for triplets without duplicates; the conversion order is
    kept per pattern, so a request of a known structure only permutes its values (scipy's COO
    conversion and checks cost more than the rest of the build at 100 assets)."""
    key = (shape[0], shape[1], len(rows))
    pattern = _patterns.get(key)
    if pattern is None or not (np.array_equal(pattern.rows, rows) and np.array_equal(pattern.cols, cols)):
        order = np.lexsort((rows, cols))
        sorted_cols, sorted_rows = cols[order], rows[order]
        same = (np.diff(sorted_cols) == 0) & (np.diff(sorted_rows) == 0)
        if same.any():  # duplicates are summed by scipy; never produced by the built-in terms
            return sparse.csc_matrix((vals, (rows, cols)), shape=shape)
        indptr = np.searchsorted(sorted_cols, np.arange(shape[1] + 1)).astype(np.int32)
        pattern = _Pattern(rows.copy(), cols.copy(), order, sorted_rows.astype(np.int32), indptr)
        _patterns[key] = pattern
    return sparse.csc_matrix((vals[pattern.order], pattern.indices, pattern.indptr), shape=shape, copy=False)
