"""The netting rule in the optimizer: one solve per region of the rule, the best kept.

The year's tax (``_netting.year_tax``) is linear on each of its regions but not convex across
them (``_netting``), so the continuous stage cannot state it as one epigraph. Each region the
lots can reach is its own problem -- every lot at its region's rate of its term, the region's
rows on this rebalance's net short- and long-term gains held by the continuous solve
(``TaxForm.rows``: on the native QP, linear in each asset's sell along its lot as ``T`` and ``G``
are, ``_qp.Ladder.region_rows``; through cvxpy, one variable per lot, where the climb over lots
finds no point) -- and the answers are compared by their true objective with the exact tax (the
year's tax with the trades minus without, to the cent).

Branch and bound over the regions: each region's relaxation (no side fixed; the pipeline's first
solve, kept with the region's model) bounds every answer in it from below; the regions are run
through the whole pipeline (sides fixed, whole shares) best bound first, and a region whose bound
is no better than the best exact objective found is skipped. A region whose bound equals another's
and whose relaxed optimum lies in that other region (their common edge) runs last, and only while
the best answer is more than ``_GAP`` above its bound. The whole-share step prices moves at its
region's rates; the comparison and the result's ``TaxSummary`` use the exact rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from finwiz.errors import InfeasibleRebalanceError, SolverError
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError
from finwiz.optimizer.tax._sides import relaxation, start_at

__all__ = ["exact_objective", "over_regions"]


def _offset(model: Model) -> float:
    """What the exact tax adds to the region's linear tax, in objective units (a constant)."""
    lots = model.data.lots
    assert lots is not None
    return lots.tax_weight * lots.tax_offset() / model.data.ref_value


def exact_objective(model: Model, decided: Decided) -> float:
    """The true objective of ``decided`` with the exact netting tax in place of its region's
    linear one (``model`` the region's)."""
    lots, data = model.data.lots, model.data
    value = achieved(model, decided.shares)
    if lots is None or lots.region is None:
        return value
    sold = (-decided.shares).clip(min=0.0)
    linear = float(lots.relief(sold)[1].sum())
    return value + lots.tax_weight * (lots.exact_tax(sold) - linear) / data.ref_value


_GAP = 0.05
"""A dominated region (:meth:`_Bounded.dominates`) runs only while the best answer is farther than
this fraction from its bound: a relative gap, as a MIP solver's. On the 431-asset book the best
was 2.7 % above the bound and the dominated region's run (8 s) 4x worse; on a 5-asset book 74 %
above, and the dominated region held the optimum."""


_TIE = 1e-7
"""Two relaxation bounds this close (relative) are equal: a region's relaxed optimum is a face of
equal points, and the solves that find one (ADMM at its tightest tolerance, Clarabel) agree on its
value to ~1e-8, not to the bit."""


@dataclass(frozen=True)
class _Bounded:
    """A region's model, its relaxation's bound, and the year's nets at that relaxation's optimum."""

    bound: float
    k: int
    model: Model
    nets: tuple[float, float]
    slack: float
    sell: np.ndarray  # the relaxation's sells (``V_ref`` units)

    @property
    def consistent(self) -> bool:
        """Whether the relaxation's optimum is a point of its region (its lots relieved in the
        book's order; not so when the lots were chosen one variable each, through cvxpy)."""
        return self._holds(self)

    def _holds(self, other: _Bounded) -> bool:
        region = self.model.data.lots.region if self.model.data.lots is not None else None
        return region is not None and region.holds(*other.nets, slack=self.slack)

    def dominates(self, other: _Bounded, tolerance: float) -> bool:
        """Whether ``other`` need not run: the two bounds are equal and this region holds
        ``other``'s relaxed optimum (on their common edge, where the two taxes agree: the rule is
        continuous), or ``other``'s optimum is no point of its region; of two that hold each
        other's, the first. A better bound alone is not enough: on a 30-asset book the region whose
        relaxation was 35 % better held a whole-share answer 8x worse than its neighbour's."""
        if other is self or not self.consistent or abs(self.bound - other.bound) > tolerance:
            return False
        if not other.consistent:
            return True
        mutual = other._holds(self) and other.k < self.k
        return self._holds(other) and not mutual


def _bounded(region: Model, solver: str, limit: float) -> _Bounded | None:
    """``region`` with its relaxation's bound and optimum; None when it has no point."""
    try:
        relaxed_model, relaxed = relaxation(region, solver, limit)
    except (ProvenInfeasibleError, SolverError):
        return None  # no point in the region meets the limits (or its bound is unknown)
    lots, data = relaxed_model.data.lots, relaxed_model.data
    assert lots is not None
    s0, g0 = lots.year_start()
    short, long = lots.nets(relaxed.sell * data.ref_value / data.prices)
    slack = 1e-6 * data.ref_value + 0.01  # the solve's tolerance, in currency
    return _Bounded(relaxed.objective + _offset(region), 0, region, (s0 + short, g0 + long), slack, relaxed.sell)


def over_regions(model: Model, run: Callable[[Model], Decided], solver: str, limit: float) -> Decided:
    """``run`` (the whole pipeline) on the netting regions' models, best relaxation bound first
    (see the module docstring); the answer with the lowest exact objective, its ``model`` the
    region's. None feasible: the first refusal (a solver's failure only when no region refused)."""
    lots = model.data.lots
    assert lots is not None
    bounded: list[_Bounded] = []
    for k, book in enumerate(lots.regions()):
        region = model.with_data(dataclasses.replace(model.data, lots=book))
        if bounded and bounded[-1].model.data.lots is not None and bounded[-1].model.data.lots.same_order(book):
            start_at(region, bounded[-1].sell)  # the lots in the same order: from the last optimum
        found = _bounded(region, solver, limit)
        if found is not None:
            bounded.append(dataclasses.replace(found, k=k))
    if not bounded:  # every region refused: the first one's diagnosis names the limits
        return run(model.with_data(dataclasses.replace(model.data, lots=lots.regions()[0])))
    tolerance = _TIE * max(abs(b.bound) for b in bounded) + 1e-15
    pruned = [any(o.dominates(b, tolerance) for o in bounded) for b in bounded]
    order = sorted(range(len(bounded)), key=lambda i: (pruned[i], bounded[i].bound, bounded[i].k))
    best: tuple[float, Decided] | None = None
    refused: InfeasibleRebalanceError | SolverError | None = None
    for entry, dominated in ((bounded[i], pruned[i]) for i in order):  # the dominated last
        if best is not None and entry.bound >= best[0] - 1e-12 * max(1.0, abs(best[0])):
            continue
        if best is not None and dominated and best[0] - entry.bound <= _GAP * max(abs(best[0]), abs(entry.bound)):
            continue
        region = entry.model
        try:
            decided = run(region)
        except (InfeasibleRebalanceError, SolverError) as exc:  # that region's refusal, not the request's
            refused = exc if refused is None or isinstance(refused, SolverError) else refused
            continue
        if decided.model is None:
            decided = dataclasses.replace(decided, model=region)
        assert decided.model is not None
        value = exact_objective(decided.model, decided)
        if best is None or value < best[0]:
            best = (value, decided)
    if best is None:
        assert refused is not None
        raise refused
    return best[1]
