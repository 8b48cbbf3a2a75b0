"""From continuous trades to whole shares (and lots) that keep every hard constraint.

Everything here is read from the model's one description (``_model``): the limit groups' linear
rows and the stacked objective. Each asset gets a few candidate trades (``_candidates``), priced by
the strategy's own objective (``_pricing``) through the Lagrangian (the continuous solve's duals of
the coupled rows), so that the assets do not all lean into the limits that held the optimum back.

1. Each asset's cheapest candidate, when the coupled rows hold there;
2. otherwise the 0/1 program over the candidates and its repair (``_settling``);
3. then the descent on the exact objective (``_descent``), a loop over the move kinds of
   ``_move_kinds``, every step checked against every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import GAIN
from finwiz.optimizer.discrete._candidates import (
    _candidate_set,
    _cheapest,
    _lot_moves,
    _Moves,
    _Separable,
    _snap,
    _trade_point,
)
from finwiz.optimizer.discrete._descent import DescentSettings, _Search, descend
from finwiz.optimizer.discrete._move_kinds import MOVE_KINDS
from finwiz.optimizer.discrete._pricing import _coupled_rows, _Pricer, _row_prices, _Rows
from finwiz.optimizer.discrete._settling import _settle
from finwiz.optimizer.solve._assembler import Model, user_gradient_at

__all__ = ["RoundingOutcome", "gain_price", "polish", "round_trades", "side_margin"]

_DESCENT = DescentSettings()


@dataclass(frozen=True)
class RoundingOutcome:
    """Signed share trades per asset, and what the 0/1 program said about them."""

    shares: np.ndarray
    mip_gap: float | None
    seconds: float
    candidates: int
    lossy: bool
    """True when a traded asset had no candidate that kept its own rows (it was left untraded):
    binding limits left no room to round."""
    loss: float
    """The returned trades' objective above the continuous point's, in whole-share allowances (what
    one lot of every asset is worth in objective)."""
    relative_loss: float
    """The same, as a fraction of the objective at the continuous point."""


def _improve(
    data: ProblemData,
    shares: np.ndarray,
    pricer: _Pricer,
    rows: _Rows,
    separable: _Separable,
    candidates: np.ndarray | None = None,
    strict: bool = False,
) -> np.ndarray:
    """The descent (``_descent.descend``) over every asset's one-lot moves, to no trade, selling
    out, the minimum size, or back to one of its first ``candidates`` (assets x k), where the
    separable rows allow them."""

    def neighbours(at: np.ndarray, wide: bool) -> _Moves:
        return _lot_moves(data, at, separable, candidates, wide=wide)

    return descend(_Search(data, pricer, rows), shares, neighbours, MOVE_KINDS, _DESCENT, strict)


def gain_price(model: Model, duals: np.ndarray | None) -> float:
    """What the coupled rows' multipliers charge per unit of net realised gain (``G``, a fraction
    of ``V_ref``): a binding gain budget's price, 0 when it is slack or there are no multipliers."""
    v = _row_prices(_coupled_rows(model), duals)
    return 0.0 if v is None else max(float(v[2 * model.data.n - 1 - GAIN]), 0.0)


def round_trades(
    model: Model,
    buy: np.ndarray,
    sell: np.ndarray,
    *,
    gradient: np.ndarray | None = None,
    duals: np.ndarray | None = None,
    time_limit: float = 10.0,
) -> RoundingOutcome:
    """Whole-share (or lot) trades near the continuous optimum ``(buy, sell)`` (fractions of
    V_ref) that keep every limit of ``model`` and minimise its objective; ``gradient`` adds user
    terms' linearised objectives (over ``z``). ``duals`` are the continuous solve's multipliers of
    the coupled rows: candidates are first priced by the Lagrangian, so that each asset's cheapest
    does not lean, with every other asset, into the limits that held the optimum back. Raises
    :class:`InfeasibleRebalanceError` if no such trades exist among the candidates."""
    start = time.perf_counter()
    data = model.data
    n = data.n
    table, valid, stuck, moves, separable = _candidate_set(model, buy - sell)
    pricer = _Pricer(model, model.stacked(continuous=False), gradient)
    target = (buy - sell) * data.ref_value / data.prices
    rows = _coupled_rows(model)
    at = _trade_point(data, target)
    price = pricer.changes(at, target, moves)
    v = _row_prices(rows, duals)
    if v is not None:
        # At the optimum g + A'y = 0: the objective's gradient along a binding row is the row's
        # price. Priced with the Lagrangian, moving along it is neutral, not a gain.
        price = price + pricer.linear_change(v, at, moves)
    price = _snap(price)
    cheapest = _cheapest(table, valid, price)
    chosen_shares = moves.shares[cheapest]
    first = np.zeros(n)
    first[moves.owner[cheapest]] = chosen_shares
    gap: float | None = 0.0
    lossy = stuck  # a traded asset none of whose candidates kept its own rows was left untraded
    settled = not rows.holds(rows.values(_trade_point(data, first)))
    if settled:
        cheap = first
        # In whole-share allowances: raw changes are ~1e-9-1e-6, within HiGHS's optimality
        # tolerances (1e-7), where it called a choice 6x worse than the best one optimal.
        first, gap = _settle(data, moves, price / pricer.unit, cheapest, rows, time_limit)
        # The coupled rows moved an asset off both its cheapest candidate and the neighbours of
        # its continuous trade (a trade dropped or cut short): binding limits left no room to
        # round, and backing them off by a lot may do better.
        lots = target / data.lot
        neighbour = (np.abs(first / data.lot - lots) < 1.0 + 1e-9) & (np.sign(first) == np.sign(target))
        lossy = lossy or bool(np.any((first != cheap) & ~neighbour))
    # After a settle the descent may bring a candidate back (a trade the 0/1 program dropped);
    # from each asset's cheapest candidate it has nothing to bring back.
    final = _improve(data, first, pricer, rows, separable, candidates=table if settled else None)
    base = pricer.objective(at, target)
    lost = pricer.objective(_trade_point(data, final), final) - base
    seconds = time.perf_counter() - start
    relative = lost / max(abs(base), 1e-300)
    return RoundingOutcome(final, gap, seconds, len(moves.owner), lossy, lost / pricer.unit, relative)


def polish(model: Model, shares: np.ndarray, gradient: np.ndarray | None = None) -> np.ndarray:
    """``shares`` after the descent on the exact objective (see :func:`_improve`): for an answer
    from elsewhere (exact mode's MIP solver, which stops within its tolerances), so that no single
    one-lot move improves it either."""
    if gradient is None and model.user_terms:
        # A user's objective keeps its effect here too (priced by its gradient at these trades):
        # without it, the descent after the second opinion moved a linear tilt's trades back
        # towards the untilted optimum.
        z = _trade_point(model.data, shares)
        n = model.data.n
        gradient = user_gradient_at(model, z[:n], z[n : 2 * n], float(z[2 * n]))
    separable = _Separable.of_model(model)
    pricer = _Pricer(model, model.stacked(continuous=False), gradient)
    return _improve(model.data, shares, pricer, _coupled_rows(model), separable, strict=True)


def side_margin(model: Model, buy: np.ndarray, sell: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """For each of ``assets`` (a mask: assets the relaxation both buys and sells, V_ref units), how
    much cheaper selling only is than buying only (negative: sell only; 0 elsewhere). Around the
    relaxation's optimum each asset's own objective is ``H/2 (u - u*)^2`` in its net trade ``u``
    (``H`` its own curvature; the cash it frees or takes is spread over the others at no
    first-order cost, as at any optimum) plus the tax of what it sells: buying only costs
    ``H/2 min(u*, 0)^2``, selling only the least of that square plus the tax over its lots (at each
    lot's stationary point and ends)."""
    data = model.data
    out = np.zeros(data.n)
    lots = data.lots
    if lots is None:
        return out
    squares = model.stacked(continuous=False).squares
    on_buy = squares.cols.astype(np.int64)
    on_buy = np.where((on_buy >= 0) & (on_buy < data.n), on_buy, data.n)  # the buy columns' entries
    col_norm = np.bincount(on_buy, weights=squares.vals**2, minlength=data.n + 1)[: data.n]
    u = buy - sell
    unit = data.ref_value / data.prices  # shares per V_ref unit
    for i in np.flatnonzero(assets):
        curve = 2.0 * float(col_norm[i])
        held = lots.shares[i][lots.shares[i] > 0]
        ends = np.concatenate([[0.0], np.cumsum(held)]) / unit[i]  # lot boundaries, V_ref units
        slopes = lots.tax_weight * (lots.gain[i] * lots.rate[i])[: len(held)] / data.prices[i]
        inside = -u[i] - slopes / curve if curve > 0 else np.zeros(0)
        trial = np.clip(np.concatenate([ends, inside]), 0.0, ends[-1])
        _, tax, _ = lots.relief(trial * unit[i], np.full(len(trial), i))
        selling = float(np.min(0.5 * curve * (trial + u[i]) ** 2 + lots.tax_weight * tax / data.ref_value))
        out[i] = selling - 0.5 * curve * min(float(u[i]), 0.0) ** 2
    return out
