"""The verify and result stages: every limit checked on the final trades, and the answer built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from finwiz.errors import SolverError
from finwiz.optimizer.describe._data import ProblemData, tracking_distance
from finwiz.optimizer.discrete._exact import ExactOutcome
from finwiz.optimizer.discrete._stage import Decided
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.tax._warning import farther_warning
from finwiz.optimizer.verify._compliance import (
    PostTradeState,
    compliance_checks,
    min_position_checks,
    min_trade_check,
)
from finwiz.schemas import (
    ComplianceCheck,
    PortfolioConfiguration,
    RebalancingResult,
    TradeAction,
    TradeReason,
    TradeRecommendation,
)

__all__ = ["build_result", "checks_of", "trades_of", "verify"]


def checks_of(model: Model, state: PostTradeState) -> list[ComplianceCheck]:
    """Every limit of the model's description and the minimum trade size, on ``state``."""
    checks = compliance_checks(model.data, state, model.checked_groups)
    size_check = min_trade_check(model.data, state)
    if size_check is not None:
        checks.append(size_check)
    return checks + min_position_checks(model.data, state)


def verify(model: Model, state: PostTradeState, decided: Decided) -> list[ComplianceCheck]:
    """The compliance table; a breach by the engine's own trades is a bug, never a silent result."""
    checks = checks_of(model, state)
    breached = [c for c in checks if not c.satisfied]
    if breached:
        raise SolverError(
            "final trades breach " + ", ".join(f"{c.constraint} by {-c.slack:.3g} {c.unit}".rstrip() for c in breached),
            solver=decided.outcome.solver if decided.outcome is not None else "custom",
            status="verification_failed",
        )
    return checks


def trades_of(
    data: ProblemData, state: PostTradeState, reasons: Mapping[int, list[TradeReason]] | None = None
) -> list[TradeRecommendation]:
    """One recommendation per traded asset (a taxable account's with the lots it sells, and its
    ``reasons`` by asset index, see ``_reasons``)."""
    reasons = reasons or {}
    idx = np.flatnonzero(state.trade_shares != 0)
    qty = state.trade_shares[idx]
    cost = state.transaction_costs[idx]
    impact = state.impact_costs[idx]
    columns = zip(
        idx.tolist(),
        qty.tolist(),
        data.prices[idx].tolist(),
        np.abs(state.trade_values[idx]).tolist(),
        cost.tolist(),
        impact.tolist(),
        data.shares[idx].tolist(),
        state.shares_after[idx].tolist(),
        data.current_weights[idx].tolist(),
        data.target[idx].tolist(),
        state.weights_after[idx].tolist(),
        strict=True,
    )
    sales = data.lots.sales(np.maximum(-state.trade_shares, 0.0)) if data.lots is not None else None
    buy, sell, symbols = TradeAction.BUY, TradeAction.SELL, data.symbols
    return TradeRecommendation._from_states(
        [
            {
                "symbol": symbols[i],
                "action": buy if q > 0 else sell,
                "shares": abs(q),
                "price": price,
                "trade_value": value,
                "transaction_cost": c,
                "market_impact_cost": m,
                "total_estimated_cost": c + m,
                "current_shares": held,
                "post_trade_shares": after,
                "current_weight": current,
                "target_weight": target,
                "post_trade_weight": weight,
                "lots": [] if sales is None else sales[i],
                "reasons": reasons.get(i, []),
            }
            for i, q, price, value, c, m, held, after, current, target, weight in columns
        ]
    )


def _tracking(
    data: ProblemData,
    state: PostTradeState,
    trades: list[TradeRecommendation],
    warnings: list[str],
    taxed: Model | None,
) -> tuple[float, float, list[str]]:
    """The distance to the target before and after trading; a taxable account's trades that
    leave it farther say so."""
    before = tracking_distance(data.current_weights, data.cash / data.value, data.target, data.cash_target)
    after = tracking_distance(state.weights_after, state.cash_weight_after, data.target, data.cash_target)
    if taxed is not None and after > before * (1 + 1e-9) and len(trades):  # the tax weight, or a limit?
        warnings = [*warnings, farther_warning(taxed, before, after)]
    return before, after, warnings


def build_result(
    config: PortfolioConfiguration,
    data: ProblemData,
    state: PostTradeState,
    trades: list[TradeRecommendation],
    checks: list[ComplianceCheck],
    warnings: list[str],
    decided: Decided,
    achieved: float | None,
    method: str,
    portfolio_id: str | None,
    analysis: Any,
) -> RebalancingResult:
    """The result of verified trades (its stages and time are set by the engine)."""
    outcome, mip, rounding = decided.outcome, decided.mip, decided.rounding
    bound = decided.bound if achieved is not None else None
    before, after, warnings = _tracking(data, state, trades, warnings, decided.model if data.lots is not None else None)
    violations = [c.slack for c in checks if c.term != "custom"]
    solver = "custom" if outcome is None else outcome.solver
    if decided.repaired:
        solver = f"custom, repaired by {solver}"
    # The per-symbol maps, the trades, the checks and the sectors (the configuration's, validated
    # there) are of their exact types: set after the rest is validated (validating them was most of
    # the result stage on large books).
    built: dict[str, Any] = {
        "trades": trades,
        "compliance": checks,
        **_maps_after(data, state),
        "sectors": dict(config.sectors),
    }
    validated = RebalancingResult(
        status="optimal" if mip is None or mip.proven_optimal else "time_limit",
        method=method,
        currency=config.currency,
        solver=solver if mip is None else f"{mip.solver} (continuous bound: {solver})",
        mip_gap=None if mip is None else mip.gap,
        rounding=rounding,
        **{name: [] if isinstance(value, list) else {} for name, value in built.items()},
        **_book_after(data, state),
        exposure_table=config.exposures,
        sleeve_weights=config.sleeves,
        max_constraint_residual=max(0.0, -min(violations, default=0.0)),
        objective_value=achieved,
        continuous_objective=bound,
        objective_gap=None if bound is None or achieved is None else achieved - bound,
        **_bound(bound, mip, achieved),
        tracking_distance_before=before,
        tracking_distance_after=after,
        iterations=outcome.iterations if outcome is not None else 0,
        warnings=warnings,
        analysis=analysis,
        portfolio_id=portfolio_id,
        tax=None if data.lots is None else data.lots.summary(np.maximum(-state.trade_shares, 0.0)),
    )
    return validated.model_copy(update=built)


def _maps_after(data: ProblemData, state: PostTradeState) -> dict[str, dict[str, float]]:
    """The result's per-symbol holdings, prices and weights, before and after the trades."""
    symbols = data.symbols
    current = dict(zip(symbols, data.current_weights.tolist(), strict=True))
    current["CASH"] = float(data.cash / data.value)
    return {
        "current_holdings": dict(zip(symbols, data.shares.tolist(), strict=True)),
        "post_trade_holdings": dict(zip(symbols, state.shares_after.tolist(), strict=True)),
        "prices": dict(zip(symbols, data.prices.tolist(), strict=True)),
        "current_weights": current,
        "target_weights": dict(zip(symbols, data.target.tolist(), strict=True)),
        "post_trade_weights": dict(zip(symbols, state.weights_after.tolist(), strict=True)),
    }


def _book_after(data: ProblemData, state: PostTradeState) -> dict[str, Any]:
    """The result's cash, costs and value, before and after the trades."""
    return {
        "cash_before": data.cash,
        "cash_flow": data.cash_flow,
        "cash_after": state.cash_after,
        "cash_weight_after": state.cash_weight_after,
        "target_cash_weight": data.cash_target,
        "total_cost": state.total_cost,
        "transaction_costs": state.transaction_cost,
        "market_impact_costs": state.impact_cost,
        "turnover": state.turnover,
        "portfolio_value_before": data.value,
        "portfolio_value_after": state.value_after,
    }


def _bound(continuous: float | None, mip: ExactOutcome | None, achieved: float | None) -> dict[str, Any]:
    """The best lower bound known on the whole-share objective, where it comes from and the gap
    to it: exact mode's dual bound where it is above the continuous optimum (SCIP's, on rows
    backed off by 2e-6 of value: valid to that and the solver's tolerances), else the continuous
    optimum."""
    if continuous is None or achieved is None:
        return {}
    dual = None if mip is None else mip.bound
    if dual is not None and dual > continuous:
        bound, source = min(dual, achieved), "exact_mip"
    else:
        bound, source = continuous, "continuous"
    return {"objective_bound": bound, "objective_bound_source": source, "objective_bound_gap": achieved - bound}
