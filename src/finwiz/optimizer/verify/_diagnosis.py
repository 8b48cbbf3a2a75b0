"""Why a request is infeasible: an elastic re-solve names the conflicting constraint groups.

The elastic problem is derived from the model's one description (``_assembler``): every limit
group gets one non-negative slack and the sum of slacks is minimised. The groups whose rows carry
non-zero dual multipliers at that optimum form a Farkas certificate of the conflict (together they
cannot hold); for each, a second elastic solve in which only that group may give measures how much
it alone would have to give. Groups whose give is below solver noise are left out; the member
(asset or sector) whose row carries the largest multiplier is named; every amount is stated as a
fraction of the value before trading and in currency (the linear rows are in ``V_ref`` units).

When the whole-share step finds no admissible choice although the continuous model had a solution,
:func:`whole_share_refusal` checks that solution before blaming the share grid: the continuous
model's cost variable ``c`` only has to be *at least* the trades' costs, and a limit that a smaller
book helps (a position floor: ``w_i / (1 - c) >= floor``) can be met by a ``c`` above any real cost
-- a phantom cost. Then the elastic problem is solved again with ``c`` held to the real cost of that
solution's trades, and its conflict (e.g. a floor on an asset ``no_buy`` forbids buying) is the
explanation; only a solution whose costs are real lets the share grid take the blame.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError
from finwiz.optimizer.describe._data import FRACTIONAL_LOT, ProblemData
from finwiz.optimizer.solve._assembler import AssembledProblem, Model, assemble

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = ["conflict", "explain_infeasibility", "whole_share_refusal"]

_TOL = 1e-7
"""Duals and gives below this are solver noise (weight units): ``long_only must give 5.9e-10``
says nothing a portfolio manager can act on."""


def _solve(problem: cp.Problem) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            problem.solve(solver="CLARABEL")
        except cp.error.SolverError:
            return False
    return problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)


def explain_infeasibility(model: Model) -> InfeasibleRebalanceError:
    """Build the error for an infeasible request (does not raise it)."""
    conflicts = _conflicts(model)
    if conflicts is None:
        return InfeasibleRebalanceError([], "no trades satisfy the constraints (diagnosis did not converge)")
    return InfeasibleRebalanceError(conflicts)


def _conflicts(model: Model, max_cost: float | None = None) -> list[ConstraintConflict] | None:
    """The conflicting groups of the elastic problem (None: it did not solve); ``max_cost`` holds
    the cost variable to at most that (``V_ref`` units)."""
    data = model.data
    elastic = assemble(model, diagnose=True)
    with elastic.lock:
        elastic.set_values(model, model.stacked())
        problem = _capped(elastic, max_cost)
        if not _solve(problem):
            return None
        weight: dict[str, float] = {}
        member: dict[str, tuple[float, str]] = {}
        for name, constraint in elastic.elastic:
            dual = np.abs(np.atleast_1d(np.asarray(constraint.dual_value, dtype=float)))
            weight[name] = weight.get(name, 0.0) + float(dual.sum())
            group = elastic.groups.get(name)
            if group is not None and dual.size == group.rows.m and dual.size:
                r = int(np.argmax(dual))
                if dual[r] > member.get(name, (0.0, ""))[0]:
                    member[name] = (float(dual[r]), group.members[r])
        relaxed = {name: float(var.value) for name, var in elastic.slacks.items()}
        conflicts: list[ConstraintConflict] = []
        for name in elastic.slacks:
            if weight.get(name, 0.0) <= _TOL and relaxed.get(name, 0.0) <= _TOL:
                continue
            alone = _relax_only(problem, elastic.slacks, name)
            give = alone if alone is not None else relaxed.get(name, 0.0)
            if give <= _TOL:
                continue  # part of the certificate, but it need not move: noise
            who = member.get(name, (0.0, None))[1]
            detail = "; ".join(
                filter(
                    None, ["" if alone is not None else "cannot be resolved by this group alone", _cause(data, name)]
                )
            )
            conflicts.append(conflict(data, name, give, detail, who))
    conflicts.sort(key=lambda c: c.name)
    return conflicts


def _cause(data: ProblemData, name: str) -> str:
    """What keeps a gain budget from being met that the group's own name does not say: the loss
    lots the wash-sale rule keeps from sale (a loss budget with every loss lot withheld)."""
    lots = data.lots
    if name != "realized_gain" or lots is None:
        return ""
    withheld = [data.symbols[i] for i in np.flatnonzero(lots.withheld > 0)]
    if not withheld:
        return ""
    names = ", ".join(withheld[:5]) + (", ..." if len(withheld) > 5 else "")
    days = lots.settings.wash_sale_days
    return f"the wash-sale rule keeps the loss lots of {names} from sale: bought within {days} days"


def _capped(elastic: AssembledProblem, max_cost: float | None) -> cp.Problem:
    if max_cost is None:
        return elastic.problem
    return cp.Problem(elastic.problem.objective, [*elastic.problem.constraints, elastic.variables.cost <= max_cost])


def _real_cost(model: Model, trades: np.ndarray) -> float:
    """What the cost variable ``c`` stands for at net trades ``trades`` (``V_ref`` units): the
    rates' costs (market impact is not in ``c``: the assembler prices it in the objective and
    the rows it keeps convex, see ``_pieces._add_piece``)."""
    return float(model.stacked().rate @ np.abs(trades))


def whole_share_refusal(
    model: Model, buy: np.ndarray, sell: np.ndarray, cost: float, error: InfeasibleRebalanceError
) -> InfeasibleRebalanceError:
    """The error for a request whose continuous optimum ``(buy, sell, cost)`` has no admissible
    whole-share (or lot) neighbour; ``error`` is the whole-share step's, with its gives.

    If that optimum's cost variable exceeds the real cost of its trades by more than a cent, the
    request is checked again with the cost held to the real cost: a conflict there is the
    explanation (the share grid is not the cause). Otherwise the grid is, said for the mode in use:
    whole shares (allow fractional shares), or with fractional shares on the lot sizes and the
    minimum trade size (fractional shares are never suggested when they are on)."""
    data = model.data
    real = _real_cost(model, buy - sell)
    if model.user_terms or (cost - real) * data.ref_value <= _CENT:  # a user cost: not evaluated here
        return _grid_error(data, error.conflicts)
    conflicts = _conflicts(model, max_cost=real)
    if not conflicts:
        return _grid_error(data, error.conflicts)
    phantom = (cost - real) * data.ref_value
    return InfeasibleRebalanceError(
        conflicts,
        f"no trades satisfy the constraints at their real costs (the continuous optimum met them only by "
        f"counting {phantom:,.2f} in costs its trades do not have: costs shrink the book, which lifts a floor)",
    )


_CENT = 0.01  # currency: a cost variable within this of the real costs is the real costs


def _grid_error(data: ProblemData, conflicts: Sequence[ConstraintConflict]) -> InfeasibleRebalanceError:
    if not data.fractional:
        return InfeasibleRebalanceError(
            conflicts,
            "only whole shares make the request infeasible (fractional trades keep every limit at their real "
            "costs); allow fractional shares or loosen a limit",
        )
    lots = [f"{s} {lot:g}" for s, lot in zip(data.symbols, data.lot.tolist(), strict=True) if lot > FRACTIONAL_LOT]
    grid = []
    if lots:
        grid.append("the lot sizes (" + ", ".join(lots[:5]) + (", ..." if len(lots) > 5 else "") + " shares)")
    if data.min_trade_value > 0:
        grid.append(f"the minimum trade size ({data.min_trade_value:,.2f})")
    what = " and ".join(grid) or "trades in millionths of a share"
    on_grid = [
        dataclasses.replace(c, detail="on the trade grid") if c.detail == "with whole shares" else c for c in conflicts
    ]
    return InfeasibleRebalanceError(
        on_grid,
        f"only {what} make the request infeasible with fractional shares (trades off that grid keep every "
        f"limit at their real costs); loosen a limit{', a lot size' if lots else ''}"
        f"{' or the minimum trade size' if data.min_trade_value > 0 else ''}",
    )


def conflict(data: ProblemData, name: str, give: float, detail: str, member: str | None) -> ConstraintConflict:
    """Group ``name`` must give ``give`` (weight units of V_ref, as the linear rows are): stated as a
    fraction of the value before trading and in currency, naming ``member`` unless it is the group."""
    return ConstraintConflict(
        name,
        give * data.ref_value / data.value,
        detail,
        member=member if member and member != name else None,
        dollars=give * data.ref_value,
    )


def _relax_only(problem: cp.Problem, slacks: dict[str, cp.Variable], name: str) -> float | None:
    pinned = [var == 0 for other, var in slacks.items() if other != name]
    alone = cp.Problem(problem.objective, problem.constraints + pinned)
    if not _solve(alone):
        return None
    return float(slacks[name].value)
