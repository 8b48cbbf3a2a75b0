"""Why a request is infeasible: an elastic re-solve names the conflicting constraint groups.

The elastic problem is derived from the model's one description (``_assembler``): every limit
group gets one non-negative slack and the sum of slacks is minimised. The groups whose rows carry
non-zero dual multipliers at that optimum form a Farkas certificate of the conflict (together they
cannot hold); for each, a second elastic solve in which only that group may give measures how much
it alone would have to give. Groups whose give is below solver noise are left out; the member
(asset or sector) whose row carries the largest multiplier is named; every amount is stated as a
fraction of the value before trading and in currency (the linear rows are in ``V_ref`` units).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.solve._assembler import Model, assemble

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = ["conflict", "explain_infeasibility"]

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
    data = model.data
    elastic = assemble(model, diagnose=True)
    with elastic.lock:
        elastic.set_values(model, model.stacked())
        if not _solve(elastic.problem):
            return InfeasibleRebalanceError([], "no trades satisfy the constraints (diagnosis did not converge)")
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
        alone = _relax_only(elastic.problem, elastic.slacks, name)
        give = alone if alone is not None else relaxed.get(name, 0.0)
        if give <= _TOL:
            continue  # part of the certificate, but it need not move: noise
        who = member.get(name, (0.0, None))[1]
        detail = "" if alone is not None else "cannot be resolved by this group alone"
        conflicts.append(conflict(data, name, give, detail, who))
    conflicts.sort(key=lambda c: c.name)
    return InfeasibleRebalanceError(conflicts)


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
