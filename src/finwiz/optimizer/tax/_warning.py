"""The warning a taxable account gets when its trades leave it farther from its target: it blames
the tax weight only when tax-blind trades would not (:func:`farther_warning`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from finwiz.errors import FinwizError
from finwiz.optimizer.describe._data import ProblemData, tracking_distance
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, solve_terms
from finwiz.optimizer.tax._sides import SIDE_GROUPS
from finwiz.optimizer.verify._compliance import compliance_checks, post_trade_state

__all__ = ["farther_warning"]


def _distance(data: ProblemData, shares: np.ndarray) -> float:
    state = post_trade_state(data, shares)
    return tracking_distance(state.weights_after, state.cash_weight_after, data.target, data.cash_target)


def farther_warning(model: Model, before: float, after: float, solver: str = "auto") -> str:
    """The warning for taxable trades that leave the portfolio farther from its target
    (``after > before``, tracking distances). It blames the tax weight only when tax-blind trades
    would not: ``model`` (its sides kept) at ``tax_weight=0`` is solved (one continuous solve, only
    in this case), and when it ends as far as ``before`` or farther, the limits hold the book there (a
    negative gain budget, a turnover cap with a forced sale): the warning names the limits binding
    at that solve instead of suggesting a smaller tax weight (issue 21)."""
    data = model.data
    lots = data.lots
    assert lots is not None
    blind_lots = dataclasses.replace(lots, settings=lots.settings.model_copy(update={"tax_weight": 0.0}))
    # The same sides: each only forbids a direction, so not trading an asset stays open, and a
    # negative budget still cannot be met by selling and buying back.
    blind = model.with_data(data.evolve(lots=blind_lots))
    try:
        outcome = solve_terms(blind, solver)
    except (ProvenInfeasibleError, FinwizError):
        outcome = None
    if outcome is None or _distance(data, outcome.trades * data.ref_value / data.prices) <= before * (1 + 1e-6):
        return (
            f"the tax saved outweighs the tracking: these trades leave the portfolio farther from its target "
            f"than before ({after:.4g} against {before:.4g}) at tax_weight {lots.tax_weight:g}; a smaller "
            f"tax_weight trades tax for tracking (the default is 1 / (2 x assets))"
        )
    shares = outcome.trades * data.ref_value / data.prices
    described = [(t.name, g) for t, d in zip(blind.terms, blind.descriptions, strict=True) if d for g in d.limits]
    checks = compliance_checks(data, post_trade_state(data, shares), described)
    binding = sorted(
        {
            c.constraint
            for c in checks
            if abs(c.slack) <= 1e-4 * max(1.0, abs(c.limit)) and not c.constraint.startswith(SIDE_GROUPS)
        }
    )
    named = f" ({', '.join(binding)})" if binding else ""
    return (
        f"these trades leave the portfolio farther from its target than before ({after:.4g} against "
        f"{before:.4g}), as tax-blind trades would (tax_weight 0): the limits{named} hold it there, not the tax"
    )
