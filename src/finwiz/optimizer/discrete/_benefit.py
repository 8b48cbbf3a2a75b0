"""The benefit threshold (``PortfolioConfiguration.min_benefit``): trades not worth their cost.

The objective already nets each trade's cost and tax against what it buys in tracking; the
threshold asks for a margin. A trade's *benefit* is how much the true objective (trade count
included) would rise were the trade undone, the other trades as they are; its *threshold* is
``min_benefit x (its cost + its tax if positive) / V_ref``, in the objective's units (those of the
cost term, weight 1). While some trade's benefit is at or below its threshold, the one short by
the most whose removal keeps every limit (and the minimum trade size) is left out, and the
benefits are priced again. Every trade left then beats its threshold, or no limit lets it go.
A whole-share step after the rounding, the search and the polish (not exact mode).

Undoing one trade is a single-asset move, priced exactly by the rounding's pricer (the objective
is quadratic, the costs and taxes are each asset's own): all the benefits of a round in one pass
over the model's rows, instead of the whole objective evaluated once per trade (quadratic in the
trades). A user's cvxpy term is not quadratic: with one, each undone trade is evaluated whole.
"""

from __future__ import annotations

import numpy as np

from finwiz.optimizer.discrete._candidates import _moves, _trade_point
from finwiz.optimizer.discrete._objective import point_of
from finwiz.optimizer.discrete._pricing import Pieces, pieces_of
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import objective_at
from finwiz.optimizer.verify._compliance import breaches, post_trade_state

__all__ = ["keep_worthwhile"]

_MAX_ROUNDS = 10_000  # removals at most (each removes one trade: the trades bound it anyway)


def benefits(model: Model, shares: np.ndarray, idx: np.ndarray, pieces: Pieces | None = None) -> np.ndarray:
    """How much the true objective would rise were each trade of ``idx`` undone, the others as they are."""
    data = model.data
    if model.user_terms:  # not quadratic: each point evaluated whole
        without = []
        for i in idx.tolist():
            other = shares.copy()
            other[i] = 0.0
            without.append(point_of(data, other))
        values = objective_at(model, [point_of(data, shares), *without])
        return np.asarray(values[1:]) - values[0]
    undo = _moves(data, idx, np.zeros(len(idx)))
    return pieces_of(model, pieces).pricer.changes(_trade_point(data, shares), shares, undo)


def shortfalls(model: Model, shares: np.ndarray, pieces: Pieces | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The traded assets and each one's threshold less its benefit (positive: not worth it)."""
    data = model.data
    idx = np.flatnonzero(shares != 0)
    benefit = benefits(model, shares, idx, pieces)
    state = post_trade_state(data, shares)
    cost = (state.transaction_costs + state.impact_costs)[idx]
    tax = np.zeros(len(idx))
    if data.lots is not None:
        _, taxes, _ = data.lots.relief(np.maximum(-shares, 0.0))
        tax = np.maximum(taxes[idx], 0.0)
    threshold = float(data.min_benefit or 0.0) * (cost + tax) / data.ref_value
    return idx, threshold - benefit


def keep_worthwhile(model: Model, shares: np.ndarray, pieces: Pieces | None = None) -> np.ndarray:
    """``shares`` without the trades that do not beat the benefit threshold (see the module
    docstring; ``pieces``: the model's, if built); unchanged when ``min_benefit`` is not set."""
    if model.data.min_benefit is None:
        return shares
    shares = shares.copy()
    pieces = None if model.user_terms else pieces_of(model, pieces)
    for _ in range(_MAX_ROUNDS):
        idx, short = shortfalls(model, shares, pieces)
        removed = False
        for j in np.argsort(-short, kind="stable").tolist():
            if short[j] < 0:
                break
            candidate = shares.copy()
            candidate[idx[j]] = 0.0
            if not breaches(model.data, candidate, model.checked_groups):
                shares, removed = candidate, True
                break
        if not removed:
            break
    return shares
