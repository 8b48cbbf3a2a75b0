"""The native QP solved by OSQP (warm, from the workspace kept for its structure, see
``_workspaces``) or Clarabel, and the exact solution on an active set that makes the answer
independent of which solver found it.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.optimizer.solve._workspaces import OSQP_SETTINGS, _cache, _cache_lock, _Workspace, _workspace

if TYPE_CHECKING:
    from finwiz.optimizer.solve._qp import NativeQP

__all__ = [
    "COLD_ITERATIONS",
    "NativeSolution",
    "has_dense_block",
    "held_to_bounds",
    "kkt_certified",
    "polish_osqp",
    "refine_on_active_set",
    "solve_clarabel",
    "solve_osqp",
]


@dataclass(frozen=True)
class NativeSolution:
    """What a native solve returns (``status``: optimal, infeasible, inaccurate, ...) and its duals
    in OSQP's sign convention (``Pz + q + A'y = 0``; ``y_i > 0`` pushes on the upper bound)."""

    status: str
    z: np.ndarray | None
    y: np.ndarray | None
    iterations: int
    seconds: float = 0.0
    residuals: dict[str, float] = field(default_factory=dict)  # of z, by row group
    pz: np.ndarray | None = None  # ``P z`` when the KKT check computed it (the objective reads it)


CLARABEL_SETTINGS: dict[str, Any] = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "max_iter": 200,
    "verbose": False,
}
POLISHED_CLARABEL_SETTINGS: dict[str, Any] = {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8}
"""Clarabel's own default tolerances, where OSQP polishes its point (``refine=False``): that point only
names the active set, the polish is certified by KKT and a failed one falls back to the tight solve.
Two or three fewer interior iterations (docs/decisions/continuous-and-verify.md: 1e-6 was too loose at 2,000 assets)."""
DENSE_KKT_SETTINGS: dict[str, Any] = {"direct_solve_method": "faer", "max_threads": 1}
"""Clarabel's factorisation where ``P`` has a dense block (a full-rank covariance squared on the
weights): faer's supernodal kernels, not qdldl's scalar elimination (faster there only, see
docs/decisions/dense-covariance.md); one thread, as its sums depend on the thread count."""
# 1e-1 first: polishing often finds the active set there already (the KKT check refuses it otherwise).
_OSQP_EPS = (1e-1, 1e-2, 1e-3, 1e-5, 1e-7)
_TAXABLE_EPS = _OSQP_EPS[2:]  # from 1e-3: a taxable climb reads where ADMM lands
COLD_ITERATIONS = 600
"""ADMM iterations a cold solve may take before Clarabel answers (and OSQP polishes its point):
above what slack limits take, below what binding ones do (docs/decisions/dense-covariance.md)."""
POLISHED_RESIDUAL = 1e-11
"""Largest row residual accepted from a polished OSQP point, which sits on its active bounds: the
whole-share rounding needs the point inside them (else Clarabel's answer is used)."""
KKT_TOLERANCE = 1e-7
"""Stationarity and complementarity accepted from a polished OSQP point, relative to the size of
the (scaled) problem's linear part and objective."""


def kkt_certified(
    qp: NativeQP, z: np.ndarray, y: np.ndarray, az: np.ndarray | None = None, pz: np.ndarray | None = None
) -> bool:
    """True when ``(z, y)`` satisfies the optimality conditions of ``qp`` (feasibility is checked
    separately): ``Pz + q + A'y ~ 0``, and each dual pushes only on a bound its row touches.
    ``az`` and ``pz`` are ``A z`` and ``P z`` if the caller has them already. A multiplier on an infinite bound is noise
    (OSQP leaves ~1e-18 there) and is dropped before stationarity is checked."""
    y = np.where(np.where(y > 0, np.isfinite(qp.upper), np.isfinite(qp.lower)), y, 0.0)
    pz = qp.hess(z) if pz is None else pz
    stationarity = float(np.abs(pz + qp.q + qp.a_t_times(y)).max(initial=0.0))
    size = max(1.0, float(np.abs(qp.q).max(initial=0.0)))
    if stationarity > KKT_TOLERANCE * size:
        return False
    az = qp.A @ z if az is None else az
    # Each multiplier times its row's distance to the bound it pushes on (only there: the other
    # bound may be infinite), written into zeros.
    up = np.multiply(y, qp.upper - az, out=np.zeros(len(y)), where=y > 0)
    down = np.multiply(-y, az - qp.lower, out=np.zeros(len(y)), where=y < 0)
    gap = float(np.abs(up).sum() + np.abs(down).sum())
    objective = abs(qp.objective(z, pz)) * qp.scale
    return bool(np.isfinite(gap) and gap <= KKT_TOLERANCE * max(1.0, objective))


def held_to_bounds(qp: NativeQP, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, float]] | None:
    """``z`` with each trade clipped into its own bounds and the columns they define (turnover,
    net purchase, auxiliaries) recomputed from them, with its row residuals -- when that point
    keeps every row within :data:`POLISHED_RESIDUAL` and ``(point, y)`` is a certified optimum;
    else None. An ADMM point's trades sit ~1e-9 outside the bounds they are active on, which
    only the whole-share step would see."""
    n = qp.n
    buy = np.clip(z[:n], qp.lower[:n], qp.upper[:n])
    sell = np.clip(z[n : 2 * n], qp.lower[n : 2 * n], qp.upper[n : 2 * n])
    point = qp.point(buy, sell, float(z[2 * n]) * qp.cost_unit)
    az = qp.A @ point
    residuals = qp.residuals(point, az)
    if max(residuals.values(), default=0.0) > POLISHED_RESIDUAL or not kkt_certified(qp, point, y, az):
        return None
    return point, residuals


def refine_on_active_set(qp: NativeQP, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact solution of ``qp``'s KKT system on the active set the multipliers ``y`` name (rows
    with a multiplier above noise held at the bound it pushes on, equality rows always), or None
    when that system is singular or its solution is not a certified optimum within the rows.

    A deterministic function of the problem and its active set: whichever solver, warm start or
    workspace found ``(z, y)``, the same request gets the same bits. ADMM and interior-point
    answers differ by ~1e-9 of value, more than a fractional lot (1e-6 share), so without this a
    fractional request's trades changed with what the process had solved before."""
    from scipy.sparse.linalg import splu

    size = max(1.0, float(np.max(np.abs(y), initial=0.0)))
    equal = qp.lower == qp.upper
    up = (y > 1e-9 * size) & np.isfinite(qp.upper) | equal
    down = (y < -1e-9 * size) & np.isfinite(qp.lower) & ~up
    active = np.flatnonzero(up | down)
    bound = np.where(up, qp.upper, qp.lower)[active]
    full = (qp.P + qp.P.T - sparse.diags(qp.P.diagonal())).tocsc()
    rows = qp.A[active, :]
    kkt = sparse.bmat([[full, rows.T], [rows, None]], format="csc")
    # Quasi-definite regularisation, so that a free buy/sell split (zero costs) or dependent
    # active rows still factor; two refinement steps against the exact system remove its bias.
    nz, k = len(z), len(active)
    delta = 1e-10 * max(1.0, float(np.max(np.abs(full.diagonal()), initial=0.0)))
    shift = sparse.diags(np.concatenate([np.full(nz, delta), np.full(k, -1e-12 * delta)]), format="csc")
    rhs = np.concatenate([-qp.q, bound])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            factor = splu((kkt + shift).tocsc())
            solution = factor.solve(rhs)
            for _ in range(2):
                solution = solution + factor.solve(rhs - kkt @ solution)
    except (RuntimeError, ValueError):
        return None
    refined, multipliers = solution[:nz], np.zeros(len(y))
    multipliers[active] = solution[nz:]
    if not np.all(np.isfinite(solution)):
        return None
    az = qp.A @ refined
    if max(qp.residuals(refined, az).values(), default=0.0) > POLISHED_RESIDUAL:
        return None
    if np.any(multipliers[up & ~equal] < -1e-9 * size) or np.any(multipliers[down] > 1e-9 * size):
        return None
    return (refined, multipliers) if kkt_certified(qp, refined, multipliers, az) else None


ADMM_PER_INTERIOR_ITERATION = 40
"""How many ADMM iterations cost about one interior-point iteration (a back-solve against a
factorisation, measured on the 431-asset binding book)."""


STALLED_ITERATIONS = 200
"""A warm solve's ADMM iterations on a workspace whose last ADMM solve ran out of iterations: far
more than a warm start near the answer takes, far fewer than a stalled one wastes."""


def _budget(workspace: _Workspace, started: bool, taxable: bool = False) -> int:
    """The ADMM iterations a solve on ``workspace`` may take: a cold one ``COLD_ITERATIONS``; a
    warm one ``max_iter``, or where the interior solver answered this structure as many as its
    iterations would cost (a count, not a clock: the answer may not depend on machine load); after
    a stall ``STALLED_ITERATIONS``, none for a taxable account's QP (``taxable``)."""
    if not workspace.solved and not started:
        return COLD_ITERATIONS
    cap = int(OSQP_SETTINGS["max_iter"])
    if workspace.stalled and not started:  # its last ADMM ran out: the interior solver answers soon
        # A taxable climb's post-stall ADMM mostly stalls again (docs/decisions/tax-netting.md): Clarabel now.
        cap = 0 if taxable else STALLED_ITERATIONS
    if workspace.interior_iterations is not None:
        cap = min(cap, max(COLD_ITERATIONS, ADMM_PER_INTERIOR_ITERATION * workspace.interior_iterations))
    if taxable and (started or workspace.interior_iterations is None):
        # A climb's own warm start (``_solve._ladder_start``), or a workspace the interior solver has
        # not priced: no more than a cold solve before Clarabel answers.
        cap = min(cap, COLD_ITERATIONS)
    return cap


def solve_osqp(
    qp: NativeQP, key: Hashable, time_limit: float, start: tuple[np.ndarray, np.ndarray] | None = None
) -> NativeSolution:
    """Solve with OSQP, reusing (and warm-starting from) the workspace kept for ``key``, or from
    ``start`` (primal, dual) when given.

    ADMM runs at loose tolerances and polishing does the rest; when the polished point fails the
    KKT check (ADMM had not yet found the active set), ADMM goes on from where it stopped at
    tighter tolerances before the caller falls back to Clarabel.
    """
    workspace = _workspace(qp, key, time_limit)
    with workspace.lock:
        workspace.load(qp, time_limit)
        if start is not None:
            workspace.solver.warm_start(x=start[0], y=start[1])
        budget = _budget(workspace, start is not None, taxable=qp.ladder is not None)
        workspace.solved = True
        try:
            found = _admm(qp, workspace, budget)
        finally:
            # Back to the first tolerance; the cap stays, as every solve sets its own budget.
            workspace.tune(_OSQP_EPS[0], workspace.tolerance[1])
        if start is None and found.status != "infeasible":
            workspace.stalled = found.z is None and budget > 0
    return found


def _admm(qp: NativeQP, workspace: _Workspace, budget: int) -> NativeSolution:
    """ADMM on ``workspace`` (``qp`` loaded) at each tolerance in turn, polished, within ``budget``
    iterations: an optimum certified by KKT, or why not."""
    iterations = 0
    # Not for a taxable account: its climb over lots reads where ADMM lands (docs/decisions/continuous-and-verify.md).
    for eps in _OSQP_EPS if qp.ladder is None else _TAXABLE_EPS:
        if iterations >= budget:
            break
        workspace.tune(eps, budget - iterations)
        raw, steps, polish, z, y = workspace.solve()
        iterations += steps
        if "primal infeasible" in raw:
            return NativeSolution("infeasible", None, None, iterations)
        if raw != "solved":
            return NativeSolution(raw.replace(" ", "_"), None, None, iterations)
        if polish != 1:
            # Polishing fails on a netting region's degenerate problem (the region's row
            # prices the sells, and hundreds of bounds hold with no multiplier); ADMM's own
            # point at the tightest tolerance may hold (objective within ~1e-8 of
            # Clarabel's on the 431-asset book's regions).
            held = held_to_bounds(qp, z, y) if eps == _OSQP_EPS[-1] else None
            if held is not None:
                return NativeSolution("optimal", held[0], y, iterations, residuals=held[1])
            continue  # ADMM has not found the active set yet: go on, tighter
        az = qp.A @ z
        residuals = qp.residuals(z, az)
        if max(residuals.values()) > POLISHED_RESIDUAL:
            # Polishing a degenerate problem (zero costs leave buy/sell splits free)
            # lands ~1e-9 outside its bounds; more ADMM does not change that, but the
            # point clipped into its trades' bounds may keep every row.
            held = held_to_bounds(qp, z, y)
            if held is not None:
                return NativeSolution("optimal", held[0], y, iterations, residuals=held[1])
            break
        pz = qp.hess(z)
        if kkt_certified(qp, z, y, az, pz):
            return NativeSolution("optimal", z, y, iterations, residuals=residuals, pz=pz)
    return NativeSolution("inaccurate", None, None, iterations)


def polish_osqp(qp: NativeQP, key: Hashable, start: NativeSolution, time_limit: float) -> NativeSolution:
    """OSQP warm-started at ``start`` (another solver's answer): it stops at once and polishes, so
    the answer is the exact solution of the active set's KKT system, whichever solver and warm
    start got there. That keeps a repeated request bit-for-bit the same (an interior point stops
    ~1e-9 inside its bounds), and leaves a warm workspace for the next request of this structure.
    """
    if start.z is None or start.y is None:
        return start
    polished = solve_osqp(qp, key, time_limit, (start.z, start.y))
    with _cache_lock:
        workspace = _cache.get(key)
    if workspace is not None:
        workspace.trusted = polished.z is not None
        workspace.interior_iterations = start.iterations
    return polished


def has_dense_block(qp: NativeQP) -> bool:
    """Whether ``P`` holds a dense block on the weights (then every factorisation of the KKT
    system is a dense one of the assets' size)."""
    return qp.dense_w is not None


class _AsLists:
    """A CSC matrix as Clarabel's Python interface reads it, its arrays as lists: pyo3 takes a
    list's items as they are and a numpy array's one numpy scalar at a time (a fifth of Clarabel's
    set-up at 431 assets); the same values, so the same solve."""

    __slots__ = ("data", "has_canonical_format", "indices", "indptr", "nnz", "shape")

    def __init__(self, matrix: sparse.csc_matrix) -> None:
        self.data, self.indices, self.indptr = matrix.data.tolist(), matrix.indices.tolist(), matrix.indptr.tolist()
        self.nnz, self.shape, self.has_canonical_format = matrix.nnz, matrix.shape, matrix.has_canonical_format


_LISTS = [True]  # whether this Clarabel takes the lists (another version may read only arrays)


def clarabel_solver(
    p: sparse.csc_matrix,
    q: np.ndarray,
    a: sparse.csc_matrix,
    b: np.ndarray,
    cones: list[Any],
    settings: Any,
    lists: bool = True,
) -> Any:
    """``clarabel.DefaultSolver(p, q, a, b, cones, settings)``, given its data as lists (:class:`_AsLists`)
    unless ``lists`` is False (a dense block: its factorisation dwarfs the reading, and the lists
    would hold every entry as a Python float at once)."""
    import clarabel

    if lists and _LISTS[0]:
        try:
            return clarabel.DefaultSolver(_AsLists(p), q.tolist(), _AsLists(a), b.tolist(), cones, settings)
        except (TypeError, AttributeError):
            _LISTS[0] = False
    return clarabel.DefaultSolver(p, q, a, b, cones, settings)


def solve_clarabel(qp: NativeQP, time_limit: float, refine: bool = True) -> NativeSolution:
    """Solve with Clarabel (interior point), built fresh: ranges split into two one-sided rows;
    ``refine=False``: for a point OSQP polishes, without iterative refinement of each step, at
    :data:`POLISHED_CLARABEL_SETTINGS`' tolerances and without its residuals."""
    import clarabel

    lower, upper = qp.lower, qp.upper
    equal = np.isfinite(lower) & (lower == upper)
    has_upper = np.isfinite(upper) & ~equal
    has_lower = np.isfinite(lower) & ~equal
    # The rows in cone order taken at once, the lower sides negated in place (a third of the
    # time of three slices stacked).
    a = qp.A.tocsr()[np.concatenate([np.flatnonzero(equal), np.flatnonzero(has_upper), np.flatnonzero(has_lower)])]
    a.data[a.indptr[int(equal.sum() + has_upper.sum())] :] *= -1.0
    rhs = np.concatenate([upper[equal], upper[has_upper], -lower[has_lower]])
    cones = [clarabel.ZeroConeT(int(equal.sum())), clarabel.NonnegativeConeT(int(has_upper.sum() + has_lower.sum()))]
    settings = clarabel.DefaultSettings()
    for name, value in CLARABEL_SETTINGS.items():
        setattr(settings, name, value)
    if not refine:
        for name, value in POLISHED_CLARABEL_SETTINGS.items():
            setattr(settings, name, value)
    settings.time_limit = time_limit
    settings.iterative_refinement_enable = refine
    if has_dense_block(qp):
        for name, value in DENSE_KKT_SETTINGS.items():
            setattr(settings, name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = clarabel_solver(qp.P, qp.q, a.tocsc(), rhs, cones, settings, lists=not has_dense_block(qp))
        result = solver.solve()
    raw = str(result.status)
    iterations = int(result.iterations)
    if "PrimalInfeasible" in raw:
        return NativeSolution("infeasible", None, None, iterations)
    if raw != "Solved":
        return NativeSolution(raw.lower(), None, None, iterations)
    # Back to one dual per row, OSQP's convention: y = dual(upper side) - dual(lower side).
    duals = np.asarray(result.z, dtype=float)
    y = np.zeros(len(lower))
    n_eq, n_up = int(equal.sum()), int(has_upper.sum())
    y[equal] = duals[:n_eq]
    y[has_upper] += duals[n_eq : n_eq + n_up]
    y[has_lower] -= duals[n_eq + n_up :]
    z = np.array(result.x, dtype=float)
    # A point OSQP polishes (``refine=False``) only names its active set: its residuals are never read.
    residuals = qp.residuals(z) if refine else {}
    return NativeSolution("optimal", z, y, iterations, float(result.solve_time), residuals)
