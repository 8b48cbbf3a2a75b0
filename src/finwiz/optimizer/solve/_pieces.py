"""The stacked arrays as the cvxpy problem's Parameters: the same walk (:func:`_pieces`) builds the
problem (each piece by :func:`_add_piece`, the tax lots by :func:`_lots`, the diagnosis's elastic
goal by :func:`_elastic`), keys its cache (:func:`_structure`) and sets its values (:func:`_values`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import COST, SCALARS, Affine, ImpactForm, LimitGroup, TaxForm, column
from finwiz.optimizer.describe._terms import Limit
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


@dataclass
class _Pieces:
    """The cvxpy pieces of one problem as they are built: objective and cost parts, limits."""

    z: cp.Expression
    traded: cp.Expression
    params: list[cp.Parameter] = field(default_factory=list)
    objective: list[cp.Expression] = field(default_factory=list)
    costs: list[cp.Expression] = field(default_factory=list)
    impacts: list[cp.Expression] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    groups: dict[str, LimitGroup] = field(default_factory=dict)

    total: cp.Variable | None = None
    epigraph: list[cp.Constraint] = field(default_factory=list)

    def impact_total(self) -> cp.Variable:
        """One scalar ``m >= sum of the impact cones`` that the rows with a cost coefficient read.
        Written into every such row, the sum put a dense row of every asset's cone into each (a
        position cap on all assets: an n x n dense block, slow and "optimal_inaccurate" under
        Clarabel); the rows only get stricter as ``m`` grows, so the epigraph is exact."""
        if self.total is None:
            self.total = cp.Variable(nonneg=True, name="impact_total")
            self.epigraph.append(self.total >= cp.sum(cp.hstack(self.impacts)))
        return self.total

    def new(self, size: int, name: str) -> cp.Parameter:
        param = cp.Parameter(size, name=name)
        self.params.append(param)
        return param


def _elastic(
    limits: Sequence[Limit], slacks: dict[str, cp.Variable], elastic: list[tuple[str, cp.Constraint]]
) -> cp.Minimize:
    """The diagnosis's goal: each limit group's rows relaxed by one slack per group (into
    ``slacks`` and ``elastic``), the slacks' sum minimised."""
    for limit in limits:
        if limit.name not in slacks:
            slacks[limit.name] = cp.Variable(nonneg=True, name=f"slack_{limit.name}")
        elastic.append((limit.name, limit.elastic(slacks[limit.name])))
    return cp.Minimize(cp.sum(cp.hstack(list(slacks.values()))) if slacks else cp.Constant(0.0))


def _lots(
    form: TaxForm, q: cp.Variable, sell: cp.Expression, n: int, constraints: list[cp.Constraint]
) -> tuple[cp.Expression, cp.Expression]:
    """The tax and gain columns from one variable per lot: ``0 <= q <= cap``, each asset's sell the
    sum of its lots' (``TaxForm``). The lots' numbers are constants, not Parameters (the objective's
    linear Parameter times a Parameter would not be DPP); they are part of the cache key, and the
    solves of one rebalance share them."""
    size = len(form.owner)
    of_asset = sparse.csr_matrix((np.ones(size), (form.owner, np.arange(size))), shape=(n, size))
    constraints += [q <= form.cap, of_asset @ q == sell]
    if form.rows is not None and form.long is not None:  # a netting region (see ``TaxForm.rows``)
        nets = cp.hstack([(form.gain * ~form.long) @ q, (form.gain * form.long) @ q])
        constraints.append(form.rows[:, :2] @ nets <= form.rows[:, 2])
    return form.tax @ q, form.gain @ q


def _add_piece(pieces: _Pieces, kind: str, piece: Any, stacked: Stacked) -> None:
    """One described piece as cvxpy, its arrays as Parameters (in :func:`_values` order).

    Market impact is convex in the trades. Written as ``c >= ... + impact`` with ``c`` priced
    linearly, Clarabel stops "almost solved" (its primal residual grows in the last iterations:
    measured on the 431-asset set, fit and power cone alike); so ``c`` holds the linear costs, and
    the impact enters the objective at the cost's price and every row with a cost coefficient
    where it keeps the row convex (elsewhere leaving it out only makes the row stricter).
    """
    n, z, new = stacked.n, pieces.z, pieces.new
    if kind == "squares":
        vals, off = new(len(piece.vals), "square_vals"), new(piece.m, "square_offset")
        if piece.m:
            pieces.objective.append(cp.sum_squares(_rows(piece, z, vals, off)))
    elif kind == "linear":
        pieces.objective.append(new(2 * n + SCALARS, "linear") @ z)
    elif kind == "rate":
        pieces.costs.append(new(n, "rate") @ pieces.traded)
    elif kind == "impact":
        pieces.impacts.append(_impact(piece, pieces.traded, pieces.params))
        # Priced like the cost: a constant (a Parameter times Parameters is not DPP).
        pieces.objective.append(float(stacked.linear[2 * n]) * pieces.impacts[-1])
    else:
        g, rows, lower, upper, has_impact = piece
        pieces.groups.setdefault(g.name, g)
        expr = _rows(rows, z, new(len(rows.vals), f"{g.name}_vals"), new(rows.m, f"{g.name}_offset"))
        low, up = np.flatnonzero(np.isfinite(lower)), np.flatnonzero(np.isfinite(upper))
        low_p, up_p = new(low.size, f"{g.name}_lower"), new(up.size, f"{g.name}_upper")
        low_expr = expr[low] if low.size < rows.m else expr
        up_expr = expr[up] if up.size < rows.m else expr
        alpha = _cost_coefficients(rows) if has_impact else np.zeros(rows.m)
        if alpha.any():
            # Constants, not Parameters: a Parameter times the impact (itself made of
            # Parameters) is not DPP. They are caps and floors, alike across a model's accounts.
            impact = pieces.impact_total()
            low_expr = low_expr - cp.multiply(np.maximum(-alpha, 0.0)[low], impact)
            up_expr = up_expr + cp.multiply(np.maximum(alpha, 0.0)[up], impact)
        if low.size:
            pieces.limits.append(Limit(g.name, low_expr, ">=", low_p))
        if up.size:
            pieces.limits.append(Limit(g.name, up_expr, "<=", up_p))
