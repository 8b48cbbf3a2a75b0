"""The OSQP workspaces kept per structure.

Accounts of one model portfolio give matrices of the same sparsity pattern, mostly with the same
values; the OSQP workspace is kept per structure and only the vectors (and, when they changed,
the matrix values) are updated, warm-started from the previous solution (``_solvers``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.optimizer.solve._csc import majors

if TYPE_CHECKING:
    from finwiz.optimizer.solve._qp import NativeQP

__all__ = ["OSQP_SETTINGS", "clear_native_cache", "native_cache_info", "plan"]

_CACHE_SIZE = 32

OSQP_SETTINGS: dict[str, Any] = {
    # Loose ADMM tolerances on purpose: polishing then solves the KKT system of the active set
    # exactly, and :func:`kkt_certified` checks the result (a wrong active set fails the check,
    # and ADMM goes on at tighter tolerances). With the cost in rate units (``build_qp``) OSQP's
    # own scaling and step size do best.
    "eps_abs": 1e-1,  # the first of ``_solvers._OSQP_EPS``: a kept workspace rests at it
    "eps_rel": 1e-1,
    "eps_prim_inf": 1e-9,
    "eps_dual_inf": 1e-9,
    "max_iter": 4_000,  # a warm solve's cap (a cold one stops at COLD_ITERATIONS); beyond, Clarabel answers
    "polishing": True,
    "polish_refine_iter": 10,
    "adaptive_rho": True,
    "warm_starting": True,
    "verbose": False,
}


@dataclass(eq=False)
class _Workspace:
    solver: Any
    p_pattern: tuple[np.ndarray, np.ndarray]
    a_pattern: tuple[np.ndarray, np.ndarray]
    p_values: np.ndarray
    a_values: np.ndarray
    bounds: tuple[np.ndarray, np.ndarray] | None = None  # (l, u) loaded now
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Whether polishing holds for this structure: at 2000 assets it leaves bounds ~1e-10 short
    # (and on zero-cost problems 1e-9), and then every request goes to Clarabel directly.
    trusted: bool = True
    # The interior-point solve's iterations on this structure: a warm ADMM solve that would cost
    # more is stopped and Clarabel answers instead (``_solvers._budget``), so the warm path never
    # costs much more than cold.
    interior_iterations: int | None = None
    solved: bool = False  # whether ADMM has run on it (a new workspace starts cold)
    stalled: bool = False  # whether its last ADMM solve (not a polish) ran out of iterations

    # The matrices last matched and loaded (weakly: a dense block is not kept alive): a
    # re-solve shares them (``_qp_build``), so neither their pattern nor their values are
    # compared again. They are never modified in place.
    matched: tuple[Any, Any] = (None, None)
    loaded: tuple[Any, Any] = (None, None)
    time_limit: float | None = None
    tolerance: tuple[float, int] = (OSQP_SETTINGS["eps_abs"], OSQP_SETTINGS["max_iter"])  # (eps, max_iter) set now
    raw: _Raw | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.raw = _Raw.of(self.solver)

    def tune(self, eps: float, max_iter: int) -> None:
        """Set ADMM's tolerance and iteration cap, only where they change (each call into OSQP's
        settings costs more than a warm solve's check of them)."""
        if (eps, max_iter) != self.tolerance:
            if self.raw is not None:
                self.raw.settings(self.solver.settings, eps_abs=eps, eps_rel=eps, max_iter=max_iter)
            else:
                self.solver.update_settings(eps_abs=eps, eps_rel=eps, max_iter=max_iter)
            self.tolerance = (eps, max_iter)

    def matches(self, qp: NativeQP) -> bool:
        # Each matrix apart: a request's P is often the last one's (``_qp_build._p_matrix``), its A not.
        p, a = self.matched
        same = _is(p, qp.P) or _same_pattern(qp.P, self.p_pattern)
        same = same and (_is(a, qp.A) or _same_pattern(qp.A, self.a_pattern))
        if same:
            self.matched = (weakref.ref(qp.P), weakref.ref(qp.A))
        return same

    def load(self, qp: NativeQP, time_limit: float) -> None:
        """Give the workspace ``qp``'s vectors (and matrix values, when they changed)."""
        update: dict[str, Any] = {}
        # A re-weighted re-solve changes q alone: OSQP's wrapper clamps every bound it is given.
        kept = self.bounds
        if kept is None or not (np.array_equal(qp.lower, kept[0]) and np.array_equal(qp.upper, kept[1])):
            update["l"], update["u"] = qp.lower, qp.upper
            self.bounds = (qp.lower.copy(), qp.upper.copy())
        same_p, same_a = _is(self.loaded[0], qp.P), _is(self.loaded[1], qp.A)
        if not same_p and not np.array_equal(qp.P.data, self.p_values):
            update["Px"] = qp.P.data
            self.p_values = qp.P.data.copy()
        if not same_a and not np.array_equal(qp.A.data, self.a_values):
            update["Ax"] = qp.A.data
            self.a_values = qp.A.data.copy()
        if not (same_p and same_a):
            self.loaded = (weakref.ref(qp.P), weakref.ref(qp.A))
        if self.raw is not None and not ({"Px", "Ax"} & update.keys()):
            self.raw.update(qp.q, update.get("l"), update.get("u"))
        else:
            self.solver.update(q=qp.q, **update)
        if time_limit != self.time_limit:
            self.solver.update_settings(time_limit=time_limit)
            self.time_limit = time_limit

    def solve(self) -> tuple[str, int, int, np.ndarray, np.ndarray]:
        """One OSQP solve: its status, ADMM iterations, polish status, and copies of ``x`` and ``y``."""
        if self.raw is not None:
            return self.raw.solve()
        result = self.solver.solve(raise_error=False)
        return _outcome(result.info, result)


class _Raw:
    """OSQP's extension solver called directly for a warm solve's two calls: the Python wrapper's
    ``solve`` copies its ~20 info fields into a namespace and ``update`` looks its infinity up
    again on every call (~15 us a solve, ~4 solves a request); the same calls, the same clamp."""

    __slots__ = ("ext",)

    def __init__(self, ext: Any) -> None:
        self.ext = ext

    @classmethod
    def of(cls, solver: Any) -> _Raw | None:
        """The extension object of an ``osqp.OSQP`` set up, or None (another version's wrapper: the
        extension is osqp 1.x's private object, so another major version goes through the wrapper)."""
        ext = getattr(solver, "_solver", None)
        calls = ("update_data_vec", "update_settings", "solve", "info", "solution")
        if not _OSQP_1 or ext is None or not all(hasattr(ext, name) for name in calls):
            return None
        return cls(ext)

    def update(self, q: np.ndarray, lower: np.ndarray | None, upper: np.ndarray | None) -> None:
        """``OSQP.update(q=, l=, u=)``: the bounds clamped to OSQP's infinity as the wrapper does."""
        lower, upper = _clamped(lower, upper)
        self.ext.update_data_vec(q=q, l=lower, u=upper)

    def settings(self, settings: Any, **values: Any) -> None:
        """``OSQP.update_settings(**values)`` for plain settings (none the wrapper renames or
        treats apart): the values set on the settings object the solver was set up with, passed on."""
        for name, value in values.items():
            setattr(settings, name, value)
        self.ext.update_settings(settings)

    def solve(self) -> tuple[str, int, int, np.ndarray, np.ndarray]:
        self.ext.solve()
        return _outcome(self.ext.info, self.ext.solution)


def _outcome(info: Any, solution: Any) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """A solve's status, ADMM iterations, polish status, and copies of ``x`` and ``y``."""
    return (
        str(info.status),
        int(info.iter),
        int(info.status_polish),
        np.array(solution.x, dtype=float),
        np.array(solution.y, dtype=float),
    )


_OSQP_1 = importlib.metadata.version("osqp").startswith("1.")


def _is(ref: Any, matrix: sparse.csc_matrix) -> bool:
    """Whether ``ref`` (a weak reference, or None) is to ``matrix`` itself."""
    return ref is not None and ref() is matrix


_cache: OrderedDict[Hashable, _Workspace] = OrderedDict()
_cache_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}


def _same_pattern(matrix: sparse.csc_matrix, pattern: tuple[np.ndarray, np.ndarray]) -> bool:
    return np.array_equal(matrix.indptr, pattern[0]) and np.array_equal(matrix.indices, pattern[1])


def plan(qp: NativeQP, key: Hashable) -> str:
    """How to solve ``qp`` under the automatic policy: ``"warm"`` (a trusted OSQP workspace of its
    pattern is kept), ``"interior"`` (one is kept but polishing does not hold for this structure)
    or ``"cold"`` (none yet)."""
    with _cache_lock:
        workspace = _cache.get(key)
    if workspace is None or not workspace.matches(qp):
        return "cold"
    return "warm" if workspace.trusted else "interior"


@functools.cache
def _algebra() -> str:
    """OSQP's default linear-algebra backend, found once: ``osqp.OSQP()`` looks for it on every call,
    trying to import each backend it lacks."""
    import osqp

    return str(osqp.default_algebra())


def _clamped(lower: np.ndarray | None, upper: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The bounds clamped to OSQP's infinity (lower from below, upper from above), as its wrapper does."""
    infinity = _infinity()
    return (
        None if lower is None else np.maximum(lower, -infinity),
        None if upper is None else np.minimum(upper, infinity),
    )


@functools.cache
def _infinity() -> float:
    """OSQP's infinity (the wrapper looks it up through ``importlib`` on each call)."""
    import osqp

    return float(osqp.constant("OSQP_INFTY", algebra=_algebra()))


def _workspace(qp: NativeQP, key: Hashable, time_limit: float) -> _Workspace:
    """The kept workspace for ``key`` (counted as a hit) or a new one set up for ``qp`` (kept,
    unless ``key`` is None: a throwaway). Callers load ``qp`` into it under its lock even when it
    is new: another thread may have found it in the cache and loaded its own request in between."""
    import osqp

    with _cache_lock:
        workspace = _cache.get(key)
        if workspace is not None and workspace.matches(qp):
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return workspace
    solver = osqp.OSQP(algebra=_algebra())
    if not _set_up(solver, qp, time_limit):
        solver.setup(qp.P, qp.q, qp.A, qp.lower, qp.upper, **OSQP_SETTINGS, time_limit=time_limit)
    workspace = _Workspace(
        solver,
        (qp.P.indptr.copy(), qp.P.indices.copy()),
        (qp.A.indptr.copy(), qp.A.indices.copy()),
        qp.P.data.copy(),
        qp.A.data.copy(),
        bounds=(qp.lower.copy(), qp.upper.copy()),
        # Its matrices and time limit are set; its q is given again by the first load (OSQP's
        # ADMM then differs from the one straight after set-up, and the answers were found so).
        loaded=(weakref.ref(qp.P), weakref.ref(qp.A)),
        time_limit=time_limit,
    )
    if key is None:
        return workspace
    with _cache_lock:
        _stats["misses"] += 1
        _cache[key] = workspace
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return workspace


def _set_up(solver: Any, qp: NativeQP, time_limit: float) -> bool:
    """``solver.setup(...)`` of ``qp`` with OSQP's settings, without the wrapper's checks and
    conversions where they change nothing (osqp 1.x, double precision, 32-bit indices, ``P`` upper
    triangular, both CSC with sorted indices): the same extension call on the same arrays. False
    (nothing done) otherwise: the caller goes through ``setup``."""
    ext = getattr(solver, "ext", None)
    if not _OSQP_1 or ext is None or solver._dtype is not np.float64 or solver._itype is not np.int32:
        return False
    p, a = qp.P, qp.A
    if not all(sparse.isspmatrix_csc(x) and x.has_sorted_indices and x.indices.dtype == np.int32 for x in (p, a)):
        return False
    if np.any(p.indices > majors(p.indptr)):  # an entry below the diagonal: the wrapper keeps triu(P)
        return False
    solver.settings = ext.OSQPSettings()
    ext.osqp_set_default_settings(solver.settings)
    for name, value in {**OSQP_SETTINGS, "time_limit": time_limit}.items():  # none the wrapper treats apart
        setattr(solver.settings, name, value)
    lower, upper = _clamped(qp.lower, qp.upper)
    solver._derivative_cache.update({"P": p, "q": qp.q, "A": a, "l": lower, "u": upper})
    solver.m, solver.n = a.shape
    # The QP's own arrays, not the wrapper's copies of them: OSQP copies its data at set-up.
    solver._solver = solver.raises_error(
        ext.OSQPSolver, ext.CSC(p), qp.q, ext.CSC(a), lower, upper, solver.m, solver.n, solver.settings
    )
    return True


def native_cache_info() -> dict[str, int]:
    """Hits, misses and size of the OSQP workspace cache of this process."""
    with _cache_lock:
        return {**_stats, "size": len(_cache)}


def clear_native_cache() -> None:
    """Drop every kept OSQP workspace."""
    with _cache_lock:
        _cache.clear()
        _stats["hits"] = _stats["misses"] = 0
