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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from finwiz.errors import ConfigurationError, ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer.describe._data import FRACTIONAL_LOT
from finwiz.optimizer.describe._terms import Variables
from finwiz.optimizer.discrete._min_position import min_position_rows
from finwiz.optimizer.solve._assembler import OBJECTIVE_SCALE, Model, build
from finwiz.optimizer.solve._interrupt import cvxpy_solver

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

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
    bound: float | None = None  # the solver's dual bound on the objective (same units)


def _counts(whole: np.ndarray, name: str) -> cp.Expression:
    """Lot counts per asset: integers where ``whole``, continuous (shares) elsewhere."""
    if whole.all() or not whole.any():
        return cp.Variable(len(whole), integer=bool(whole.all()), name=name)
    integer, free = np.flatnonzero(whole), np.flatnonzero(~whole)
    k_int = cp.Variable(len(integer), integer=True, name=f"{name}_whole")
    k_free = cp.Variable(len(free), name=f"{name}_fractional")
    place = sparse.csr_matrix((np.ones(len(whole)), (np.concatenate([integer, free]), np.arange(len(whole)))))
    return place @ cp.hstack([k_int, k_free])


def solve_exact(model: Model, *, time_limit: float = 10.0) -> ExactOutcome:
    """Solve the mixed-integer version of ``model`` (its true objective: the trade count counted)."""
    start = time.perf_counter()
    program = _program(model)
    solver = _solve(program, time_limit)
    data = model.data
    counts = np.asarray(program.k_buy.value, float) - np.asarray(program.k_sell.value, float)
    shares = np.where(program.whole, np.round(counts) * program.step, np.round(counts / data.lot) * data.lot)
    proven = program.problem.status == cp.OPTIMAL
    bound = _dual_bound(program.problem)
    return ExactOutcome(
        shares=shares,
        objective=float(program.problem.value) / OBJECTIVE_SCALE,
        proven_optimal=proven,
        gap=0.0 if proven and bound is None else None,
        solver=solver,
        seconds=time.perf_counter() - start,
        bound=bound,
    )


@dataclass(frozen=True)
class _Program:
    """The mixed-integer program of a model and the lot counts its trades are read from."""

    problem: cp.Problem
    k_buy: cp.Expression
    k_sell: cp.Expression
    whole: np.ndarray  # which assets count whole lots (the others: shares, continuous)
    step: np.ndarray  # each asset's count unit in shares


def _program(model: Model) -> _Program:
    """The model's terms on integer lot counts, with the minimum trade, the true trade count, the
    minimum position and the tax lots' relief order."""
    data = model.data
    n = data.n
    # Whole shares and lots are integer lot counts. Fractional shares stay continuous (in shares):
    # counting millionths of a share as integers gives coefficients of ~1e-10, below the MIP
    # solvers' zero tolerance, and they would return "no trade" as optimal.
    # A lot size given with fractional shares stays a whole-lot count (rounding a continuous
    # count to it afterwards broke coupled limits: a turnover cap by 0.1 %, a gain budget by $13).
    whole = np.full(n, not data.fractional) | (data.lot > FRACTIONAL_LOT * 1.5)
    step = np.where(whole, data.lot, 1.0)
    unit = step * data.prices / data.ref_value
    k_buy, k_sell = _counts(whole, "lots_bought"), _counts(whole, "lots_sold")
    z_buy = cp.Variable(n, boolean=True, name="bought")
    z_sell = cp.Variable(n, boolean=True, name="sold")
    v = Variables(
        buy=cp.multiply(unit, k_buy),
        sell=cp.multiply(unit, k_sell),
        weights=cp.Variable(n, name="weights"),
        cost=cp.Variable(nonneg=True, name="cost"),
    )
    stacked = model.stacked(continuous=False)
    assembled = build(model, stacked, variables=v, continuous=False)
    assembled.set_values(model, stacked)
    constraints = [k_buy >= 0, k_sell >= 0, v.weights == data.x0 + v.buy - v.sell, *assembled.constraints]
    # A trade is zero or worth at least the minimum (and one cent, as in the default mode).
    smallest = max(data.min_trade_value, 0.01) / data.ref_value
    constraints += [
        v.buy <= 2.0 * z_buy,
        v.sell <= 2.0 * z_sell,
        v.buy >= smallest * z_buy,
        v.sell >= smallest * z_sell,
        z_buy + z_sell <= 1,
        *min_position_rows(data, v.weights),
    ]
    form = stacked.tax
    nxt = np.zeros(0, dtype=np.int64) if form is None else np.flatnonzero(form.owner[1:] == form.owner[:-1])
    if form is not None and assembled.lots_sold is not None and nxt.size:
        # Each asset's lots are sold in their relief order (the one the result, the whole-share
        # step and compliance read): a lot only once the one before it is sold out. With its lots
        # free, the program met a gain budget with other lots than FIFO's and the trades, read
        # with FIFO's, broke it by $4,940.
        q = assembled.lots_sold
        full = cp.Variable(len(nxt), boolean=True, name="lot_sold_out")
        constraints += [q[nxt] >= cp.multiply(form.cap[nxt], full), q[nxt + 1] <= cp.multiply(form.cap[nxt + 1], full)]
    objective = [assembled.objective]
    if stacked.count > 0:
        objective.append(OBJECTIVE_SCALE * stacked.count * cp.sum(z_buy + z_sell))
    problem = cp.Problem(cp.Minimize(cp.sum(cp.hstack(objective))), constraints)
    return _Program(problem, k_buy, k_sell, whole, step)


def _solve(program: _Program, time_limit: float) -> str:
    """Solve ``program`` in place (SCIP; HiGHS when the objective is linear) within ``time_limit``:
    the solver's name; a finwiz error when it has no answer."""
    problem = program.problem
    linear = problem.objective.args[0].is_affine()
    solver = "HIGHS" if linear else "SCIP"
    if solver not in cp.installed_solvers():
        raise ConfigurationError(f"exact mode needs the {solver} solver: pip install 'finwiz[exact]'")
    options = {"time_limit": time_limit} if solver == "HIGHS" else {"scip_params": {"limits/time": time_limit}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" on time limit: handled below
        try:
            # One solve: Parameters as constants (the DPP path failed in cvxpy at 100 assets).
            problem.solve(solver=cvxpy_solver(solver), ignore_dpp=True, **options)  # Ctrl-C: KeyboardInterrupt
        except cp.error.SolverError as exc:
            raise SolverError(f"exact mode: {solver} failed: {exc}", solver=solver) from exc
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise InfeasibleRebalanceError(
            [ConstraintConflict("whole_shares", 0.0, "no integer trades keep every limit")],
            "exact mode: no whole-share trades satisfy the constraints",
        )
    if program.k_buy.value is None or problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.USER_LIMIT):
        raise SolverError(
            f"exact mode: {solver} returned {problem.status} with no solution",
            solver=solver,
            status=str(problem.status),
        )
    return solver


def _dual_bound(problem: cp.Problem) -> float | None:
    """SCIP's dual bound on the objective (finwiz's units), None from HiGHS."""
    extra = problem.solver_stats.extra_stats if problem.solver_stats else None
    scip = extra.get("model") if isinstance(extra, dict) else None  # HiGHS gives its own info object
    if scip is None or not hasattr(scip, "getDualbound"):
        return None
    # SCIP's objective leaves out the constant cvxpy keeps apart: put it back.
    offset = float(problem.value) - float(scip.getPrimalbound())
    return (float(scip.getDualbound()) + offset) / OBJECTIVE_SCALE
