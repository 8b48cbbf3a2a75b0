"""The netting rule in the optimizer: one solve per region of the rule, the best kept.

The year's tax (``_netting.year_tax``) is linear on each of its regions but not convex across
them (``_netting``), so the continuous stage cannot state it as one epigraph. Each region the
lots can reach is its own problem -- every lot at its region's rate of its term, the region's
rows on this rebalance's net short- and long-term gains held by the continuous solve
(``TaxForm.rows``, through cvxpy) -- and the answers are compared by their true objective with the
exact tax (the year's tax with the trades minus without, to the cent).

Branch and bound over the regions: each region's relaxation (no side fixed, one continuous solve)
bounds every answer in it from below; the regions are run through the whole pipeline (sides
fixed, whole shares) best bound first, and a region whose bound is no better than the best exact
objective found is skipped. The whole-share step prices moves at its region's rates; the
comparison and the result's ``TaxSummary`` use the exact rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from finwiz.errors import InfeasibleRebalanceError, SolverError
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError
from finwiz.optimizer.tax._sides import relaxation

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


def over_regions(model: Model, run: Callable[[Model], Decided], solver: str, limit: float) -> Decided:
    """``run`` (the whole pipeline) on the netting regions' models, best relaxation bound first
    (see the module docstring); the answer with the lowest exact objective, its ``model`` the
    region's. None feasible: the first refusal."""
    lots = model.data.lots
    assert lots is not None
    bounded: list[tuple[float, int, Model]] = []
    for k, book in enumerate(lots.regions()):
        region = model.with_data(dataclasses.replace(model.data, lots=book))
        try:
            relaxed = relaxation(region, solver, limit)[1]
        except (ProvenInfeasibleError, SolverError):
            continue  # no point in the region meets the limits (or its bound is unknown: run it last)
        bounded.append((relaxed.objective + _offset(region), k, region))
    if not bounded:  # every region refused: the first one's diagnosis names the limits
        return run(model.with_data(dataclasses.replace(model.data, lots=lots.regions()[0])))
    best: tuple[float, Decided] | None = None
    refused: InfeasibleRebalanceError | None = None
    for bound, _, region in sorted(bounded, key=lambda b: (b[0], b[1])):
        if best is not None and bound >= best[0] - 1e-12 * max(1.0, abs(best[0])):
            break
        try:
            decided = run(region)
        except InfeasibleRebalanceError as exc:
            refused = refused or exc
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
