"""``P``'s storage for the native QP (``_qp_build``): its upper-triangle pattern per size, the last
``P`` of each size kept for the next request, and a dense block's upper triangle."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np
from scipy import sparse

__all__ = ["clear_kept_p"]


_last_p: OrderedDict[tuple[int, int], sparse.csc_matrix] = OrderedDict()
_last_p_lock = threading.Lock()


def _p_matrix(data: np.ndarray, n: int, nz: int) -> sparse.csc_matrix:
    """``P`` (no dense block) on :func:`_p_pattern` with ``data``: the last one of this size when
    its values are the same (a re-priced request's or a like account's usually are; scipy's
    constructor costs ~10x the compare), its values read-only as they are shared."""
    with _last_p_lock:
        last = _last_p.get((n, nz))
    if last is not None and np.array_equal(last.data, data):
        return last
    data.flags.writeable = False
    p_matrix = sparse.csc_matrix((data, *_p_pattern(n, nz)), shape=(nz, nz), copy=False)
    with _last_p_lock:
        _last_p[(n, nz)] = p_matrix
        _last_p.move_to_end((n, nz))
        while len(_last_p) > 16:
            _last_p.popitem(last=False)
    return p_matrix


def clear_kept_p() -> None:
    """Drop the kept ``P`` of every size (``clear_cache``: the next request builds its own)."""
    with _last_p_lock:
        _last_p.clear()


@functools.lru_cache(maxsize=16)
def _p_pattern(n: int, nz: int) -> tuple[np.ndarray, np.ndarray]:
    """``P``'s upper-triangle pattern (indices, indptr) without a dense block, column by column:
    buy_i (i,i); sell_i (i, n+i) and (n+i, n+i); then the diagonal of every scalar and aux column.
    Built once per size, read-only (every such ``P`` of that size shares it), in scipy's int32."""
    idx = np.arange(n, dtype=np.int32)
    indptr = np.concatenate([np.arange(n + 1), n + 2 * np.arange(1, n + 1), 3 * n + np.arange(1, nz - 2 * n + 1)])
    indices = np.concatenate([idx, np.column_stack([idx, idx + n]).ravel(), np.arange(2 * n, nz)])
    pattern = indices.astype(np.int32), indptr.astype(np.int32)
    for array in pattern:
        array.flags.writeable = False
    return pattern


def _upper_block(block: np.ndarray, first: int, nz: int) -> sparse.csc_matrix:
    """The upper triangle of the square ``block`` placed at ``(first, first)`` of an ``nz x nz``
    matrix, built as CSC directly (column ``j`` holds rows ``0..j``: no sort of n^2/2 triplets)."""
    n = len(block)
    cols, rows = np.tril_indices(n)  # by column, then row: CSC order of the upper triangle
    counts = np.concatenate([np.zeros(first + 1, dtype=np.int64), np.arange(1, n + 1), np.zeros(nz - first - n)])
    return sparse.csc_matrix((block[rows, cols], rows + first, np.cumsum(counts)), shape=(nz, nz))
