"""Hypothesis: random small requests with random user terms (a linear tilt, a limit on a random
subset of weights), random minimum trades, lot sizes and market impact. The result keeps every
limit, the user's included, to 1e-7 of value, or the request raises a named ``FinwizError``.
Every check is computed from the returned shares and the prices alone, not from the engine's
compliance table."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import FinwizError, PortfolioConfiguration, SolverError
from finwiz.optimizer import (
    Limit,
    MarketImpactModel,
    RebalancingEngine,
    TargetTrackingTerm,
    Term,
    TermParts,
    TradeCountTerm,
    TransactionCostTerm,
    Variables,
)

TOL = 1e-7  # of value


class Tilt(Term):
    """``penalty x w`` on a subset (a linear tilt)."""

    name = "tilt"

    def __init__(self, coef: pd.Series) -> None:
        self.coef = coef  # by symbol: the problem's assets come in its own order (``data.symbols``)

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        coef = cp.Parameter(data.n, name="coef")
        return TermParts(params={"coef": coef}, objective=coef @ v.weights)

    def values(self, data: Any) -> dict[str, np.ndarray]:
        return {"coef": self.coef.reindex(data.symbols).to_numpy()}


class SubsetCap(Term):
    """``mask @ w <= bound``: a limit on a random subset of weights (of the value before trading)."""

    name = "subset"

    def __init__(self, mask: pd.Series, bound: float) -> None:
        self.mask, self.bound = mask, bound

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        mask, bound = cp.Parameter(data.n, name="mask"), cp.Parameter(name="bound")
        return TermParts(
            params={"mask": mask, "bound": bound}, limits=[Limit("subset_cap", mask @ v.weights, "<=", bound)]
        )

    def values(self, data: Any) -> dict[str, Any]:
        return {"mask": self.mask.reindex(data.symbols).to_numpy(), "bound": self.bound}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    symbols = [f"S{i:02d}" for i in range(n)]
    prices = pd.Series(np.round(np.exp(rng.uniform(np.log(3), np.log(600), n)), 2), index=symbols)
    value = draw(st.sampled_from([50_000.0, 1_000_000.0, 20_000_000.0]))
    shares = np.floor(rng.dirichlet(np.ones(n)) * 0.9 * value / prices.to_numpy())
    cash = value - float(shares @ prices.to_numpy())
    fields: dict[str, Any] = {
        "holdings": [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True) if q > 0],
        "target_weights": dict(zip(symbols, (rng.dirichlet(np.ones(n)) * 0.95).tolist(), strict=True)),
        "cash": cash,
        "tolerance": 0.0,
        "min_trade_size": draw(st.sampled_from([0.0, 100.0, 2_000.0])),
        "allow_fractional_shares": draw(st.booleans()),
        "method": "user",
    }
    if draw(st.booleans()):
        fields["lot_sizes"] = {s: float(rng.choice([5, 10, 100])) for s in symbols[: n // 2]}
    if draw(st.booleans()):
        fields["max_position_weight"] = float(max(1.5 / n, 0.3))
    mask = (rng.uniform(size=n) < 0.5).astype(float)
    mask[rng.integers(n)] = 1.0
    current = float(mask @ (shares * prices.to_numpy())) / value
    bound = current * draw(st.floats(0.3, 1.2))
    tilt = np.where(rng.uniform(size=n) < 0.4, draw(st.sampled_from([-0.01, 0.003, 0.02])), 0.0)
    impact = None
    if draw(st.booleans()):
        impact = MarketImpactModel(
            pd.Series(rng.lognormal(np.log(2e7), 1.0, n), index=symbols),
            pd.Series(rng.uniform(0.01, 0.04, n), index=symbols),
        )
    count = draw(st.booleans())
    return {
        "config": PortfolioConfiguration(**fields),
        "prices": prices,
        "mask": mask,
        "bound": bound,
        "tilt": tilt,
        "impact": impact,
        "count": count,
    }


def _check(request: dict[str, Any], result: Any) -> None:
    config, prices = request["config"], request["prices"]
    symbols = list(prices.index)
    p = prices.to_numpy()
    held = np.array([config.shares_by_symbol().get(s, 0.0) for s in symbols])
    trade = np.array([result.post_trade_holdings[s] for s in symbols]) - held
    value = float(held @ p) + config.cash
    traded = np.abs(trade) * p
    impact = request["impact"]
    cost = config.transaction_cost_rate * traded.sum()
    if impact is not None:
        k = impact.coefficient * impact.volatility.to_numpy() / np.sqrt(impact.daily_dollar_volume.to_numpy())
        cost += float((k * traded**1.5).sum())
    cash_after = config.cash - float(trade @ p) - cost
    after = (held + trade) * p
    total = after.sum() + cash_after
    assert cash_after >= -TOL * value  # cash floor 0
    assert (held + trade >= -1e-9).all()  # long only
    assert float(request["mask"] @ after) / value <= request["bound"] + TOL  # the user's limit
    if config.max_position_weight is not None:
        assert (after / total).max() <= config.max_position_weight + TOL
    moved = trade != 0
    assert (traded[moved] >= config.min_trade_size * (1 - 1e-12)).all()
    lots = np.array([config.lot_sizes.get(s, 1e-6 if config.allow_fractional_shares else 1.0) for s in symbols])
    units = trade / lots
    on_lot = np.abs(units - np.round(units)) <= 1e-9 * np.maximum(1.0, np.abs(units))
    sold_out = np.isclose(-trade, held, rtol=1e-12, atol=0.0) & (trade < 0)
    assert (on_lot | sold_out).all()


@settings(max_examples=60)
@given(requests())
def test_user_terms_keep_every_limit_or_raise_a_named_error(request: dict[str, Any]) -> None:
    engine = RebalancingEngine()
    symbols = list(request["prices"].index)
    terms: list[Term] = [TargetTrackingTerm(), TransactionCostTerm(), Tilt(pd.Series(request["tilt"], index=symbols))]
    if request["count"]:
        terms.append(TradeCountTerm())
    engine.strategies["user"] = [*terms, SubsetCap(pd.Series(request["mask"], index=symbols), request["bound"])]
    try:
        result = engine.rebalance(request["config"], request["prices"], market_impact=request["impact"])
    except SolverError:
        raise  # never: a solver failure is not an answer
    except FinwizError as exc:
        refusal = str(exc)  # a named refusal (an infeasible request says which limits conflict)
        assert refusal
        return
    _check(request, result)
