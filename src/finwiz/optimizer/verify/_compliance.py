"""The post-trade state of concrete share trades, and every hard constraint checked on it.

This is the single source of truth for money and weights: the engine's result, the whole-share
step's final check and the tests all use :func:`post_trade_state`. The checks read the limit
groups of the model's one description (``_model``): each group's ``rows / per`` at the final
trades, in the group's unit — no limit's formula is restated here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import SCALARS, LimitGroup, trade_vector
from finwiz.schemas import ComplianceCheck

__all__ = [
    "PostTradeState",
    "breaches",
    "checks_at",
    "compliance_checks",
    "continuous_point",
    "meets_minimum",
    "min_position_checks",
    "min_trade_check",
    "on_lots",
    "position_sized",
    "post_trade_state",
    "trade_costs",
    "trade_point",
    "trade_scalars",
]

RELATIVE_TOLERANCE = 1e-9
"""A constraint holds when it is met to within this fraction of portfolio value (float noise)."""


def trade_costs(
    data: ProblemData, trade_values: np.ndarray, owner: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(transaction, market impact) cost in currency of signed ``trade_values`` under the request's
    :class:`~finwiz.optimizer.describe._costs.CostModel`; ``trade_values[j]`` trades asset ``owner[j]``
    (default: asset ``j``)."""
    return data.costs.split(trade_values, owner)


def trade_scalars(data: ProblemData, trade_values: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
    """Each signed trade's share of the model's scalar columns, ``V_ref`` units, one row per trade
    (``SCALARS`` columns): its cost (transaction plus impact), ``|u|``, ``u``, and the tax and the
    gain of the lots its sale relieves (``_tax.LotBook.relief``; 0 outside a taxable account).

    ``trade_values[j]`` (currency) trades asset ``owner[j]`` (default: asset ``j``).
    """
    linear, impact = trade_costs(data, trade_values, owner)
    u = trade_values / data.ref_value
    out = np.zeros((len(u), SCALARS))
    out[:, 0], out[:, 1], out[:, 2] = (linear + impact) / data.ref_value, np.abs(u), u
    if data.lots is not None:
        price = data.prices if owner is None else data.prices[owner]
        sold = np.maximum(-trade_values, 0.0) / price
        tax, gain = data.lots.realised(sold) if owner is None else data.lots.tax_and_gain(sold, owner)
        out[:, 3], out[:, 4] = tax / data.ref_value, gain / data.ref_value
    return out


def trade_point(data: ProblemData, trade_values: np.ndarray) -> np.ndarray:
    """The model's variables ``z`` at signed trades (currency, one per asset): exact costs, taxes."""
    u = trade_values / data.ref_value
    return np.concatenate([np.maximum(u, 0.0), np.maximum(-u, 0.0), trade_scalars(data, trade_values).sum(axis=0)])


def continuous_point(data: ProblemData, buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray:
    """``z`` at a continuous solve's buy and sell (``V_ref`` units, possibly both on one asset)
    and its cost: the tax and gain of the lots the sells relieve."""
    if data.lots is None:
        return trade_vector(buy, sell, cost)
    tax, gain = data.lots.tax_and_gain(sell * data.ref_value / data.prices)
    return trade_vector(buy, sell, cost, float(tax.sum()) / data.ref_value, float(gain.sum()) / data.ref_value)


def meets_minimum(data: ProblemData, trade_values: np.ndarray) -> np.ndarray:
    """Which signed trade values keep the minimum trade size: no trade, or at least the minimum
    (and a cent) in value."""
    smallest = max(data.min_trade_value * (1 - 1e-12), NOISE_VALUE)
    return np.asarray((trade_values == 0) | (np.abs(trade_values) >= smallest))


def on_lots(data: ProblemData, trade_shares: np.ndarray) -> np.ndarray:
    """Which share trades keep the lot rule: whole lots (millionths of a share when fractional),
    or selling the whole holding out (an odd lot may be sold)."""
    lots = trade_shares / data.lot
    whole = np.abs(lots - np.round(lots)) <= 1e-9 * np.maximum(1.0, np.abs(lots))
    return np.asarray(whole | ((trade_shares < 0) & np.isclose(-trade_shares, data.shares, rtol=1e-12, atol=0.0)))


@dataclass(frozen=True)
class PostTradeState:
    """Positions, cash and weights after ``trade_shares`` (signed) are executed."""

    trade_shares: np.ndarray
    trade_values: np.ndarray
    shares_after: np.ndarray
    values_after: np.ndarray
    transaction_costs: np.ndarray
    impact_costs: np.ndarray
    cash_after: float
    value_after: float
    weights_after: np.ndarray
    cash_weight_after: float
    turnover: float
    transaction_cost: float  # the sums of transaction_costs and impact_costs, summed once
    impact_cost: float

    @property
    def total_cost(self) -> float:
        """Transaction plus impact costs, in currency."""
        return self.transaction_cost + self.impact_cost

    def trade_vector(self, data: ProblemData) -> np.ndarray:
        """The trades as the model's variables ``z`` (fractions of V_ref, see :func:`trade_point`);
        kept for ``data`` (the checks and the reasons read the same point)."""
        kept = self.__dict__.get("_z")
        if kept is None or kept[0] is not data:
            kept = (data, trade_point(data, self.trade_values))
            self.__dict__["_z"] = kept  # frozen dataclass: kept beside the fields
        z: np.ndarray = kept[1]
        return z


def post_trade_state(data: ProblemData, trade_shares: np.ndarray) -> PostTradeState:
    """Apply ``trade_shares``: cash after = cash + cash flow - sum(trade values) - costs (- the
    tax, when paid from cash)."""
    trade_values = trade_shares * data.prices
    linear, impact = trade_costs(data, trade_values)
    shares_after = data.shares + trade_shares
    values_after = shares_after * data.prices
    linear_sum, impact_sum = linear.sum(), impact.sum()
    cash_after = float(data.cash + data.cash_flow - trade_values.sum() - linear_sum - impact_sum)
    if data.lots is not None and data.lots.settings.pay_tax_from_cash:  # the tax leaves the account
        cash_after -= data.lots.exact_tax(np.maximum(-trade_shares, 0.0))
    value_after = float(values_after.sum() + cash_after)
    return PostTradeState(
        trade_shares=trade_shares,
        trade_values=trade_values,
        shares_after=shares_after,
        values_after=values_after,
        transaction_costs=linear,
        impact_costs=impact,
        cash_after=cash_after,
        value_after=value_after,
        weights_after=values_after / value_after,
        cash_weight_after=cash_after / value_after,
        turnover=float(np.abs(trade_values).sum() / data.value),
        transaction_cost=float(linear_sum),
        impact_cost=float(impact_sum),
    )


class _Shown(NamedTuple):
    """The rows the compliance table shows (see :func:`checks_at`): each one's ``(constraint, term,
    unit)`` and its figures, in row order."""

    labels: list[tuple[str, str, str]]
    upper: np.ndarray  # the row's finite bound is its upper one
    limit: np.ndarray  # in the group's unit (row units times ``show``)
    value: np.ndarray
    slack: np.ndarray
    ok: np.ndarray


def _shown(groups: Sequence[tuple[str, LimitGroup]], z: np.ndarray) -> _Shown:
    """Every group's rows at ``z`` against their bounds, all groups' figures in one pass (each
    row's arithmetic is its own, so the figures are those of one group alone); a per-asset group
    shows its tightest member, any other every member."""
    values = [group.value(z) for _, group in groups]
    sizes = [len(value) for value in values]
    value = _joined(values)
    upper_side = np.isfinite(upper := _joined([_sized(g.upper, m) for (_, g), m in zip(groups, sizes, strict=True)]))
    limit = np.where(upper_side, upper, _joined([_sized(g.lower, m) for (_, g), m in zip(groups, sizes, strict=True)]))
    slack = np.where(upper_side, limit - value, value - limit)
    at: list[int] = []
    scales: list[float] = []
    labels: list[tuple[str, str, str]] = []
    start = 0
    for (term, group), m in zip(groups, sizes, strict=True):
        rows = [int(np.argmin(slack[start : start + m]))] if group.per_asset and m else list(range(m))
        scales += _shown_scale(group, rows, m)
        name, members, unit = group.name, group.members, group.unit
        for r in rows:
            at.append(start + r)
            labels.append((f"{name}[{members[r]}]" if members[r] != name else name, term, unit))
        start += m
    shown, scale = np.array(at, dtype=np.intp), np.array(scales, dtype=float)
    limits = limit[shown]
    # fmax: Python's max(1.0, nan) is 1.0, as the tolerance was once written per row
    ok = slack[shown] >= -RELATIVE_TOLERANCE * np.fmax(1.0, np.abs(limits))
    return _Shown(labels, upper_side[shown], limits * scale, value[shown] * scale, slack[shown] * scale, ok)


def _shown_scale(group: LimitGroup, rows: list[int], m: int) -> list[float]:
    """The factor from row units to the group's unit of each of ``rows`` (of its ``m``):
    ``show`` has one per row, or one for all."""
    show = group.show
    if isinstance(show, float):
        return [show] * len(rows)
    factors = np.asarray(show, dtype=float)
    return factors[rows].tolist() if factors.shape == (m,) else [float(factors.flat[0])] * len(rows)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _sized(bound: np.ndarray, m: int) -> np.ndarray:
    """A group's bounds, one per row (a single bound broadcast)."""
    return bound if len(bound) == m else np.broadcast_to(bound, (m,))


def checks_at(groups: Sequence[tuple[str, LimitGroup]], z: np.ndarray) -> list[ComplianceCheck]:
    """Every limit group (with the term that states it) checked at ``z``: each group's rows against
    their bounds, the tightest member of a per-asset group and every member otherwise, amounts in
    the group's unit."""
    shown = _shown(groups, z)
    columns = zip(
        shown.labels,
        shown.upper.tolist(),
        shown.limit.tolist(),
        shown.value.tolist(),
        shown.slack.tolist(),
        shown.ok.tolist(),
        strict=True,
    )
    return ComplianceCheck._from_states(
        {
            "constraint": constraint,
            "term": term,
            "kind": "<=" if upper else ">=",
            "limit": lim,
            "value": val,
            "slack": gap,
            "satisfied": kept,
            "unit": unit,
        }
        for (constraint, term, unit), upper, lim, val, gap, kept in columns
    )


def compliance_checks(
    data: ProblemData, state: PostTradeState, groups: Sequence[tuple[str, LimitGroup]]
) -> list[ComplianceCheck]:
    """Every limit group (with the term that states it) checked on the final trades."""
    return checks_at(groups, state.trade_vector(data))


def breaches(
    data: ProblemData,
    shares: np.ndarray,
    groups: Sequence[tuple[str, LimitGroup]],
    assets: np.ndarray | None = None,
    lots: bool = False,
) -> list[str]:
    """The limits share trades ``shares`` break: every group's (``Model.checked_groups``), the
    minimum trade size and ``min_position_value`` of ``assets`` (default: every asset) and, with ``lots``, the
    lot rule (:func:`on_lots`). Empty: they keep them all."""
    state = post_trade_state(data, shares)
    shown = _shown(groups, state.trade_vector(data))
    names = [label[0] for label, kept in zip(shown.labels, shown.ok.tolist(), strict=True) if not kept]
    at = np.arange(data.n) if assets is None else assets
    names += [f"min_trade_size[{data.symbols[i]}]" for i in at[~meets_minimum(data, state.trade_values[at])]]
    if data.min_position_value > 0:
        names += [f"min_position_value[{data.symbols[i]}]" for i in at[~position_sized(data, data.shares + shares)[at]]]
    if lots:
        names += [f"lots[{data.symbols[i]}]" for i in np.flatnonzero(~on_lots(data, shares))]
    return names


def min_trade_check(data: ProblemData, state: PostTradeState) -> ComplianceCheck | None:
    """Every trade is worth at least ``min_trade_value`` (None when there is no minimum)."""
    if data.min_trade_value <= 0:
        return None
    sizes = np.abs(state.trade_values)
    traded = state.trade_shares != 0
    ok = bool(meets_minimum(data, state.trade_values).all())
    if not traded.any():
        i, value, name = -1, data.min_trade_value, "min_trade_size"
    else:
        i = int(np.argmin(np.where(traded, sizes, np.inf)))
        value, name = float(sizes[i]), f"min_trade_size[{data.symbols[i]}]"
    return ComplianceCheck.trusted(
        constraint=name,
        term="min_trade_size",
        kind=">=",
        limit=float(data.min_trade_value),
        value=value,
        slack=value - float(data.min_trade_value),
        satisfied=ok,
        unit="currency",
    )


def position_sized(data: ProblemData, shares_after: np.ndarray) -> np.ndarray:
    """Which post-trade positions keep ``min_position_value``: zero, or worth at least the minimum
    in absolute value (to float noise)."""
    value = np.abs(shares_after * data.prices)
    return np.asarray((value <= NOISE_VALUE * 1e-6) | (value >= data.min_position_value * (1 - RELATIVE_TOLERANCE)))


def min_position_checks(data: ProblemData, state: PostTradeState) -> list[ComplianceCheck]:
    """A row per asset held after the trades: its absolute value against ``min_position_value``
    (none without a minimum; a position of zero keeps it and is not listed)."""
    if data.min_position_value <= 0:
        return []
    sized = position_sized(data, state.shares_after)
    value = np.abs(state.values_after)
    return [
        ComplianceCheck.trusted(
            constraint=f"min_position_value[{data.symbols[i]}]",
            term="min_position_value",
            kind=">=",
            limit=float(data.min_position_value),
            value=float(value[i]),
            slack=float(value[i] - data.min_position_value),
            satisfied=bool(sized[i]),
            unit="currency",
        )
        for i in np.flatnonzero(value > NOISE_VALUE * 1e-6)
    ]
