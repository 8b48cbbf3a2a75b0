"""Triplets to CSC storage, the conversion order kept per sparsity pattern (the native QP's ``A``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from finwiz.optimizer._kept import kept

__all__ = ["csc", "majors", "pointers"]


@dataclass(frozen=True, eq=False)
class _Pattern:
    """Where each triplet lands in CSC storage, for one sparsity pattern (None order: it has
    duplicates, which scipy sums; never produced by the built-in terms)."""

    order: np.ndarray | None
    indices: np.ndarray
    indptr: np.ndarray


def _pattern(rows: np.ndarray, cols: np.ndarray, columns: int) -> _Pattern:
    order = np.lexsort((rows, cols))
    sorted_cols, sorted_rows = cols[order], rows[order]
    if ((np.diff(sorted_cols) == 0) & (np.diff(sorted_rows) == 0)).any():
        return _Pattern(None, sorted_rows, order)
    return _Pattern(order, sorted_rows.astype(np.int32), pointers(sorted_cols, columns).astype(np.int32))


def pointers(major: np.ndarray, size: int) -> np.ndarray:
    """A compressed matrix's ``indptr`` from its entries' major indices in order (a CSC's columns,
    a CSR's rows)."""
    return np.searchsorted(major, np.arange(size + 1))


def majors(indptr: np.ndarray) -> np.ndarray:
    """Each entry's major index (a CSC's column, a CSR's row) read off ``indptr``: :func:`pointers`' inverse."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def csc(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sparse.csc_matrix:
    """``csc_matrix((vals, (rows, cols)))``; the conversion order is kept per pattern (``_kept``),
    so a request of a known structure only permutes its values (scipy's COO conversion and checks
    cost more than the rest of the build at 100 assets)."""
    pattern = kept("csc", (rows, cols, np.array(shape)), lambda: _pattern(rows, cols, shape[1]))
    if pattern.order is None:
        return sparse.csc_matrix((vals, (rows, cols)), shape=shape)
    return sparse.csc_matrix((vals[pattern.order], pattern.indices, pattern.indptr), shape=shape, copy=False)
