"""The post-trade state of concrete share trades, and every hard constraint checked on it.

This is the single source of truth for money and weights: the engine's result, the rounding
step's final check and the tests all use :func:`post_trade_state`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finwiz.optimizer._data import ProblemData
from finwiz.schemas import ComplianceCheck

__all__ = ["PostTradeState", "compliance_checks", "post_trade_state", "trade_costs"]

RELATIVE_TOLERANCE = 1e-9
"""A constraint holds when it is met to within this fraction of portfolio value (float noise)."""


def trade_costs(
    data: ProblemData, trade_values: np.ndarray, owner: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(transaction, market impact) cost in currency of signed ``trade_values``.

    ``trade_values[j]`` trades asset ``owner[j]`` (default: asset ``j``).
    """
    size = np.abs(trade_values)
    rate = data.cost_rate if owner is None else data.cost_rate[owner]
    linear = rate * size
    if data.impact is None:
        return linear, np.zeros_like(linear)
    k = data.impact if owner is None else data.impact[owner]
    impact = k * (size / data.ref_value) ** 1.5 * data.ref_value
    return linear, impact


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

    @property
    def total_cost(self) -> float:
        """Transaction plus impact costs, in currency."""
        return float(self.transaction_costs.sum() + self.impact_costs.sum())


def post_trade_state(data: ProblemData, trade_shares: np.ndarray) -> PostTradeState:
    """Apply ``trade_shares``: cash after = cash + cash flow - sum(trade values) - costs."""
    trade_values = trade_shares * data.prices
    linear, impact = trade_costs(data, trade_values)
    shares_after = data.shares + trade_shares
    values_after = shares_after * data.prices
    cash_after = float(data.cash + data.cash_flow - trade_values.sum() - linear.sum() - impact.sum())
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
    )


def _check(name: str, term: str, kind: str, limit: float, value: float, scale: float = 1.0) -> ComplianceCheck:
    slack = limit - value if kind == "<=" else value - limit
    return ComplianceCheck.trusted(
        constraint=name,
        term=term,
        kind=kind,
        limit=float(limit),
        value=float(value),
        slack=float(slack),
        satisfied=bool(slack >= -RELATIVE_TOLERANCE * scale),
    )


def _worst(
    name: str,
    term: str,
    kind: str,
    limits: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray,
    symbols: tuple[str, ...],
) -> ComplianceCheck | None:
    if not mask.any():
        return None
    slack = np.where(mask, (limits - values) if kind == "<=" else (values - limits), np.inf)
    i = int(np.argmin(slack))
    return _check(f"{name}[{symbols[i]}]", term, kind, limits[i], values[i])


def compliance_checks(data: ProblemData, state: PostTradeState) -> list[ComplianceCheck]:
    """Every hard constraint on the final trades: per-asset groups by their tightest asset."""
    checks: list[ComplianceCheck] = []
    w = state.weights_after
    symbols = data.symbols
    traded = np.abs(state.trade_shares) > 0
    bought = state.trade_shares > 0
    sold = state.trade_shares < 0
    scale = data.value  # trade-count style checks compare amounts in currency

    checks.append(_check("cash_floor", "cash_floor", ">=", data.min_cash_weight, state.cash_weight_after))
    if not data.allow_short:
        worst = _worst(
            "long_only",
            "trade_bounds",
            ">=",
            np.zeros(data.n),
            state.shares_after,
            np.ones(data.n, bool),
            symbols,
        )
        if worst is not None:
            checks.append(worst)
    for reason, mask in data.blocked.items():
        if not mask.any():
            continue
        if reason in ("no_buy", "esg_screen"):
            moved = bought & mask
        elif reason == "no_sell":
            moved = sold & mask
        else:
            moved = traded & mask
        amount = float(np.abs(state.trade_values[moved]).sum())
        name = reason if not moved.any() else f"{reason}[{symbols[int(np.argmax(moved))]}]"
        checks.append(_check(name, "trade_bounds", "<=", 0.0, amount, scale))
    if data.position_cap is not None:
        worst = _worst(
            "max_position",
            "max_position",
            "<=",
            data.position_cap,
            w,
            np.isfinite(data.position_cap),
            symbols,
        )
        if worst is not None:
            checks.append(worst)
    if data.position_floor is not None:
        worst = _worst(
            "min_position",
            "min_position",
            ">=",
            data.position_floor,
            w,
            data.position_floor > 0,
            symbols,
        )
        if worst is not None:
            checks.append(worst)
    if data.sector_cap is not None:
        has = data.sector_of >= 0
        sector_weight = np.bincount(data.sector_of[has], weights=w[has], minlength=len(data.sector_names))
        for s, name in enumerate(data.sector_names):
            if np.isfinite(data.sector_cap[s]):
                checks.append(
                    _check(
                        f"sector_cap[{name}]",
                        "sector_cap",
                        "<=",
                        data.sector_cap[s],
                        sector_weight[s],
                    )
                )
    if data.esg is not None and data.esg_floor is not None:
        invested = state.values_after.sum()
        average = float(data.esg @ state.values_after / invested) if invested > 0 else data.esg_floor
        checks.append(
            _check(
                "esg_floor",
                "esg_floor",
                ">=",
                data.esg_floor,
                average,
                max(1.0, abs(data.esg_floor)),
            )
        )
    if data.turnover_cap is not None:
        checks.append(_check("turnover_cap", "turnover_cap", "<=", data.turnover_cap, state.turnover))
    return checks


def min_trade_check(data: ProblemData, state: PostTradeState) -> ComplianceCheck | None:
    """Every trade is worth at least ``min_trade_value`` (None when there is no minimum)."""
    if data.min_trade_value <= 0:
        return None
    sizes = np.abs(state.trade_values)
    traded = state.trade_shares != 0
    if not traded.any():
        return _check("min_trade_size", "min_trade_size", ">=", data.min_trade_value, data.min_trade_value)
    i = int(np.argmin(np.where(traded, sizes, np.inf)))
    return _check(
        f"min_trade_size[{data.symbols[i]}]",
        "min_trade_size",
        ">=",
        data.min_trade_value,
        sizes[i],
        data.min_trade_value,
    )
