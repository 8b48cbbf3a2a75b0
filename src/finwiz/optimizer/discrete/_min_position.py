"""``min_position_value``: every post-trade position is zero or worth at least the minimum.

The rule is not convex (a position is either 0 or ``>= m`` in absolute value), so the continuous
stage ignores it; in the whole-share stage it is part of each asset's allowed set, once:

- a trade that leaves its asset's position strictly between 0 and the minimum is not a candidate
  (:class:`Sized`, checked with the separable rows wherever a move is: the rounding's candidate
  table, the descent's and the search's moves), so no move of any stage leaves one;
- each asset's candidates include the two trades the rule may need: closing the position (sold
  out, or covered) and raising it to the minimum in whole lots, at least the minimum trade size
  (:func:`sized_options`);
- the continuous optimum leaves some positions strictly between 0 and the minimum, and the
  rounding settles each to one side from there alone; raising one can pay for itself by selling
  others (under a binding sector cap, say), which no single move sees, and the continuous optimum
  that knows the choices rounds better than the one that does not. So the stage re-solves with
  each such position held where the answer puts it (a floor at the minimum, or a cap of 0), and
  then, on books of at most ``_FEW`` assets, with one of them at a time held the other way
  (:func:`flipped`; the first ``_FLIPS`` nearest the other side), and keeps the lowest answer;
- an asset none of whose candidates keeps its own limits, held below the minimum, is refused by
  name, with the limits that each choice breaks (:func:`stuck_refusal`): an asset held below the
  minimum that ``no_trade`` holds there, for one;
- exact mode's program (:func:`min_position_rows`) gives each asset two binaries, long and short:
  ``m' y_long - M y_short <= w <= M y_long - m' y_short``, ``y_long + y_short <= 1`` (``w`` the
  position in ``V_ref`` units, ``m' = m / V_ref``, ``M`` a bound no position reaches), a
  semi-continuous position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from finwiz.errors import ConstraintConflict, FinwizError, InfeasibleRebalanceError
from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._limits import PositionCapTerm, PositionFloorTerm
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import RELATIVE_TOLERANCE, breaches, post_trade_state

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = ["Sized", "exact_or_named", "flipped", "min_position_rows", "named", "sized_options", "stuck_refusal"]

T = TypeVar("T")
_EPS = 1e-9  # relative: a position this close to a whole number of lots above the minimum is there
_FLIPS = 6  # small positions re-solved the other way at most (each a continuous solve and a rounding)
_FEW = 60  # assets: on more, no flips (at 150, seven re-solves and roundings took 6.9 s of 7.0)
_MARGIN = 1e-4  # a floor this much above the minimum: costs change the post-trade value a little


@dataclass(frozen=True)
class Sized:
    """The rule as each asset's allowed set: which trades leave its position zero or worth at least
    the minimum (as :func:`~finwiz.optimizer.verify._compliance.position_sized` checks the answer)."""

    held: np.ndarray  # shares
    prices: np.ndarray
    minimum: float  # currency

    @classmethod
    def of(cls, data: ProblemData) -> Sized | None:
        """The rule of ``data``; None without a minimum."""
        return cls(data.shares, data.prices, data.min_position_value) if data.min_position_value > 0 else None

    def ok(self, owner: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """Which trades (``shares`` of asset ``owner``) keep the rule."""
        value = np.abs((self.held[owner] + shares) * self.prices[owner])
        return np.asarray((value <= NOISE_VALUE * 1e-6) | (value >= self.minimum * (1 - RELATIVE_TOLERANCE)))


def sized_options(data: ProblemData) -> list[np.ndarray]:
    """Each asset's two trades the rule may need: its position closed, and raised to the minimum on
    the side it ends on in whole lots, at least the minimum trade size (no trade where it is there
    already). None without a minimum."""
    if data.min_position_value <= 0:
        return []
    held, lot, price = data.shares, data.lot, data.prices
    side = data.side  # the side each position ends on (long-only: long)
    steps = np.maximum(np.ceil((data.min_position_value / price - side * held) / lot - _EPS), 0.0)
    smallest = np.ceil(data.min_trade_value / (lot * price) - _EPS)
    steps = np.where(steps > 0, np.maximum(steps, smallest), 0.0)
    return [-held, side * steps * lot]


def flipped(model: Model, trades: np.ndarray, shares: np.ndarray) -> list[Model]:
    """The variants to re-solve (see the module): the long positions the continuous ``trades``
    (V_ref units) leave strictly between 0 and the minimum held where the whole-share answer
    ``shares`` puts them (floored at the minimum, or capped at 0), then the same with one of them
    held the other way, the nearest to the other side first (the cheapest flips by the continuous model)."""
    data = model.data
    if data.min_position_value <= 0:
        return []
    least = data.min_position_value / data.ref_value
    weight = data.x0 + trades
    small = np.flatnonzero((weight * data.ref_value > NOISE_VALUE) & (weight < least))
    if not small.size:
        return []
    closed = data.shares[small] + shares[small] == 0
    distance = np.where(closed, least - weight[small], weight[small])
    floor = data.min_position_value / post_trade_state(data, shares).value_after * (1 + _MARGIN)
    terms = [*model.terms, *(t for t in (PositionCapTerm(), PositionFloorTerm()) if not _has(model, t))]
    variants = []
    # Every one where the answer has it, then each one alone the other way (the others free).
    flips = np.argsort(distance, kind="stable")[: _FLIPS if data.n <= _FEW else 0]
    patterns = [(small, closed)] + [(small[[k]], ~closed[[k]]) for k in flips]
    for assets, out in patterns:
        caps = np.full(data.n, np.inf) if data.position_cap is None else data.position_cap.copy()
        floors = np.zeros(data.n) if data.position_floor is None else data.position_floor.copy()
        floors[assets[~out]] = np.maximum(floors[assets[~out]], floor)
        caps[assets[out]] = 0.0
        held = dataclasses.replace(data, position_cap=caps, position_floor=floors)
        variants.append(Model.of([t for t in terms if t.applies(held)], held))
    return variants


def _has(model: Model, term: Any) -> bool:
    return any(type(t) is type(term) for t in model.terms)


def stuck_refusal(model: Model, stuck: np.ndarray) -> InfeasibleRebalanceError | None:
    """The refusal for assets with no candidate that keeps their own limits (``stuck``, a mask)
    whose untraded position is below the minimum; None when there is none."""
    data = model.data
    rule = Sized.of(data)
    if rule is None:
        return None
    below = np.flatnonzero(stuck & ~rule.ok(np.arange(data.n), np.zeros(data.n)))
    if not below.size:
        return None
    i = int(below[0])
    broken: list[str] = []
    for trade in sized_options(data):
        trial = np.zeros(data.n)
        trial[i] = trade[i]
        broken += breaches(data, trial, model.checked_groups, np.array([i]))
    return _refusal(data, i, broken)


def _refusal(data: ProblemData, i: int, broken: list[str]) -> InfeasibleRebalanceError:
    symbol = data.symbols[i]
    value = abs(float(data.shares[i] * data.prices[i]))
    give = data.min_position_value - value
    conflicts = [
        ConstraintConflict(
            "min_position_value",
            give / data.value,
            f"{symbol} is held at {value:,.2f}; neither selling it out nor raising it to the minimum "
            "keeps its own limits",
            member=symbol,
            dollars=give,
        )
    ]
    for name in dict.fromkeys(broken):
        group, _, member = name.partition("[")
        conflicts.append(ConstraintConflict(group, 0.0, "breached by either choice", member=member.rstrip("]") or None))
    return InfeasibleRebalanceError(
        conflicts,
        f"no trades keep {symbol} at zero or at min_position_value={data.min_position_value:,.2f} "
        "(a position below the minimum that cannot be sold out or raised)",
    )


def min_position_rows(data: ProblemData, weights: Any) -> list[Any]:
    """Exact mode's semi-continuous positions (see the module); none without a minimum."""
    if data.min_position_value <= 0:
        return []
    n = data.n
    # Backed off as every row of the program (the solver's tolerance; a fractional count rounded
    # to a millionth of a share ended 7.5e-5 in currency below the minimum).
    least = data.min_position_value / data.ref_value + data.backoff
    most = np.abs(data.x0) + 2.0 + (abs(data.cash_flow) + data.value) / data.ref_value  # no position reaches it
    long = cp.Variable(n, boolean=True, name="held_long")
    short = cp.Variable(n, boolean=True, name="held_short")
    return [
        weights >= least * long - cp.multiply(most, short),
        weights <= cp.multiply(most, long) - least * short,
        long + short <= 1,
    ]


def exact_or_named(model: Model, time_limit: float, solve_exact: Callable[..., T]) -> T:
    """Exact mode's program on ``model``; a refusal the minimum causes names it (:func:`named`)."""
    try:
        return solve_exact(model, time_limit=time_limit)
    except InfeasibleRebalanceError as exc:
        raise named(model, exc, lambda m: solve_exact(m, time_limit=time_limit), "exact mode: ")  # noqa: B904 (exc itself, or caused by it)


def named(
    model: Model, error: InfeasibleRebalanceError, attempt: Callable[[Model], object], mode: str = ""
) -> InfeasibleRebalanceError:
    """``error`` (no whole-share trades keep every limit of ``model``), or, when ``attempt`` finds
    trades for the same request without ``min_position_value``, a refusal naming the minimum as
    the cause (the continuous model does not know it, so blaming the share grid would be wrong)."""
    data = model.data
    if data.min_position_value <= 0 or "min_position_value" in error.constraint_names:
        return error
    try:
        attempt(model.with_data(dataclasses.replace(data, min_position_value=0.0)))
    except FinwizError:
        return error
    return InfeasibleRebalanceError(
        [ConstraintConflict("min_position_value", 0.0, "whole-share trades keep every other limit")],
        f"{mode}no whole-share trades keep every position at zero or at "
        f"min_position_value={data.min_position_value:,.2f} (without it, trades keep every other limit)",
    )
