"""The household's answer: one :class:`RebalancingResult` per account (weights of the account's
value) and the household's weights, drag, tax and compliance."""

from __future__ import annotations

import numpy as np

from finwiz.optimizer.describe._data import tracking_distance
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.household._stack import Stack
from finwiz.optimizer.household._terms import drag_rates
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import PostTradeState, post_trade_state
from finwiz.optimizer.verify._result import trades_of, verify
from finwiz.schemas import ComplianceCheck, HouseholdResult, RebalancingResult, TradeRecommendation

__all__ = ["household_result"]


def _trade(
    t: TradeRecommendation, symbol: str, value_before: float, value_after: float, taxed: bool
) -> TradeRecommendation:
    lots = [s.model_copy(update={"lot_id": s.lot_id.partition(":")[2]}) for s in t.lots] if taxed else []
    return TradeRecommendation.trusted(  # the engine's own trade, renamed and reweighted: no copy protocol
        **{
            **t.__dict__,
            "symbol": symbol,
            "current_weight": t.current_shares * t.price / value_before if value_before else 0.0,
            "post_trade_weight": t.post_trade_shares * t.price / value_after if value_after else 0.0,
            "lots": lots,
        }
    )


def _account_result(
    stack: Stack,
    a: int,
    state: PostTradeState,
    trades: dict[int, TradeRecommendation],
    checks: list[ComplianceCheck],
    decided: Decided,
) -> RebalancingResult:
    data, account = stack.data, stack.accounts[a]
    idx = np.flatnonzero(stack.pair_account == a)
    symbols = [stack.symbols[i] for i in stack.pair_asset[idx]]
    costs = float(state.transaction_costs[idx].sum() + state.impact_costs[idx].sum())
    cash_after = account.cash - float(state.trade_values[idx].sum()) - costs
    before = data.shares[idx] * data.prices[idx]
    value_before = account.cash + float(before.sum())
    value_after = cash_after + float(state.values_after[idx].sum())
    taxed = account.tax is not None
    tag = data.symbols[idx[0]].rpartition(":")[0] + ":" if idx.size else "\0"
    mine = [c for c in checks if tag in c.constraint or f"[{account.account_id}]" in c.constraint]
    own_trades = [
        _trade(trades[p], s, value_before, value_after, taxed)
        for p, s in zip(idx.tolist(), symbols, strict=True)
        if p in trades
    ]
    sold = np.where(stack.pair_account == a, np.maximum(-state.trade_shares, 0.0), 0.0)
    return RebalancingResult(
        method=str(stack.household.method),
        solver=decided.outcome.solver if decided.outcome is not None else "household",
        rounding=decided.rounding,
        trades=own_trades,
        current_holdings=dict(zip(symbols, data.shares[idx].tolist(), strict=True)),
        post_trade_holdings=dict(zip(symbols, state.shares_after[idx].tolist(), strict=True)),
        prices=dict(zip(symbols, data.prices[idx].tolist(), strict=True)),
        current_weights={
            **dict(zip(symbols, (before / value_before).tolist(), strict=True)),
            "CASH": account.cash / value_before,
        },
        target_weights={},
        post_trade_weights=dict(zip(symbols, (state.values_after[idx] / value_after).tolist(), strict=True)),
        cash_before=account.cash,
        cash_after=cash_after,
        cash_weight_after=cash_after / value_after,
        target_cash_weight=0.0,
        total_cost=costs,
        transaction_costs=float(state.transaction_costs[idx].sum()),
        market_impact_costs=float(state.impact_costs[idx].sum()),
        turnover=float(np.abs(state.trade_values[idx]).sum() / value_before),
        portfolio_value_before=value_before,
        portfolio_value_after=value_after,
        compliance=mine,
        portfolio_id=account.account_id,
        tax=data.lots.summary(sold) if taxed and data.lots is not None else None,
    )


def household_result(stack: Stack, model: Model, decided: Decided) -> HouseholdResult:
    """Verify the stacked trades against every limit and split them by account."""
    data, hh = model.data, stack.hh
    state = post_trade_state(data, decided.shares)
    checks = verify(model, state, decided)
    trades = dict(zip(np.flatnonzero(state.trade_shares != 0).tolist(), trades_of(data, state), strict=True))
    n = hh.n
    before = np.bincount(stack.pair_asset, weights=data.shares * data.prices, minlength=n) / data.value
    after = np.bincount(stack.pair_asset, weights=state.values_after, minlength=n) / state.value_after
    drag = drag_rates(stack)
    symbols = list(stack.symbols)
    accounts = stack.accounts
    return HouseholdResult(
        household_id=stack.household.household_id,
        accounts={
            a.account_id: _account_result(stack, k, state, trades, checks, decided) for k, a in enumerate(accounts)
        },
        kinds={a.account_id: a.kind for a in accounts},
        target_weights=dict(zip(symbols, hh.target.tolist(), strict=True)),
        weights_before=dict(zip(symbols, before.tolist(), strict=True)),
        weights_after=dict(zip(symbols, after.tolist(), strict=True)),
        value_before=data.value,
        value_after=state.value_after,
        tax_drag_before=float(drag @ (data.shares * data.prices)),
        tax_drag_after=float(drag @ state.values_after),
        tracking_distance_before=tracking_distance(before, data.cash / data.value, hh.target, hh.cash_target),
        tracking_distance_after=tracking_distance(after, state.cash_weight_after, hh.target, hh.cash_target),
        tax=None
        if data.lots is None or not stack.taxable().any()
        else data.lots.summary(np.maximum(-state.trade_shares, 0.0)),
        compliance=checks,
        objective_value=achieved(model, decided.shares),
        warnings=list(decided.warnings),
    )
