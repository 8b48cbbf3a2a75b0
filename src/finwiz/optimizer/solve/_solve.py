"""Solver policy: choose, solve, verify, fall back — and never report a non-optimal status.

Requests made only of built-in terms are solved natively (``_qp``): OSQP first, cold or warm
from the workspace kept for the structure, at loose ADMM tolerances plus polishing, accepted only
when the point keeps every row to 1e-11 and passes a KKT check; Clarabel (interior point, tight
tolerances) is the fallback, and its answer is polished by OSQP so a request gives the same trades
whichever solver got there. Structures where polishing does not hold go to Clarabel directly.
OSQP first because it was faster cold and warm (docs/decisions/continuous-and-verify.md).

A request with any other term (a user's, exact market impact) goes through the compiled cvxpy
problem, Clarabel first: OSQP through cvxpy at its default tolerances reports "optimal" while
constraints are off by ~1e-3, and at tight ones was slower than Clarabel.
Every cvxpy solve passes its full settings, because cvxpy keeps an OSQP workspace between solves
and would otherwise reuse old options.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from finwiz.errors import SolverError
from finwiz.optimizer._trace import count
from finwiz.optimizer.describe._data import NOISE_VALUE
from finwiz.optimizer.describe._model import trade_vector
from finwiz.optimizer.solve._assembler import OBJECTIVE_SCALE, AssembledProblem, Model, assemble
from finwiz.optimizer.solve._dense import solve_dense
from finwiz.optimizer.solve._interrupt import raise_if_interrupted, raise_if_osqp_interrupted
from finwiz.optimizer.solve._presolve import FEASIBILITY_TOLERANCE
from finwiz.optimizer.solve._qp import Ladder, NativeQP, NoLadderPointError, ladder_of
from finwiz.optimizer.solve._qp_build import build_qp, qp_base
from finwiz.optimizer.solve._solvers import (
    NativeSolution,
    has_dense_block,
    polish_osqp,
    refine_on_active_set,
    solve_clarabel,
    solve_osqp,
)
from finwiz.optimizer.solve._workspaces import plan
from finwiz.optimizer.verify._compliance import continuous_point

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = [
    "FEASIBILITY_TOLERANCE",
    "SolveOutcome",
    "native_qp",
    "objective_at",
    "solve",
    "solve_terms",
]

_SETTINGS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "max_iter": 200},
    # Cones (market impact) do not always reach 1e-10: Clarabel then stops "almost solved". It is
    # asked once more at 1e-8; the answer is still held to FEASIBILITY_TOLERANCE on every limit.
    "CLARABEL_CONE": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-8, "tol_feas": 1e-8, "max_iter": 200},
    "OSQP": {
        "eps_abs": 1e-7,
        "eps_rel": 1e-7,
        "max_iter": 20_000,
        "polishing": True,
        "adaptive_rho": True,
        "warm_starting": True,
    },
}
_ORDER = {
    "auto": ("CLARABEL", "OSQP"),
    "CLARABEL": ("CLARABEL", "OSQP"),
    "OSQP": ("OSQP", "CLARABEL"),
}


@dataclass(frozen=True)
class SolveOutcome:
    """A verified solution: trades per asset (fractions of V_ref) and how it was obtained."""

    buy: np.ndarray
    sell: np.ndarray
    cost: float
    objective: float
    solver: str
    iterations: int
    seconds: float
    residual: float
    attempts: tuple[str, ...]
    duals: np.ndarray | None = None
    """Multipliers of the coupled limit rows (``LimitGroup.linear`` rows of the non-separable
    groups, in order; unscaled, positive pushing on an upper bound), when the solver gives them."""
    net_prices: np.ndarray | None = None
    """Netting: what the region's rows charge per unit of the short- and long-term nets (unscaled)."""

    @property
    def trades(self) -> np.ndarray:
        """Net trade per asset, ``buy - sell``."""
        return np.asarray(self.buy - self.sell)


class ProvenInfeasibleError(Exception):
    """Internal signal: the solver proved the problem infeasible (the engine diagnoses why)."""


def _run(
    assembled: AssembledProblem, settings_of: str, time_limit: float, solver: str | None = None
) -> tuple[str, int]:
    settings = {**_SETTINGS[settings_of], "time_limit": time_limit}
    with warnings.catch_warnings():
        # cvxpy warns "solution may be inaccurate"; we check accuracy ourselves.
        warnings.simplefilter("ignore")
        # Clarabel built fresh: updated in place, it keeps the scaling of the first request it
        # saw, and its answer (to 1e-9) then depends on what the process solved before.
        warm = (solver or settings_of) != "CLARABEL"
        assembled.problem.solve(solver=solver or settings_of, warm_start=warm, **settings)
    stats = assembled.problem.solver_stats
    return str(assembled.problem.status), int(stats.num_iters or 0) if stats is not None else 0


def _order(solver: str) -> tuple[str, ...]:
    order = _ORDER.get(solver.upper() if solver != "auto" else "auto")
    if order is None:
        raise SolverError(f"unknown solver {solver!r}; use 'auto', 'CLARABEL' or 'OSQP'", solver=solver)
    return order


@dataclass(frozen=True)
class _Found:
    """One solver's answer, before the policy judges it (``status``: optimal, infeasible or why not)."""

    status: str
    iterations: int = 0
    residuals: dict[str, float] = field(default_factory=dict)
    buy: np.ndarray | None = None
    sell: np.ndarray | None = None
    cost: float = 0.0
    objective: float = 0.0
    solver: str | None = None  # when another solver finished the answer (a polish)
    duals: np.ndarray | None = None


def _judge(order: Sequence[str], run: Callable[[str], _Found]) -> SolveOutcome:
    """The policy both paths share: try the solvers in ``order``; believe infeasibility from
    Clarabel or from two solvers; accept an optimal answer only if it keeps every limit to
    :data:`FEASIBILITY_TOLERANCE`."""
    count("solves")
    attempts: list[str] = []
    failures: list[str] = []
    infeasible_votes = 0
    start = time.perf_counter()
    for name in order:
        attempts.append(name)
        found = run(name)
        if found.status == "infeasible":
            infeasible_votes += 1
            if name == "CLARABEL" or infeasible_votes > 1:
                raise ProvenInfeasibleError(name)
        if found.status != "optimal" or found.buy is None or found.sell is None:
            failures.append(f"{name}: {found.status}")
            continue
        worst = max(found.residuals.values(), default=0.0)
        if worst > FEASIBILITY_TOLERANCE:
            group = max(found.residuals, key=lambda k: found.residuals[k])
            failures.append(f"{name}: optimal but {group} off by {worst:.2e}")
            continue
        if found.solver is not None:
            attempts.append(found.solver)
        return SolveOutcome(
            buy=found.buy,
            sell=found.sell,
            cost=found.cost,
            objective=found.objective,
            solver=found.solver or name,
            iterations=found.iterations,
            seconds=time.perf_counter() - start,
            residual=worst,
            attempts=tuple(attempts),
            duals=found.duals,
        )
    if infeasible_votes:
        # One solver proved infeasibility and none found an optimal point: diagnose, don't guess.
        raise ProvenInfeasibleError(attempts[-1])
    raise SolverError(
        "no solver returned a verified optimal solution (" + "; ".join(failures) + ")",
        solver=attempts[-1] if attempts else None,
        status="failed",
    )


def solve(assembled: AssembledProblem, solver: str = "auto", *, time_limit: float = 30.0) -> SolveOutcome:
    """Solve the compiled problem (Parameters already set) and verify it.

    Raises :class:`ProvenInfeasibleError` when the solver proves infeasibility, :class:`SolverError`
    when no solver returns an optimal point that satisfies every limit to
    :data:`FEASIBILITY_TOLERANCE`.
    """

    def run(name: str) -> _Found:
        try:
            status, iterations = _run(assembled, name, time_limit)
            if status == cp.OPTIMAL_INACCURATE and name == "CLARABEL":
                status, more = _run(assembled, "CLARABEL_CONE", time_limit, solver="CLARABEL")
                iterations += more
        except cp.error.SolverError as exc:
            if name == "OSQP":  # Ctrl-C stopped it: not a failure for the next solver
                raise_if_osqp_interrupted(assembled.problem)
            return _Found(str(exc))
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return _Found("infeasible", iterations)
        # Still "almost solved" at the looser cone tolerances: the point is taken when it keeps
        # every limit to FEASIBILITY_TOLERANCE (checked by _judge), since the whole-share step
        # re-prices it exactly and the final trades are verified on every limit. Refusing it
        # failed requests with market impact and binding caps that are feasible.
        if status != cp.OPTIMAL and not (status == cp.OPTIMAL_INACCURATE and name == "CLARABEL"):
            return _Found(f"status {status}", iterations)
        v = assembled.variables
        assembled.solves += 1
        return _Found(
            "optimal",
            iterations,
            assembled.limit_residuals(),
            np.maximum(np.asarray(v.buy.value, dtype=float), 0.0),
            np.maximum(np.asarray(v.sell.value, dtype=float), 0.0),
            float(v.cost.value),
            float(assembled.problem.value) / OBJECTIVE_SCALE,
        )

    with assembled.lock:
        return _judge(_order(solver), run)


def native_qp(model: Model, segments: np.ndarray | None = None) -> NativeQP | None:
    """The native QP of ``model`` (continuous objective), or None when it is not a QP; a taxable
    account's on ``segments`` (each asset's lot, see ``_qp.Ladder``; default: the first),
    from the model's kept segment-free part (built once per model, from the base of the model
    it re-solves when they share their rows)."""
    if not model.is_qp:
        return None
    parts, data = model.described, model.data
    if model.kept.qp_base is None:
        model.kept.qp_base = qp_base(parts, data.x0, OBJECTIVE_SCALE, data.backoff, model.kept.last_qp_base)
        model.kept.last_qp_base = None
    return build_qp(parts, data.x0, OBJECTIVE_SCALE, data.backoff, segments, base=model.kept.qp_base)


_MAX_LADDER_STEPS = 30


def _binds_at_target(model: Model) -> bool:
    """Whether trading straight to the target (costs aside) breaks a coupled limit: a routing hint."""
    data = model.data
    move = data.target - data.x0
    z = trade_vector(np.maximum(move, 0.0), np.maximum(-move, 0.0), 0.0)
    for group in model.groups:
        if group.separable:
            continue
        rows, lower, upper = group.linear()
        values = rows.evaluate(z)
        if np.any(values > upper + 1e-9) or np.any(values < lower - 1e-9):
            return True
    return False


def solve_terms(model: Model, solver: str = "auto", *, time_limit: float = 30.0, per_lot: bool = True) -> SolveOutcome:
    """Solve ``model``: natively when it is a QP, else through the compiled cvxpy problem. The
    same policy either way (see :func:`solve`). ``per_lot=False``: where a taxable account's climb
    over lots finds no point, raise :class:`~finwiz.optimizer.solve._qp.NoLadderPointError` instead of
    solving one variable per lot (the caller reorders the lots)."""
    # A taxable account's climb builds its own QPs: no build on the first lots just to find its ladder.
    form = next((d.tax for d in model.described if d.tax is not None), None) if model.is_qp else None
    qp = native_qp(model) if form is None else None
    if qp is None and form is None:
        assembled = assemble(model)
        with assembled.lock:
            assembled.set_values(model, model.stacked())
            return solve(assembled, solver, time_limit=time_limit)
    if form is None:
        assert qp is not None
        return _solve_native(model, qp, solver, time_limit)[0]
    ladder = ladder_of(form, model.data.n)
    # A taxable account: solve on one lot per asset, move the assets its multipliers send to
    # other lots, again, until none moves (each asset's tax is convex along its lots).
    data = model.data
    first = np.zeros(data.n, dtype=np.int64)
    if ladder.settled.segments is not None:
        start = ladder.settled.segments  # where the last solve of this rebalance settled
    else:  # where trading straight to the target would sell, and past every loss lot (the tax
        # they save pays for selling and buying back) where no limit can forbid selling that much
        sold = np.clip(data.x0 - data.target, 0.0, None)
        start = ladder.containing(sold)
        lots = data.lots
        free = lots is not None and lots.budget is None and data.turnover_cap is None and data.esg_floor is None
        free = free and ladder.region is None  # a netting region's rows limit the nets too
        if free and data.position_floor is None:
            start = np.maximum(start, ladder.gains_start())
        if ladder.region is None:  # a netting region's first solve stays on Clarabel (its regions' ADMM stalled)
            # ADMM from trading straight to the target, where from no trades it stalls (docs/decisions/tax-netting.md)
            ladder.settled.start = (np.clip(data.target - data.x0, 0.0, None), sold, 0.0, None)
    starts = [start, first] if start.any() else [first]  # failing that, every first lot
    if ladder.settled.no_point is model.kept:  # these climbs failed already (per_lot=False)
        starts = []
    for segments in starts:
        try:
            outcome, segments = _climb(model, ladder, segments, solver, time_limit)
        except (ProvenInfeasibleError, SolverError):
            # A segment bounds its asset's sell from below: where that leaves no point (a side
            # fixed since), or a solver stalls on the face it leaves (zero costs, a sell floor
            # and a buy: selling and buying back is free), another start, else every lot at once
            # (one variable per lot, through cvxpy), infeasible only when the request is.
            continue
        ladder.settled.segments = segments
        return outcome
    if not per_lot:
        ladder.settled.no_point = model.kept
        raise NoLadderPointError
    assembled = assemble(model)
    with assembled.lock:
        assembled.set_values(model, model.stacked())
        return solve(assembled, solver, time_limit=time_limit)


def _climb(
    model: Model, ladder: Ladder, segments: np.ndarray, solver: str, time_limit: float
) -> tuple[SolveOutcome, np.ndarray]:
    """Solve on ``segments``, move the assets the multipliers send to other lots, again, until
    none moves (or ``_MAX_LADDER_STEPS``: the last answer is feasible, optimal on its lots)."""
    history = np.zeros(model.data.n, dtype=np.int64)
    for _ in range(_MAX_LADDER_STEPS):
        qp = native_qp(model, segments)
        assert qp is not None
        assert qp.segments is not None
        segments = qp.segments
        outcome, z, y = _solve_native(model, qp, solver, time_limit)
        tolerance = 1e-9 * max(1.0, float(np.abs(y).max(initial=0.0)))
        moved = ladder.step(segments, qp, z, y, tolerance, history)
        if np.array_equal(moved, segments):
            break
        segments = moved
    return outcome, segments


def _route(model: Model, qp: NativeQP, solver: str) -> tuple[Any, str, tuple[str, ...]]:
    """The workspace key of ``qp``, its route (see :func:`plan`) and the solvers to try in order."""
    order = _order(solver)
    structure = ("native", qp.A.shape, qp.A.nnz, qp.P.nnz)
    key: tuple[Any, ...] | None = structure
    if qp.ladder is not None:
        # A taxable request's workspace is its own: warm-started from another request's answer,
        # ADMM lands on another of the zero-cost problem's equal buy/sell splits, the side rule
        # reads it, and the trades would depend on what the process solved before.
        key = (*structure, qp.ladder.serial)
    elif model.data.fractional:
        # A fractional request's is a throwaway (no key, never kept): warm from another request,
        # ADMM and polishing land 1e-11 elsewhere, enough to move a millionth-of-a-share trade (10
        # of 500 reordered requests differed); kept, each request's own workspace would evict
        # whole-share requests' warm ones from the cache.
        key = None
    route = plan(qp, key) if solver == "auto" else "explicit"
    if route == "cold" and has_dense_block(qp):
        # Every factorisation is dense there (OSQP's setup, rho updates, polish): Clarabel on faer.
        route, order = "interior", ("CLARABEL", "OSQP")
    elif qp.ladder is not None and qp.ladder.settled.start is not None and route in ("warm", "cold"):
        order = ("OSQP", "CLARABEL")  # from the climb's own start (``_ladder_start``)
    elif route == "cold" and (
        (qp.ladder is not None and qp.ladder.settled.segments is None) or _binds_at_target(model)
    ):
        # A taxable first solve given no start (a netting region's): ADMM stalls there (docs/decisions/
        # tax-netting.md); a netting region started at another's answer stays on OSQP (same answer).
        # Limits that trading straight to the target breaks bind at the optimum, where ADMM
        # needs thousands of iterations cold and Clarabel a few (then OSQP's polish warms the workspace).
        order = ("CLARABEL", "OSQP")
    elif route in ("warm", "cold"):
        # OSQP (loose ADMM, polished, certified by KKT) answers first: faster cold and warm
        # (docs/decisions/continuous-and-verify.md). Clarabel stays the fallback.
        order = ("OSQP", "CLARABEL")
    return key, route, order


def _solve_native(
    model: Model, qp: NativeQP, solver: str, time_limit: float
) -> tuple[SolveOutcome, np.ndarray, np.ndarray]:
    """The native solve of :func:`solve_terms` on ``qp``, and the accepted answer's variables and
    multipliers of every row (OSQP's convention)."""
    key, route, order = _route(model, qp, solver)
    start = _ladder_start(qp, route)

    def run(name: str) -> _Found:
        try:
            found, finisher = (
                (solve_osqp(qp, key, time_limit, start), None)
                if name == "OSQP"
                else _interior(qp, key, route, time_limit)
            )
            raise_if_interrupted(found.status)  # Ctrl-C stopped OSQP: not a failure for the next solver
        except Exception as exc:  # a solver's own failure (e.g. a factorization error): try the next
            return _Found(str(exc))
        if found.z is None:
            return _Found(found.status if found.status == "infeasible" else f"status {found.status}", found.iterations)
        z = found.z
        buy, sell, cost = qp.trades(z)
        duals = None
        if found.y is not None:
            duals = _limit_duals(qp, found.y)
            multipliers["y"], multipliers["z"] = found.y, z  # the accepted answer is the last optimal one
        objective = qp.objective(z, found.pz)
        return _Found("optimal", found.iterations, found.residuals, buy, sell, cost, objective, finisher, duals)

    multipliers: dict[str, np.ndarray] = {}
    outcome = _judge(order, run)
    y, z = multipliers.get("y"), multipliers.get("z")
    if y is not None and qp.tax_terms is not None and qp.tax_terms.region is not None:
        outcome = dataclasses.replace(outcome, net_prices=qp.tax_terms.net_prices(y) / qp.scale)
    if model.data.fractional and y is not None and z is not None:
        # Fractional lots are finer than any solver's accuracy: the answer is made exact on its
        # active set, so the trades do not depend on the route or warm start that found it.
        refined = refine_on_active_set(qp, z, y)
        if refined is not None:
            z, y = refined
            buy, sell, cost = qp.trades(z)
            duals = _limit_duals(qp, y)
            outcome = dataclasses.replace(
                outcome, buy=buy, sell=sell, cost=cost, objective=qp.objective(z), duals=duals
            )
    return outcome, np.zeros(qp.A.shape[1]) if z is None else z, np.zeros(qp.A.shape[0]) if y is None else y


def _ladder_start(qp: NativeQP, route: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A taxable climb's warm start (``Settled.start``, taken once) as ``(z, y)`` for ``qp``, on
    OSQP's routes: the first solve (see ``solve_terms``), or sides just fixed (ADMM from the
    workspace's last point, trades on both sides, stalled; from the same answer traded net on each
    fixed side it does not: docs/decisions/tax-netting.md)."""
    settled = None if qp.ladder is None else qp.ladder.settled
    if settled is None or settled.start is None:
        return None
    buy, sell, cost, y = settled.start
    settled.start = None
    if route not in ("warm", "cold") or (y is not None and len(y) != qp.A.shape[0]):
        return None
    return qp.point(buy, sell, cost), np.zeros(qp.A.shape[0]) if y is None else y


def _interior(qp: NativeQP, key: Any, route: str, time_limit: float) -> tuple[NativeSolution, str | None]:
    """Clarabel's answer, and who finished it: polished by OSQP where the route keeps a workspace
    (``"OSQP"``). A polished point is the exact solution of its active set's KKT system, so Clarabel
    runs without its iterative refinement there (the same trades, bit for bit, and faster); where
    the polish fails, Clarabel runs again with it, and that answer stands."""
    if route not in ("warm", "cold"):
        found = solve_dense(qp) if route == "interior" else None  # a kept eigenbasis: O(n^2) iterations
        return (solve_clarabel(qp, time_limit) if found is None else found), None
    found = solve_clarabel(qp, time_limit, refine=False)
    if found.z is not None:
        polished = polish_osqp(qp, key, found, time_limit)
        if polished.z is not None:  # certified, every row within 1e-11
            return polished, "OSQP"
    return solve_clarabel(qp, time_limit), None


def _limit_duals(qp: NativeQP, y: np.ndarray) -> np.ndarray:
    """The multipliers of the limit rows: every group after the bounds, definitions and cost."""
    spans = [(a, b) for name, a, b in qp.groups[3:] if name not in ("definitions", "tax_region")]
    return np.concatenate([y[a:b] for a, b in spans]) / qp.scale if spans else np.zeros(0)


def objective_at(model: Model, points: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> list[float]:
    """The true objective of ``model`` (the trade count counted, not its L1 stand-in) at each
    ``(buy, sell, cost)`` (fractions of V_ref)."""
    stacked = model.stacked(continuous=False)
    out = []
    for buy, sell, cost in points:
        value = stacked.objective(continuous_point(model.data, buy, sell, cost))
        value += stacked.count * float(np.count_nonzero((buy + sell) * model.data.ref_value >= NOISE_VALUE))
        out.append(value)
    if model.user_terms:
        assembled = assemble(model, continuous=False)
        with assembled.lock:
            assembled.set_values(model, stacked)
            for i, (buy, sell, cost) in enumerate(points):
                assembled.place(buy, sell, cost, model.data.x0)
                out[i] += assembled.user_objective()
    return out
