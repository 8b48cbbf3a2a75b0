"""What a QP's own bounds prove before any solver runs: a row no point within the variables'
bounds can bring to its limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from finwiz.optimizer.solve._qp import NativeQP

__all__ = ["FEASIBILITY_TOLERANCE", "refuted_by_bounds"]

FEASIBILITY_TOLERANCE = 1e-7
"""Largest constraint residual (in weight units) accepted from a continuous solve."""


def refuted_by_bounds(qp: NativeQP) -> bool:
    """Whether some row of ``qp`` cannot reach its limits (by more than
    :data:`FEASIBILITY_TOLERANCE`) for any value of the variables within their own bounds (the
    ``trade_bounds`` rows, one variable each): then no point keeps every row. One pass of a
    presolve's activity bounds: far cheaper than a solver proving a variant infeasible."""
    name, first, end = qp.groups[0]
    bounds = sparse.csr_array(qp.A[first:end])
    if name != "trade_bounds" or np.any(np.diff(bounds.indptr) != 1):
        return False
    low, high = np.full(qp.A.shape[1], -np.inf), np.full(qp.A.shape[1], np.inf)
    value, col = bounds.data, bounds.indices
    with np.errstate(divide="ignore", invalid="ignore"):
        ends = qp.lower[first:end] / value, qp.upper[first:end] / value
    low[col] = np.where(value > 0, ends[0], ends[1])
    high[col] = np.where(value > 0, ends[1], ends[0])
    rows = sparse.csr_array(qp.A[end:])
    up, down = rows.maximum(0.0), rows.minimum(0.0)  # each row's positive and negative entries
    least = _activity(up, 1.0, low) + _activity(down, -1.0, high)
    most = _activity(up, 1.0, high) + _activity(down, -1.0, low)
    tolerance = FEASIBILITY_TOLERANCE
    return bool(np.any((least > qp.upper[end:] + tolerance) | (most < qp.lower[end:] - tolerance)))


def _activity(part: sparse.csr_array, sign: float, at: np.ndarray) -> np.ndarray:
    """``part @ at`` for entries of one ``sign`` and bounds ``at`` whose infinities have one sign:
    infinite in each row that touches one."""
    infinite = np.isinf(at)
    out = np.asarray(part @ np.where(infinite, 0.0, at))
    if infinite.any():
        touches = np.asarray(abs(part) @ infinite.astype(float)) > 0
        out[touches] = sign * float(np.sign(at[infinite][0])) * np.inf
    return out
