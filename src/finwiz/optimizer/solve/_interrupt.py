"""Ctrl-C during a solve is the user's, never a solver failure.

SCIP and OSQP catch SIGINT themselves: they stop at once and report it as a status
(``userinterrupt``, ``interrupted``) instead of letting Python raise ``KeyboardInterrupt``.
Read as any other status, a Ctrl-C became ``SolverError: SCIP failed`` (a batch recorded a
failure and went on) or sent the problem to the next solver (Clarabel finished it). These
helpers turn those statuses back into ``KeyboardInterrupt``. Solvers that leave SIGINT to
Python (Clarabel, HiGHS, scipy's ``milp``) raise it themselves once they return; no finwiz
``except`` clause catches it (they catch ``Exception`` or narrower). ``cvxpy_solver`` also keeps
HiGHS's banner off standard output.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["cvxpy_solver", "raise_if_interrupted", "raise_if_osqp_interrupted"]

_INTERRUPTED = frozenset({"interrupted", "userinterrupt"})


def raise_if_interrupted(status: str) -> None:
    """``KeyboardInterrupt`` when a native solver's ``status`` says Ctrl-C stopped it."""
    if status in _INTERRUPTED:
        raise KeyboardInterrupt


def raise_if_osqp_interrupted(problem: Any) -> None:
    """After cvxpy raised ``SolverError`` for OSQP: ``KeyboardInterrupt`` when Ctrl-C stopped it.

    cvxpy maps OSQP's ``interrupted`` to a solver error and the next solver took over. The
    status is read from the results cvxpy keeps for its warm start (``solver_cache``), stored
    before it raises; the solve call itself stays as it is (its ``solver="OSQP"`` keys cvxpy's
    compiled-problem cache and the workspace it warm-starts).
    """
    cached = getattr(problem, "_solver_cache", None) or {}
    entry = cached.get("OSQP")
    info = getattr(entry[2], "info", None) if isinstance(entry, tuple) and len(entry) == 3 else None
    if info is not None:
        raise_if_interrupted(str(getattr(info, "status", "")).lower().split(" ")[0])


@functools.cache
def _scip() -> Any:
    """cvxpy's SCIP interface, raising ``KeyboardInterrupt`` when Ctrl-C stopped the solve (cvxpy
    maps SCIP's ``userinterrupt`` to a solver error, or, with an incumbent, to an inaccurate
    optimum). Built on first use: a request of built-in terms never imports cvxpy."""
    from cvxpy.reductions.solvers.conic_solvers.scip_conif import SCIP

    class InterruptibleSCIP(SCIP):  # type: ignore[misc]
        def name(self) -> str:
            return "FINWIZ_SCIP"  # cvxpy wants a custom interface named apart from its own

        def _solve(self, model: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
            solution: dict[str, Any] = super()._solve(model, *args, **kwargs)
            raise_if_interrupted(str(model.getStatus()))
            return solution

    return InterruptibleSCIP()


def cvxpy_solver(name: str) -> Any:
    """What to pass as ``solver=`` to ``cvxpy.Problem.solve`` for the solver called ``name``
    (one instance: cvxpy keys its compiled-problem cache by this argument)."""
    if name.upper() == "HIGHS":
        _spend_highs_banner()
    return _scip() if name.upper() == "SCIP" else name


@functools.cache
def _spend_highs_banner() -> None:
    """HiGHS prints its banner once per process, from the first ``highspy.Highs()`` (cvxpy makes
    one per solve) and before any option can be set: spent here on a run logged to no console, so
    no HiGHS solve through cvxpy writes to standard output (highspy's bare binding, as in
    ``discrete/_rounding``)."""
    import highspy

    h = highspy._Highs()  # type: ignore[attr-defined]
    h.setOptionValue("log_to_console", False)
    h.passModel(highspy.HighsLp())
    h.run()
