"""The netting rule in the optimizer: one solve per region of the rule, the best kept.

The year's tax (``_netting.year_tax``) is linear on each of its regions but not convex across
them (``_netting``), so the continuous stage cannot state it as one epigraph. Each region the
lots can reach is its own problem -- every lot at its region's rate of its term, the region's
rows on this rebalance's net short- and long-term gains held by the continuous solve
(``TaxForm.rows``: on the native QP, linear in each asset's sell along its lot as ``T`` and ``G``
are, ``_qp.Ladder.region_rows``; where no climb over the lots in the region's tax order reaches its
rows, in an order toward them, ``_order.toward_region``) -- and the answers are compared by their
true objective with the exact tax (the year's tax with the trades minus without, to the cent).

Branch and bound over the regions: each region's relaxation (no side fixed; the pipeline's first
solve, kept with the region's model) bounds every answer in it from below, and so does its
Lagrangian bound at another relaxation's multipliers (``_bound``: no solve, below the relaxation
whatever the multipliers). The region of no trade is relaxed first; then, lowest bound first, a
region with only a Lagrangian bound is relaxed, one with its relaxation runs through the whole
pipeline (sides fixed, whole shares), and a region whose bound is no better than the best exact
objective found is skipped (on the 10-year 431-asset backtest most regions never need their
relaxation). A region whose relaxed bound equals another's and whose relaxed optimum lies in that
other region (their common edge) runs last, and only while the best answer is more than ``_GAP``
above its bound. The whole-share step prices moves at its region's rates; the comparison and the
result's ``TaxSummary`` use the exact rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from finwiz.errors import InfeasibleRebalanceError, SolverError
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import NativeQP, ladder_of
from finwiz.optimizer.solve._solve import ProvenInfeasibleError
from finwiz.optimizer.tax._bound import lagrangian_bound
from finwiz.optimizer.tax._order import relaxation, start_at

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
    linear = float(lots.tax_and_gain(sold)[0].sum())
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
    dual: tuple[NativeQP, np.ndarray] | None = None  # its QP and multipliers, when solved natively

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
    form = next((d.tax for d in relaxed_model.described if d.tax is not None), None)
    settled = None if form is None else ladder_of(form, data.n).settled
    dual = None if settled is None or settled.qp is None or settled.y is None else (settled.qp, settled.y)
    bound = relaxed.objective + _offset(region)
    return _Bounded(bound, 0, region, (s0 + short, g0 + long), slack, relaxed.sell, dual)


@dataclass
class _Search:
    """Branch and bound over the regions (see the module docstring): each region's bound is its
    Lagrangian bound until its relaxation is solved, then that relaxation's optimum."""

    models: list[Model]
    solver: str
    limit: float
    exact: dict[int, _Bounded | None] = field(default_factory=dict)  # None: the region has no point
    cheap: dict[int, float] = field(default_factory=dict)  # Lagrangian bounds (the best found)
    duals: list[tuple[NativeQP, np.ndarray]] = field(default_factory=list)  # of the relaxations solved
    done: set[int] = field(default_factory=set)  # run or pruned
    spent: set[tuple[int, int, bool]] = field(default_factory=set)  # (region, dual, one_side) ascents that fell short
    best: tuple[float, Decided] | None = None

    def relax(self, k: int) -> None:
        """Solve region ``k``'s relaxation (from the last relaxed optimum, when the lots are in
        the same order), and bound the regions not yet relaxed with its multipliers."""
        region = self.models[k]
        last = next((b for b in reversed(list(self.exact.values())) if b is not None), None)
        lots, before = region.data.lots, None if last is None else last.model.data.lots
        if last is not None and before is not None and lots is not None and before.same_order(lots):
            start_at(region, last.sell)
        found = _bounded(region, self.solver, self.limit)
        self.exact[k] = None if found is None else dataclasses.replace(found, k=k)
        if found is not None and found.dual is not None:
            self.duals.append(found.dual)
            # Bounds that keep the others from being relaxed before a relaxed region has run.
            bounds = [self.exact[j].bound for j in self.open(relaxed=True)]  # type: ignore[union-attr]
            target = min([*bounds, *([] if self.best is None else [self.best[0]])], default=None)
            for other in self.open(relaxed=False):
                self._lift(other, found.dual, target, one_side=False)

    def _lift(self, k: int, dual: tuple[NativeQP, np.ndarray], target: float | None, one_side: bool) -> None:
        """Region ``k``'s Lagrangian bound at ``dual`` (searching the region rows' multipliers
        until it reaches ``target``; ``one_side``: the side rule kept), when it is better than the
        one it has."""
        key = (k, id(dual[1]), one_side)
        if key in self.spent:  # it ran to its best short of a higher target: a lower one changes nothing
            return
        region = self.models[k]
        offset = _offset(region)
        aim = None if target is None else target - offset
        value = lagrangian_bound(region, *dual, target=aim, one_side=one_side)
        if value is not None:
            self.cheap[k] = max(self.cheap.get(k, -np.inf), value + offset)
        if value is None or aim is None or value < aim - 1e-9 * max(1.0, abs(aim)):
            self.spent.add(key)  # the search stops early only on reaching its target

    def open(self, relaxed: bool | None = None) -> list[int]:
        """The regions not run or pruned, with a point (``relaxed``: only those whose relaxation
        was solved, or only those whose was not)."""
        out = []
        for k in range(len(self.models)):
            if k in self.done or (k in self.exact and self.exact[k] is None):
                continue
            if relaxed is None or relaxed == (k in self.exact):
                out.append(k)
        return out

    def next(self) -> int | None:
        """The open region of lowest bound (the dominated after the others; of equal bounds, one
        not yet relaxed first), or None when every region has run or been pruned."""
        relaxed = [b for b in self.exact.values() if b is not None]
        tolerance = _TIE * max((abs(b.bound) for b in relaxed), default=0.0) + 1e-15
        keys = []
        for k in self.open():
            entry = self.exact.get(k)
            if entry is None:
                keys.append(((False, self.cheap.get(k, -np.inf), 0, k), k))
                continue
            dominated = any(o.dominates(entry, tolerance) for o in relaxed)
            keys.append(((dominated, entry.bound, 1, k), k))
        return min(keys)[1] if keys else None

    def pruned(self, k: int) -> bool:
        """Whether region ``k`` cannot beat the best answer found (or, dominated, only by less
        than ``_GAP``)."""
        if self.best is None:
            return False
        entry, best = self.exact.get(k), self.best[0]
        reached = 1e-12 * max(1.0, abs(best))
        if entry is not None and entry.bound >= best - reached:
            return True
        # Its Lagrangian bound with the side rule kept, searched for one that reaches the best answer
        # (it can pass the relaxation's optimum: that sells and buys back).
        for dual in self.duals:
            if self.cheap.get(k, -np.inf) < best - reached:
                self._lift(k, dual, best, one_side=True)
        if self.cheap.get(k, -np.inf) >= best - reached:
            return True
        if entry is None:
            return False
        relaxed = [b for b in self.exact.values() if b is not None]
        tolerance = _TIE * max(abs(b.bound) for b in relaxed) + 1e-15
        dominated = any(o.dominates(entry, tolerance) for o in relaxed)
        return dominated and best - entry.bound <= _GAP * max(abs(best), abs(entry.bound))


def over_regions(model: Model, run: Callable[[Model], Decided], solver: str, limit: float) -> Decided:
    """``run`` (the whole pipeline) on the netting regions' models, best bound first (see the
    module docstring); the answer with the lowest exact objective, its ``model`` the region's.
    None feasible: the first refusal (a solver's failure only when no region refused)."""
    lots = model.data.lots
    assert lots is not None
    books = lots.regions()
    search = _Search([model.with_data(model.data.evolve(lots=book)) for book in books], solver, limit)
    s0, g0 = lots.year_start()
    first = next((k for k, book in enumerate(books) if book.region is not None and book.region.holds(s0, g0)), 0)
    search.relax(first)  # the region of no trade: its multipliers bound the others
    refused: InfeasibleRebalanceError | SolverError | None = None
    while (k := search.next()) is not None:
        if search.pruned(k):
            search.done.add(k)
            continue
        if k not in search.exact:
            search.relax(k)
            continue
        search.done.add(k)
        region = search.models[k]
        try:
            decided = run(region)
        except (InfeasibleRebalanceError, SolverError) as exc:  # that region's refusal, not the request's
            refused = exc if refused is None or isinstance(refused, SolverError) else refused
            continue
        if decided.model is None:
            decided = dataclasses.replace(decided, model=region)
        assert decided.model is not None
        value = exact_objective(decided.model, decided)
        if search.best is None or value < search.best[0]:
            search.best = (value, decided)
    if all(entry is None for entry in search.exact.values()):  # every region refused: the first one's diagnosis
        return run(search.models[0])
    if search.best is None:
        assert refused is not None
        raise refused
    return search.best[1]
