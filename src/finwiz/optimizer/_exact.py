"""Exact mode: whole shares, lots, minimum trade size and trade count as a mixed-integer program.

The same terms build the problem, on variables ``buy = unit o k_buy`` and ``sell = unit o k_sell``
with integer lot counts ``k`` (``unit`` = one lot's value / V_ref). Binary ``z`` mark traded
assets: ``min_trade <= value <= M z`` (so a trade is either zero or at least the minimum) and
the trade-count term becomes lambda x sum(z), the true count instead of its L1 surrogate. SCIP
solves it (quadratic objectives); HiGHS when the objective is linear. It stops at the time limit;
the gap is measured against the continuous relaxation's optimum, a valid lower bound.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from finwiz.errors import ConfigurationError, ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer._assembler import OBJECTIVE_SCALE
from finwiz.optimizer._data import ProblemData
from finwiz.optimizer._terms import Term, TradeCountTerm, Variables

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer._lazy import cvxpy as cp

__all__ = ["ExactOutcome", "solve_exact"]


@dataclass(frozen=True)
class ExactOutcome:
    """Share trades from the mixed-integer solve, its objective and whether it proved optimality."""

    shares: np.ndarray
    objective: float
    proven_optimal: bool
    gap: float | None
    solver: str
    seconds: float


def solve_exact(terms: Sequence[Term], data: ProblemData, *, time_limit: float = 10.0) -> ExactOutcome:
    """Solve the mixed-integer version of the problem built from ``terms``."""
    start = time.perf_counter()
    n = data.n
    # Whole shares and lots are integer lot counts. Fractional shares stay continuous (in shares):
    # counting millionths of a share as integers gives coefficients of ~1e-10, below the MIP
    # solvers' zero tolerance, and they would return "no trade" as optimal.
    integral = not data.fractional
    step = data.lot if integral else np.ones(n)
    unit = step * data.prices / data.ref_value
    k_buy = cp.Variable(n, integer=integral, name="lots_bought")
    k_sell = cp.Variable(n, integer=integral, name="lots_sold")
    z_buy = cp.Variable(n, boolean=True, name="bought")
    z_sell = cp.Variable(n, boolean=True, name="sold")
    v = Variables(
        buy=cp.multiply(unit, k_buy),
        sell=cp.multiply(unit, k_sell),
        weights=cp.Variable(n, name="weights"),
        cost=cp.Variable(nonneg=True, name="cost"),
    )
    constraints = [k_buy >= 0, k_sell >= 0, v.weights == data.x0 + v.buy - v.sell]
    objective: list[cp.Expression] = []
    costs: list[cp.Expression] = []
    count_weight = 0.0
    for term in terms:
        if isinstance(term, TradeCountTerm):
            count_weight = data.trade_penalty if term.weight is None else term.weight
            continue
        parts = term.build(v, data)
        for key, value in term.values(data).items():
            if key in parts.params:
                parts.params[key].value = value
        if parts.objective is not None:
            objective.append(parts.objective)
        if parts.cost is not None:
            costs.append(parts.cost)
        constraints += [limit.hard() for limit in parts.limits]
    constraints.append(v.cost >= cp.sum(cp.hstack(costs)) if costs else v.cost == 0)
    # A trade is zero or worth at least the minimum (and one cent, as in the default mode).
    smallest = max(data.min_trade_value, 0.01) / data.ref_value
    big = np.minimum(np.maximum(data.buy_cap, 0), 2.0)
    constraints += [
        v.buy <= cp.multiply(big, z_buy),
        v.sell <= cp.multiply(np.minimum(data.sell_cap, 2.0), z_sell),
        v.buy >= smallest * z_buy,
        v.sell >= smallest * z_sell,
        z_buy + z_sell <= 1,
    ]
    if count_weight > 0:
        objective.append(count_weight * cp.sum(z_buy + z_sell))
    goal = cp.Minimize(OBJECTIVE_SCALE * cp.sum(cp.hstack(objective)) if objective else cp.Constant(0.0))
    problem = cp.Problem(goal, constraints)
    linear = goal.args[0].is_affine() if objective else True
    solver = "HIGHS" if linear else "SCIP"
    if solver not in cp.installed_solvers():
        raise ConfigurationError(f"exact mode needs the {solver} solver: pip install 'finwiz[exact]'")
    options = {"time_limit": time_limit} if solver == "HIGHS" else {"scip_params": {"limits/time": time_limit}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" on time limit: handled below
        try:
            problem.solve(solver=solver, **options)
        except cp.error.SolverError as exc:
            raise SolverError(f"exact mode: {solver} failed: {exc}", solver=solver) from exc
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise InfeasibleRebalanceError(
            [ConstraintConflict("whole_shares", 0.0, "no integer trades keep every limit")],
            "exact mode: no whole-share trades satisfy the constraints",
        )
    if k_buy.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.USER_LIMIT):
        raise SolverError(
            f"exact mode: {solver} returned {problem.status} with no solution",
            solver=solver,
            status=str(problem.status),
        )
    counts = np.asarray(k_buy.value, float) - np.asarray(k_sell.value, float)
    shares = np.round(counts) * step if integral else np.round(counts / data.lot) * data.lot
    proven = problem.status == cp.OPTIMAL
    gap: float | None = 0.0 if proven else None
    model = (problem.solver_stats.extra_stats or {}).get("model") if problem.solver_stats else None
    if model is not None and hasattr(model, "getGap"):
        gap = float(model.getGap())
    return ExactOutcome(
        shares=shares,
        objective=float(problem.value) / OBJECTIVE_SCALE,
        proven_optimal=proven,
        gap=gap,
        solver=solver,
        seconds=time.perf_counter() - start,
    )
