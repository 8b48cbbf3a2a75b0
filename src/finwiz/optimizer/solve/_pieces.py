"""The stacked arrays as the cvxpy problem's Parameters: the same walk (:func:`_pieces`) builds the
problem, keys its cache (:func:`_structure`) and sets its values (:func:`_values`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import COST, SCALARS, Affine, ImpactForm, column
from finwiz.optimizer.solve._stacked import Stacked

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__: list[str] = []  # private helpers of the assembler


def _signature(a: Affine) -> tuple[Any, ...]:
    return (a.m, hash(a.rows.tobytes()), hash(a.cols.tobytes()))


def _pieces(s: Stacked) -> list[tuple[str, Any]]:
    """What becomes a Parameter, in order: the same walk builds the problem and sets its values."""
    out: list[tuple[str, Any]] = [] if s.tax is None else [("tax", s.tax)]  # first: z is made of it
    out += [("squares", s.squares), ("linear", s.linear), ("rate", s.rate)]
    for form in s.impact:
        out.append(("impact", form))
    for g in s.groups:
        out.append(("limit", (g, *g.linear(s.backoff), bool(s.impact))))
    return out


def _structure(s: Stacked) -> tuple[Any, ...]:
    key: list[Any] = [s.n]
    for kind, piece in _pieces(s):
        if kind == "squares":
            key.append(_signature(piece))
        elif kind == "tax":  # constants of the problem (see _lots)
            arrays = (piece.owner, piece.cap, piece.tax, piece.gain, *(() if piece.rows is None else (piece.rows,)))
            key.append(hash(b"".join(a.tobytes() for a in arrays)))
        elif kind == "impact":
            key.append((piece.kind, float(s.linear[2 * s.n])))  # the cost's price: a constant (see build)
        elif kind == "limit":
            g, rows, lower, upper, impact = piece
            key.append((g.name, _signature(rows), np.isfinite(lower).tobytes(), np.isfinite(upper).tobytes()))
            if impact:  # the rows' cost coefficients are constants of the problem (see build)
                key.append(hash(_cost_coefficients(rows).tobytes()))
    return tuple(key)


def _values(kind: str, piece: Any) -> list[np.ndarray]:
    """The Parameter values of one piece, in the order :func:`_expression` creates them."""
    if kind == "squares":
        return [piece.vals, piece.offset]
    if kind in ("linear", "rate"):
        return [piece]
    if kind == "tax":
        return []
    if kind == "impact":
        if piece.kind == "power":
            return [piece.first / _POWER_SCALE**1.5]
        return [piece.first, np.sqrt(piece.second)]
    _, rows, lower, upper, _ = piece
    return [rows.vals, rows.offset, lower[np.isfinite(lower)], upper[np.isfinite(upper)]]


def _cost_coefficients(rows: Affine) -> np.ndarray:
    """Each row's coefficient on the cost column ``c``."""
    on_cost = rows.cols == COST
    return np.bincount(rows.rows[on_cost], weights=rows.vals[on_cost], minlength=rows.m)


def _rows(a: Affine, z: cp.Expression, vals: cp.Parameter, offset: cp.Parameter) -> cp.Expression:
    """``A z + b`` from triplets: ``S @ (vals o z[cols]) + offset``."""
    n = (z.shape[0] - SCALARS) // 2
    if len(a.vals) == 0:
        return offset
    pattern = sparse.csr_matrix((np.ones(len(a.rows)), (a.rows, np.arange(len(a.rows)))), shape=(a.m, len(a.rows)))
    return pattern @ cp.multiply(vals, z[column(a.cols, n)]) + offset


_POWER_SCALE = 100.0
"""Trades enter the power cone in hundredths of V_ref (k u^1.5 = k / 1000 (100 u)^1.5): trades of
1e-4..1e-2 made Clarabel stop "almost solved" at any tolerance on the 431-asset set."""


def _impact(form: ImpactForm, traded: cp.Expression, params: list[cp.Parameter]) -> cp.Expression:
    first = cp.Parameter(len(form.first), nonneg=True, name=f"impact_{form.kind}")
    params.append(first)
    if form.kind == "power":
        return first @ cp.power(_POWER_SCALE * traded, 1.5)
    root = cp.Parameter(len(form.first), nonneg=True, name="impact_root_b")
    params.append(root)
    return first @ traded + cp.sum_squares(cp.multiply(root, traded))
