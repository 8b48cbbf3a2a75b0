"""The continuous stage: the model's optimum, solved again while an iterative term asks.

A term that needs more than one solve (the trade count's re-weighted L1 and its debias solve, or
a user's) implements :meth:`~finwiz.optimizer.Term.refine`: after each solve it returns the data
of the next one (or alternatives, tried in order until one solves), or None once it is settled.
Each re-solve is of the same structure, so the native QP's OSQP workspace is reused: its values
updated in place and warm-started from the last answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finwiz.errors import SolverError
from finwiz.optimizer._trace import note
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, SolveOutcome, solve_terms
from finwiz.optimizer.verify._diagnosis import explain_infeasibility

__all__ = ["MAX_SOLVES", "solve_continuous"]

MAX_SOLVES = 50
"""At most this many continuous solves per stage: terms that never settle stop here (noted)."""


def solve_continuous(
    model: Model,
    solver: str,
    time_limit: float,
    *,
    diagnose: bool = True,
    first: SolveOutcome | None = None,
) -> SolveOutcome:
    """The continuous optimum of ``model``, refined until no term asks for another solve. An
    infeasible request is diagnosed (:class:`~finwiz.errors.InfeasibleRebalanceError`) unless
    ``diagnose`` is False: for the variants the whole-share stage tries, whose infeasibility only
    means "keep the first answer" (a diagnosis costs far more than the solve).
    ``first`` is the model's first solve when the caller has it already (a taxable account's)."""
    try:
        outcome = first if first is not None else solve_terms(model, solver, time_limit=time_limit)
    except ProvenInfeasibleError:
        if not diagnose:
            raise
        raise explain_infeasibility(model) from None
    trades = [outcome.trades]  # each solve's, computed once (every refine reads them all)
    while len(trades) < MAX_SOLVES:
        asked = _asked(model, list(trades))  # a list of its own, as each call had
        if not asked:
            return outcome
        step = _first_solved(model, asked, solver, time_limit)
        if step is None:  # no alternative solves: the last answer stands
            return outcome
        model, outcome = step
        trades.append(outcome.trades)
    note(f"iterative terms not settled after {MAX_SOLVES} solves: the last answer kept")
    return outcome


def _asked(model: Model, trades: Sequence[np.ndarray]) -> tuple[ProblemData, ...]:
    """The next solve's data the first unsettled term asks for (alternatives in order)."""
    for term in model.terms:
        asked = term.refine(trades, model.data)
        if asked is None:
            continue
        return (asked,) if isinstance(asked, ProblemData) else tuple(asked)
    return ()


def _first_solved(
    model: Model, asked: Sequence[ProblemData], solver: str, time_limit: float
) -> tuple[Model, SolveOutcome] | None:
    for data in asked:
        candidate = model.with_data(data)
        try:
            return candidate, solve_terms(candidate, solver, time_limit=time_limit)
        except (ProvenInfeasibleError, SolverError):
            continue
    return None
