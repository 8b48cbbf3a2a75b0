"""The order a taxable account's continuous solve relieves each asset's lots in, and the solves
that choose it: the relaxation (no side fixed) over every choice of lots.

The native solve relieves each asset's lots in one order (``LotBook``'s). Without a binding gain
budget the tax order is the optimum over every choice of lots; with one, the optimum relieves lots
in the order of their tax plus the budget's price times their gain (:meth:`LotBook.priced`), a price
known only after the solve. :func:`priced_solve` solves again in the order its price makes
cheapest until the order stops changing: in the tax order a $20k budget on the 431-asset book was
met by the continuous solve, but the lots its price made cheapest realised $11.2k, and the rounding,
local to that point, kept $11.9k of the $20k (issue 21).

A netting region's rows need not be convex along that order: where no climb over the lots reaches
the region, :func:`toward_region` reorders them toward its rows (or proves it has no point).
"""

from __future__ import annotations

import numpy as np

from finwiz.errors import SolverError
from finwiz.optimizer.discrete._rounding import gain_price
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import NoLadderPointError, ladder_of
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, SolveOutcome, native_qp, solve_terms
from finwiz.optimizer.tax._bound import lagrangian_bound

__all__ = ["priced", "priced_solve", "relaxation", "start_at", "toward_region"]

_PRICINGS = 4
"""At most how many re-solves in the order a binding gain budget's price makes cheapest (on the
431-asset book with $20k and $50k budgets the order stopped changing after two)."""


def priced(model: Model, outcome: SolveOutcome) -> Model:
    """``model`` with its lots in the order ``outcome``'s gain price makes cheapest; its climb
    over lots starts at the lots that hold ``outcome``'s sells in that order."""
    lots = model.data.lots
    assert lots is not None
    book = lots.priced(gain_price(model, outcome.duals), outcome.net_prices)
    if book is lots:
        return model
    priced = model.with_data(model.data.evolve(lots=book))
    start_at(priced, outcome.sell)
    return priced


def start_at(model: Model, sell: np.ndarray) -> None:
    """Start ``model``'s first climb over lots at the lots that hold ``sell`` (``V_ref`` units)."""
    form = next((d.tax for d in model.described if d.tax is not None), None)
    if form is not None:
        ladder = ladder_of(form, model.data.n)
        if ladder.settled.segments is None:
            ladder.settled.segments = ladder.containing(sell)


def priced_solve(
    model: Model, solver: str, limit: float, outcome: SolveOutcome | None = None
) -> tuple[Model, SolveOutcome]:
    """The continuous optimum of ``model`` over every choice of lots: solved, then solved again in
    the order its gain budget's price makes cheapest until that order stops changing (a better
    objective kept); ``outcome``: the first solve, when the caller has it. Raises
    :class:`ProvenInfeasibleError` as ``solve_terms`` does."""
    given = model
    pushed = False
    if outcome is None:
        model, outcome = toward_region(model, solver, limit)
        pushed = model is not given
    for _ in range(_PRICINGS):
        reordered = priced(model, outcome)
        lots, before = reordered.data.lots, model.data.lots
        assert lots is not None
        assert before is not None
        if lots.same_order(before):
            if pushed and not _certified(given, model, outcome):
                break
            return model, outcome
        try:
            again = solve_terms(reordered, solver, time_limit=limit, per_lot=False)
        except (ProvenInfeasibleError, SolverError, NoLadderPointError):
            break
        if again.objective > outcome.objective + 1e-12 * max(1.0, abs(outcome.objective)):
            break
        model, outcome = reordered, again
    if pushed:  # an order found by a push, not the one its own prices make cheapest: not the optimum
        return given, solve_terms(given, solver, time_limit=limit)
    return model, outcome


def _certified(given: Model, solved: Model, outcome: SolveOutcome) -> bool:
    """Whether ``outcome`` (``solved``: ``given`` with its lots reordered) is ``given``'s optimum
    over every choice of lots: its own multipliers' Lagrangian bound (``_bound``) reaches it."""
    form = next((d.tax for d in solved.described if d.tax is not None), None)
    settled = None if form is None else ladder_of(form, solved.data.n).settled
    if settled is None or settled.qp is None or settled.y is None:
        return False
    aim = outcome.objective - _CERTAIN * max(abs(outcome.objective), 1e-4)
    bound = lagrangian_bound(given, settled.qp, settled.y, target=aim)
    return bound is not None and bound >= aim


_CERTAIN = 1e-6
"""How close (relative) a Lagrangian bound must come to a reordered solve's objective to certify it:
the solves agree to ~1e-8."""

_PUSHES = (1.0, 100.0)
"""Net prices (in units of the tax weight) tried toward a netting region whose rows no climb over
its lots in their order reaches: the first orders by tax and nets alike, the second by the nets."""


def toward_region(model: Model, solver: str, limit: float) -> tuple[Model, SolveOutcome]:
    """``solve_terms`` of ``model``; where no climb over its lots reaches its netting region's rows,
    with the lots in the order a price on the rows the year so far breaks makes cheapest (the lots
    that move the nets into the region first, where the rows are convex along the order); one
    variable per lot (through cvxpy) only where no such order does. On the 10-year 431-asset
    backtest the region where a short-term loss offsets a long-term gain needed it (a year's
    short-term gains to undo by loss lots that the tax order put after long-term ones)."""
    try:
        return model, solve_terms(model, solver, time_limit=limit, per_lot=False)
    except NoLadderPointError:
        pass
    lots = model.data.lots
    assert lots is not None
    if _unreachable(model):
        raise ProvenInfeasibleError
    s0, g0 = lots.year_start()
    rows = () if lots.region is None else lots.region.rows
    broken = [(a, b) for a, b, bound in rows if a * s0 + b * g0 > bound]
    for push in _PUSHES if broken else ():
        book = lots.priced(0.0, push * lots.tax_weight * np.sum(broken, axis=0))
        if book is lots:
            break
        pushed = model.with_data(model.data.evolve(lots=book))
        try:
            return pushed, solve_terms(pushed, solver, time_limit=limit, per_lot=False)
        except NoLadderPointError:
            continue
    return model, solve_terms(model, solver, time_limit=limit)


def _unreachable(model: Model) -> bool:
    """Whether no sale of the lots within each asset's sell bound reaches ``model``'s netting region
    (``Ladder.unreachable``; the solve's tolerance in currency as slack): no point, no solve."""
    qp = native_qp(model)
    if qp is None or qp.ladder is None:
        return False
    assert model.kept.qp_base is not None
    data = model.data
    slack = (1e-6 * data.ref_value + 0.01) / data.ref_value
    return qp.ladder.unreachable(model.kept.qp_base.sell_cap, slack)


def relaxation(model: Model, solver: str, limit: float) -> tuple[Model, SolveOutcome]:
    """:func:`_priced_solve` of ``model`` with no side fixed: the relaxation whose optimum bounds
    every answer (kept with the model: the netting regions' bound is the pipeline's first solve).
    Raises as ``solve_terms`` does."""
    if model.kept.relaxation is None:
        model.kept.relaxation = priced_solve(model, solver, limit)
    return model.kept.relaxation
