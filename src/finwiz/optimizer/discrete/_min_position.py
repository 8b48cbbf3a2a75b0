"""``min_position_value``: every post-trade position is zero or worth at least the minimum.

The rule is not convex (a position is either 0 or ``>= m`` in absolute value), so the continuous
stage ignores it and the whole-share stage holds it:

- after the rounding (:func:`min_positions`), each position strictly between 0 and the minimum
  goes to 0 (sold out, or covered) or up to the minimum (the fewest whole lots that reach it),
  whichever the exact objective prefers among the two that keep every limit, smallest positions
  first, each with the others' trades as they stand. When neither keeps the limits, the request is
  refused naming ``min_position_value[asset]`` and the limits each choice breaks (an asset held
  below the minimum that ``no_trade``, ``no_sell`` and ``no_buy`` hold there, for one);
- the search and the descent after it know nothing of the rule: the stage calls
  :func:`min_positions` again on their answer (``fallback``: the answer before them, kept when
  that is lower), so no move of theirs leaves a position below the minimum;
- exact mode's program (:func:`min_position_rows`) gives each asset two binaries, long and short:
  ``m' y_long - M y_short <= w <= M y_long - m' y_short``, ``y_long + y_short <= 1`` (``w`` the
  position in ``V_ref`` units, ``m' = m / V_ref``, ``M`` a bound no position reaches), a
  semi-continuous position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from finwiz.errors import ConstraintConflict, FinwizError, InfeasibleRebalanceError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._limits import PositionCapTerm, PositionFloorTerm
from finwiz.optimizer.describe._terms import Term
from finwiz.optimizer.discrete._rounding import round_trades
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, SolveOutcome
from finwiz.optimizer.verify._compliance import (
    breaches,
    meets_minimum,
    position_sized,
    post_trade_state,
)

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = ["exact_or_named", "min_position_rows", "min_positions"]

T = TypeVar("T")
Objective = Callable[[Model, np.ndarray], float]
Solve = Callable[[Model], SolveOutcome]


def min_positions(
    model: Model,
    shares: np.ndarray,
    objective: Objective,
    solve: Solve | None = None,
    fallback: np.ndarray | None = None,
) -> np.ndarray:
    """``shares`` with every post-trade position zero or at least ``min_position_value`` (see the
    module); with ``solve``, also the answer solved and rounded again with each small position's
    choice as a limit, the lower kept; ``fallback`` (an answer that keeps the rule) when lower."""
    data = model.data
    if data.min_position_value <= 0:
        return shares
    shares = _sized_trades(model, shares)
    if position_sized(data, data.shares + shares).all():
        return shares
    answers: list[np.ndarray] = []
    refusal: InfeasibleRebalanceError | None = None
    try:
        answers.append(_settled(model, shares, objective))
    except InfeasibleRebalanceError as exc:
        refusal = exc
    if solve is not None and not model.user_terms:
        answers += _resolved(model, shares, objective, solve)
    # A fallback that keeps every limit and the lots (exact mode's may miss one by solver noise).
    sized = fallback is not None and bool(position_sized(data, data.shares + fallback).all())
    if fallback is not None and sized and not breaches(data, fallback, model.checked_groups, lots=True):
        answers.append(fallback)
    if not answers:
        assert refusal is not None
        raise refusal
    values = [objective(model, a) for a in answers]
    return answers[int(np.argmin(values))]


def _settled(model: Model, shares: np.ndarray, objective: Objective) -> np.ndarray:
    """Each small position settled alone, smallest first (raises when one cannot be)."""
    data = model.data
    shares = np.array(shares, dtype=float)
    after = data.shares + shares
    small = np.flatnonzero(~position_sized(data, after))
    for i in small[np.argsort(np.abs(after[small] * data.prices[small]), kind="stable")]:
        shares = _settle(model, shares, int(i), objective)
    return shares


def _resolved(model: Model, shares: np.ndarray, objective: Objective, solve: Solve) -> list[np.ndarray]:
    """The continuous solve and the rounding again with each small long position held where a
    choice puts it (zero: a cap of 0; the minimum: a floor): each one's own better choice, every
    one up, every one out, and on small books each one's own choice flipped (the first ``_FLIPS``: a position
    raised can pay for itself by selling others, which no single move sees); a position the new
    answer leaves small is settled alone. The answers that keep the rule."""
    data = model.data
    after = data.shares + shares
    small = np.flatnonzero(~position_sized(data, after) & (after > 0))
    if not small.size:
        return []
    value = post_trade_state(data, shares).value_after
    floored = np.zeros(data.n, bool) if data.position_floor is None else data.position_floor > 0
    own = np.array([floored[i] or _prefers_up(model, shares, int(i), objective) for i in small])
    patterns = [own, np.ones_like(own), np.zeros_like(own)]
    for k in range(min(len(small), _FLIPS) if data.n <= _FEW else 0):
        flipped = own.copy()
        flipped[k] = not flipped[k]
        patterns.append(flipped)
    floor = data.min_position_value / value * (1 + _MARGIN)
    found: list[np.ndarray] = []
    seen: set[bytes] = set()
    for up in patterns:
        up = up | floored[small]
        if up.tobytes() in seen:
            continue
        seen.add(up.tobytes())
        answer = _held_where(model, small, up, floor, solve)
        for _ in range(_ROUNDS):  # the positions the new answer leaves small: each its own choice too
            if answer is None:
                break
            rest = data.shares + answer
            more = np.flatnonzero(~position_sized(data, rest) & (rest > 0))
            if not more.size:
                break
            grown = np.concatenate([small, more])
            wants = [floored[i] or _prefers_up(model, answer, int(i), objective) for i in more]
            answer = _held_where(model, grown, np.concatenate([up, wants]), floor, solve)
        if answer is None:
            continue
        try:
            found.append(_settled(model, answer, objective))
        except InfeasibleRebalanceError:
            continue
    return found


def _prefers_up(model: Model, shares: np.ndarray, i: int, objective: Objective) -> bool:
    up, out = shares.copy(), shares.copy()
    up[i] = _up(model.data, shares, i)
    out[i] = -model.data.shares[i]
    return objective(model, up) < objective(model, out)


def _held_where(model: Model, small: np.ndarray, up: np.ndarray, floor: float, solve: Solve) -> np.ndarray | None:
    """The continuous solve and the rounding with ``small[up]`` held at or above ``floor`` (a
    weight) and the others at zero; None when either fails."""
    data = model.data
    caps = np.full(data.n, np.inf) if data.position_cap is None else data.position_cap.copy()
    floors = np.zeros(data.n) if data.position_floor is None else data.position_floor.copy()
    floors[small[up]] = np.maximum(floors[small[up]], floor)
    caps[small[~up]] = 0.0
    held = dataclasses.replace(data, position_cap=caps, position_floor=floors)
    terms = [*model.terms, *(t for t in (PositionCapTerm(), PositionFloorTerm()) if not _has(model, t))]
    variant = Model.of([t for t in terms if t.applies(held)], held)
    try:
        outcome = solve(variant)
        return np.asarray(round_trades(variant, outcome.buy, outcome.sell, duals=outcome.duals).shares)
    except (FinwizError, ProvenInfeasibleError):
        return None


def _has(model: Model, term: Term) -> bool:
    return any(type(t) is type(term) for t in model.terms)


_FLIPS = 6
_CENT = 0.01
_FEW = 60  # assets: more, and each flip's solve and rounding cost more than they find (0.7 s at 150)
_ROUNDS = 2
_MARGIN = 1e-4  # a floor this much above the minimum: costs change the post-trade value a little


def _settle(model: Model, shares: np.ndarray, i: int, objective: Objective) -> np.ndarray:
    """Asset ``i``'s position to zero or up to the minimum, the lower objective of the two that
    keep every limit; neither does: refused."""
    data = model.data
    best: tuple[float, np.ndarray] | None = None
    broken: list[str] = []
    for trade in (-data.shares[i], _up(data, shares, i)):
        trial = shares.copy()
        trial[i] = trade
        names = breaches(data, trial, model.checked_groups, np.array([i]))  # i's trade the only one changed
        if names:
            broken += names
            continue
        value = objective(model, trial)
        if best is None or value < best[0]:
            best = (value, trial)
    if best is None:
        raise _refusal(data, shares, i, broken)
    return best[1]


def _up(data: ProblemData, shares: np.ndarray, i: int) -> float:
    """Asset ``i``'s trade with its position raised (in absolute value) to the minimum in whole
    lots, and further when that trade would be under the minimum trade size."""
    after = data.shares[i] + shares[i]
    side = 1.0 if after >= 0 else -1.0
    lot = float(data.lot[i])
    least = data.min_position_value / data.prices[i]
    steps = np.ceil((least - abs(after)) / lot - 1e-9)
    while abs(after) + steps * lot < least * (1 - 1e-12):
        steps += 1
    trade = shares[i] + side * steps * lot
    while not meets_minimum(data, np.array([trade * data.prices[i]]))[0]:
        trade += side * lot
    return float(trade)


def _sized_trades(model: Model, shares: np.ndarray) -> np.ndarray:
    """A trade a hair short of the minimum trade size (under a cent) made the few lots larger that
    reach it, where the limits allow: exact mode's fractional counts, rounded to a millionth of a
    share, fall 4e-5 in currency short of it, and with the semi-continuous positions its polish
    kept them there."""
    data = model.data
    values = shares * data.prices
    short = ~meets_minimum(data, values) & (np.abs(values) >= data.min_trade_value - _CENT) & (shares != 0)
    for i in np.flatnonzero(short):
        trial = shares.copy()
        lot_value = data.lot[i] * data.prices[i]
        steps = np.ceil((data.min_trade_value - abs(values[i])) / lot_value) + 1
        trial[i] += np.sign(shares[i]) * steps * data.lot[i]
        if not breaches(data, trial, model.checked_groups, np.array([i])):
            shares = trial
    return shares


def _refusal(data: ProblemData, shares: np.ndarray, i: int, broken: list[str]) -> InfeasibleRebalanceError:
    symbol = data.symbols[i]
    value = abs(float((data.shares[i] + shares[i]) * data.prices[i]))
    give = data.min_position_value - value
    conflicts = [
        ConstraintConflict(
            "min_position_value",
            give / data.value,
            f"{symbol} would end at {value:,.2f}; neither selling it out nor raising it to the minimum "
            "keeps the other limits",
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
    least = data.min_position_value / data.ref_value
    most = np.abs(data.x0) + 2.0 + (abs(data.cash_flow) + data.value) / data.ref_value  # no position reaches it
    long = cp.Variable(n, boolean=True, name="held_long")
    short = cp.Variable(n, boolean=True, name="held_short")
    return [
        weights >= least * long - cp.multiply(most, short),
        weights <= cp.multiply(most, long) - least * short,
        long + short <= 1,
    ]


def exact_or_named(model: Model, time_limit: float, solve_exact: Callable[..., T]) -> T:
    """Exact mode's program on ``model``; when it proves no whole-share trades keep every limit,
    the program once more without ``min_position_value``: when that one has trades, the minimum
    is what makes the request infeasible, and the refusal names it."""
    try:
        return solve_exact(model, time_limit=time_limit)
    except InfeasibleRebalanceError as exc:
        data = model.data
        if data.min_position_value <= 0:
            raise
        try:
            solve_exact(model.with_data(dataclasses.replace(data, min_position_value=0.0)), time_limit=time_limit)
        except FinwizError:
            raise exc from None
        raise InfeasibleRebalanceError(
            [ConstraintConflict("min_position_value", 0.0, "whole-share trades keep every other limit")],
            f"exact mode: no whole-share trades keep every position at zero or at "
            f"min_position_value={data.min_position_value:,.2f}",
        ) from exc
