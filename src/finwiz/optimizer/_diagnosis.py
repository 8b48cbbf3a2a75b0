"""Why a request is infeasible: an elastic re-solve names the conflicting constraint groups.

Every limit group gets one non-negative slack and the sum of slacks is minimised. The groups
whose rows carry non-zero dual multipliers at that optimum form a Farkas certificate of the
conflict (together they cannot hold); for each, a second elastic solve in which only that
group may give measures how much it alone would have to give.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError
from finwiz.optimizer._assembler import assemble
from finwiz.optimizer._data import ProblemData
from finwiz.optimizer._terms import Term

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer._lazy import cvxpy as cp

__all__ = ["explain_infeasibility"]

_TOL = 1e-7


def _solve(problem: cp.Problem) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            problem.solve(solver="CLARABEL")
        except cp.error.SolverError:
            return False
    return problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)


def _unit(name: str, data: ProblemData, amount: float) -> tuple[float, str]:
    if name == "turnover_cap":
        return (
            amount * data.ref_value / data.value,
            "turnover, as a fraction of value before trading",
        )
    if name == "esg_floor":
        return amount * max(1.0, float(np.abs(data.esg).max())) if data.esg is not None else amount, "score points"
    return amount, "weight"


def explain_infeasibility(terms: Sequence[Term], data: ProblemData) -> InfeasibleRebalanceError:
    """Build the error for an infeasible request (does not raise it)."""
    elastic = assemble(terms, data, diagnose=True)
    elastic.set_values(terms, data)
    with elastic.lock:
        if not _solve(elastic.problem):
            return InfeasibleRebalanceError([], "no trades satisfy the constraints (diagnosis did not converge)")
        weight: dict[str, float] = {}
        for name, constraint in elastic.elastic:
            dual = np.abs(np.asarray(constraint.dual_value, dtype=float))
            weight[name] = weight.get(name, 0.0) + float(dual.sum())
        relaxed = {name: float(var.value) for name, var in elastic.slacks.items()}
    involved = [n for n in elastic.slacks if weight.get(n, 0.0) > _TOL or relaxed.get(n, 0.0) > _TOL]
    conflicts: list[ConstraintConflict] = []
    for name in involved:
        alone = _relax_only(elastic.problem, elastic.slacks, name)
        amount, unit = _unit(name, data, alone if alone is not None else relaxed.get(name, 0.0))
        detail = unit if alone is not None else f"{unit}; cannot be resolved by this group alone"
        conflicts.append(ConstraintConflict(name, amount, detail))
    conflicts.sort(key=lambda c: c.name)
    return InfeasibleRebalanceError(conflicts)


def _relax_only(problem: cp.Problem, slacks: dict[str, cp.Variable], name: str) -> float | None:
    pinned = [var == 0 for other, var in slacks.items() if other != name]
    alone = cp.Problem(problem.objective, problem.constraints + pinned)
    if not _solve(alone):
        return None
    return float(slacks[name].value)
