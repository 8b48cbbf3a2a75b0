"""The netting rule in the optimizer: one solve per region of the rule, the best kept.

The year's tax (``_netting.year_tax``) is linear on each of its regions but not convex across
them (``_netting``), so the continuous stage cannot state it as one epigraph. Each region the
lots can reach is solved as its own problem -- every lot at its region's rate of its term, the
region's rows on this rebalance's net short- and long-term gains held by the continuous solve
(``TaxForm.rows``, through cvxpy) -- through the whole pipeline, and the answers compared by
their true objective with the exact tax (the year's tax with the trades minus without, to the
cent). The whole-share step prices moves at its region's rates; the comparison and the result's
``TaxSummary`` use the exact rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from finwiz.errors import InfeasibleRebalanceError
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.solve._assembler import Model

__all__ = ["exact_objective", "over_regions"]


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


def over_regions(model: Model, run: Callable[[Model], Decided]) -> Decided:
    """``run`` on each netting region's model; the answer with the lowest exact objective (its
    ``model`` the region's). Regions with no feasible answer are skipped; none: the first refusal."""
    lots = model.data.lots
    assert lots is not None
    best: tuple[float, Decided] | None = None
    refused: InfeasibleRebalanceError | None = None
    for book in lots.regions():
        region = model.with_data(dataclasses.replace(model.data, lots=book))
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
