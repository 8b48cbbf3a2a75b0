"""Ctrl-C is the user's, not a solver failure: it escapes rebalance() and stops a batch.

Solvers with a SIGINT handler of their own (SCIP, OSQP) stop at Ctrl-C and report it as a
status; finwiz used to read that status as a failure ("SolverError: SCIP failed") or try the
next solver. The interrupt is simulated with the very status a Ctrl-C gives: SCIP's
``interruptSolve`` (what its own SIGINT handler calls) and OSQP's "interrupted".
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pyscipopt
import pytest
from cvxpy.reductions.solvers.conic_solvers import scip_conif
from cvxpy.reductions.solvers.qp_solvers import osqp_qpif

import finwiz.optimizer.solve._solve as solve_module
from finwiz import Holding, PortfolioConfiguration
from finwiz.batch import rebalance_many
from finwiz.optimizer import rebalance
from finwiz.optimizer.solve._solvers import NativeSolution

PRICES = {"AAA": 10.0, "BBB": 20.0, "CCC": 7.0}


def account(i: int) -> PortfolioConfiguration:
    return PortfolioConfiguration(
        holdings=[
            Holding(symbol="AAA", shares=10 + i),
            Holding(symbol="BBB", shares=5),
            Holding(symbol="CCC", shares=3),
        ],
        target_weights={"AAA": 0.4, "BBB": 0.3, "CCC": 0.3},
        cash=100.0 * i,
        tolerance=0.0,
        min_trade_size=0.0,
    )


class _CtrlC(pyscipopt.Eventhdlr):  # type: ignore[misc]
    """Interrupts SCIP at its first presolve round or node, as its SIGINT handler does."""

    def eventinit(self) -> None:
        kinds = pyscipopt.SCIP_EVENTTYPE
        self.model.catchEvent(kinds.PRESOLVEROUND | kinds.NODEFOCUSED | kinds.LPSOLVED, self)

    def eventexec(self, event: Any) -> None:
        self.model.interruptSolve()


@pytest.fixture
def scip_solves(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts SCIP solves; the ones numbered in ``interrupt`` get a Ctrl-C."""
    state = {"solves": 0, "interrupt": 1}
    original = scip_conif.SCIP._solve

    def solve(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        state["solves"] += 1
        if state["solves"] == state["interrupt"]:
            model.includeEventhdlr(_CtrlC(), "ctrl_c", "a Ctrl-C during the solve")
        return original(self, model, *args, **kwargs)

    monkeypatch.setattr(scip_conif.SCIP, "_solve", solve)
    return state


def test_ctrl_c_during_an_exact_solve_escapes_as_keyboard_interrupt(scip_solves: dict[str, int]) -> None:
    with pytest.raises(KeyboardInterrupt):
        rebalance(account(1), PRICES, exact=True)
    assert scip_solves["solves"] == 1
    scip_solves["interrupt"] = 0  # the next solve runs undisturbed
    assert rebalance(account(1), PRICES, exact=True).trades


def test_ctrl_c_stops_a_batch_instead_of_failing_one_account(scip_solves: dict[str, int]) -> None:
    scip_solves["interrupt"] = 2
    with pytest.raises(KeyboardInterrupt):
        rebalance_many([account(i) for i in range(4)], PRICES, exact=True, progress=False)
    assert scip_solves["solves"] == 2  # the accounts after the interrupted one never ran


def test_ctrl_c_during_osqp_is_not_answered_by_the_next_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    # OSQP stops at SIGINT with status "interrupted"; Clarabel used to take over and finish.
    calls: list[str] = []

    def interrupted(*args: Any, **kwargs: Any) -> NativeSolution:
        calls.append("osqp")
        return NativeSolution("interrupted", None, None, 12)

    def clarabel(*args: Any, **kwargs: Any) -> NativeSolution:
        calls.append("clarabel")
        return NativeSolution("solver_error", None, None, 0)

    monkeypatch.setattr(solve_module, "solve_osqp", interrupted)
    monkeypatch.setattr(solve_module, "solve_clarabel", clarabel)
    with pytest.raises(KeyboardInterrupt):
        rebalance(account(2), PRICES, solver="OSQP")
    assert calls == ["osqp"]


def test_ctrl_c_during_osqp_through_cvxpy_escapes_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The models that are not a plain QP go through cvxpy, which reads OSQP's "interrupted" as a
    # solver error: the next solver used to take over there too.
    calls: list[str] = []

    original = osqp_qpif.OSQP.solve_via_data

    class Interrupted:
        """OSQP's results as SIGINT leaves them: status "interrupted" (cvxpy: a solver error)."""

        def __init__(self, real: Any) -> None:
            self._real = real
            self.info = SimpleNamespace(status="interrupted", status_val=10, run_time=0.01, iter=real.info.iter)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    def interrupted(self: Any, data: Any, warm_start: bool, verbose: bool, opts: Any, cache: Any = None) -> Any:
        calls.append("osqp")
        results = Interrupted(original(self, data, warm_start, verbose, opts, cache))
        if cache is not None:  # cvxpy keeps the results for its warm start
            cache["OSQP"] = (cache["OSQP"][0], data, results)
        return results

    monkeypatch.setattr(solve_module, "native_qp", lambda *args, **kwargs: None)  # the cvxpy route
    monkeypatch.setattr(osqp_qpif.OSQP, "solve_via_data", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rebalance(account(2), PRICES, solver="OSQP")
    assert calls == ["osqp"]
