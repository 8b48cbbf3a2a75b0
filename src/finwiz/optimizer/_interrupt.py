"""Ctrl-C during a solve is the user's, never a solver failure.

SCIP and OSQP catch SIGINT themselves: they stop at once and report it as a status
(``userinterrupt``, ``interrupted``) instead of letting Python raise ``KeyboardInterrupt``.
Read as any other status, a Ctrl-C became ``SolverError: SCIP failed`` (a batch recorded a
failure and went on) or sent the problem to the next solver (Clarabel finished it). These
helpers turn those statuses back into ``KeyboardInterrupt``. Solvers that leave SIGINT to
Python (Clarabel, HiGHS, scipy's ``milp``) raise it themselves once they return; no finwiz
``except`` clause catches it (they catch ``Exception`` or narrower).
"""

from __future__ import annotations

from typing import Any

from cvxpy.reductions.solvers.conic_solvers.scip_conif import SCIP

__all__ = ["cvxpy_solver", "raise_if_interrupted"]

_INTERRUPTED = frozenset({"interrupted", "userinterrupt"})


def raise_if_interrupted(status: str) -> None:
    """``KeyboardInterrupt`` when a native solver's ``status`` says Ctrl-C stopped it."""
    if status in _INTERRUPTED:
        raise KeyboardInterrupt


class _InterruptibleSCIP(SCIP):  # type: ignore[misc]
    """cvxpy's SCIP interface, raising ``KeyboardInterrupt`` when Ctrl-C stopped the solve
    (cvxpy maps SCIP's ``userinterrupt`` to a solver error, or, with an incumbent, to an
    inaccurate optimum)."""

    def name(self) -> str:
        return "FINWIZ_SCIP"  # cvxpy wants a custom interface named apart from its own

    def _solve(self, model: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        solution: dict[str, Any] = super()._solve(model, *args, **kwargs)
        raise_if_interrupted(str(model.getStatus()))
        return solution


def cvxpy_solver(name: str) -> str | SCIP:
    """What to pass as ``solver=`` to ``cvxpy.Problem.solve`` for the solver called ``name``."""
    return _InterruptibleSCIP() if name == "SCIP" else name
