"""Hypothesis properties on random portfolios of 2-200 assets: DESIGN.md guarantees 1, 2, 3, 6.

Every check here recomputes the quantity from the returned shares and prices, independently of
the engine's own compliance module.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import InfeasibleRebalanceError, InvalidPortfolioError, PortfolioConfiguration, RebalancingResult, rebalance
from finwiz.optimizer import clear_cache

TOL = 1e-9  # relative float noise allowed on a limit


@st.composite
def requests(
    draw: st.DrawFn, *, max_assets: int = 200, exact_shape: bool = False, long_short: bool = False
) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """A random request; with ``long_short`` about half are long/short (short targets, short
    holdings, a gross-exposure cap near the targets' own, binding or not)."""
    n = draw(st.integers(2, max_assets))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(n)]
    prices = {s: float(np.round(np.exp(rng.uniform(np.log(2), np.log(800))), 2)) for s in symbols}
    shares = np.floor(rng.exponential(20_000 / n, n) / np.array(list(prices.values())) * rng.integers(0, 2, n) * 10)
    value = float(shares @ np.array(list(prices.values())))
    cash = float(np.round(rng.uniform(0, 0.2) * max(value, 10_000), 2))
    invested = draw(st.floats(0.8, 1.0))
    targets = rng.dirichlet(np.ones(n)) * invested
    fields: dict[str, object] = {
        "holdings": [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True) if q > 0],
        "target_weights": {s: float(t) for s, t in zip(symbols, targets, strict=True)},
        "cash": cash,
        "tolerance": draw(st.sampled_from([0.0, 0.0, 0.002, 0.01])),
        "transaction_cost_rate": draw(st.sampled_from([0.0, 0.001, 0.005])),
        "min_trade_size": draw(st.sampled_from([0.0, 50.0, 200.0])),
        "method": draw(st.sampled_from(["minimize_costs", "minimize_trades"])),
        "allow_fractional_shares": draw(st.booleans()),
        "cash_flow": float(np.round(draw(st.floats(-0.05, 0.1)) * (value + cash), 2)),
        "min_cash_weight": draw(st.sampled_from([0.0, 0.0, 0.01])),
    }
    if draw(st.booleans()):
        fields["max_position_weight"] = float(max(2.0 / n, draw(st.floats(0.05, 0.5))))
    if draw(st.booleans()):
        k = int(rng.integers(2, 6))
        fields["sectors"] = {s: f"Sec{rng.integers(0, k)}" for s in symbols}
        fields["max_sector_weight"] = draw(st.floats(0.3, 0.8))
    if draw(st.booleans()):
        fields["max_turnover"] = draw(st.floats(0.05, 1.0))
    if draw(st.booleans()):
        fields["lot_sizes"] = {s: float(rng.choice([1, 5, 10, 100])) for s in symbols[: n // 2]}
    if draw(st.booleans()):
        fields["esg_scores"] = {s: float(rng.uniform(0, 10)) for s in symbols}
        fields["min_esg_score"] = 2.0
        fields["min_average_esg_score"] = draw(st.floats(3.0, 5.0))
    if draw(st.booleans()):
        pick = rng.permutation(symbols)
        fields["no_buy"] = list(pick[:2])
        fields["no_sell"] = list(pick[2:4])
        fields["no_trade"] = list(pick[4:5])
    if long_short and draw(st.booleans()):
        _make_long_short(draw, rng, fields, symbols, shares, prices, targets)
    return PortfolioConfiguration(**fields), prices  # type: ignore[arg-type]


def _make_long_short(
    draw: st.DrawFn,
    rng: np.random.Generator,
    fields: dict[str, object],
    symbols: list[str],
    shares: np.ndarray,
    prices: dict[str, float],
    targets: np.ndarray,
) -> None:
    """Turn a request long/short: about a third of the targets short (the longs scaled so the net
    stays what it was), a quarter of the positions held short (their proceeds in cash)."""
    n = len(symbols)
    p = np.array([prices[s] for s in symbols])
    short = rng.random(n) < 0.35
    short[0] = False
    net = float(targets.sum())
    longs = targets * (net + targets[short].sum()) / targets[~short].sum()
    target = np.where(short, -targets, longs)
    held = shares.copy()
    flip = rng.random(n) < 0.25
    held[flip] = -np.floor(rng.exponential(20_000 / n, n)[flip] / p[flip] * 10)
    proceeds = float(-(held[held < 0] * p[held < 0]).sum())
    fields["holdings"] = [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, held, strict=True) if q != 0]
    fields["target_weights"] = {s: float(t) for s, t in zip(symbols, target, strict=True)}
    fields["cash"] = float(np.round(float(fields["cash"]) + proceeds, 2))  # type: ignore[arg-type]
    fields["allow_short"] = True
    fields.pop("min_average_esg_score", None)  # refused with shorts (an average over net weights)
    gross = float(np.abs(target).sum())
    fields["max_gross_exposure"] = draw(st.sampled_from([None, 0.85 * gross, gross, 1.2 * gross]))


def check_guarantees(config: PortfolioConfiguration, prices: dict[str, float], result: RebalancingResult) -> None:
    symbols = config.symbols
    p = np.array([prices[s] for s in symbols])
    before = np.array([config.shares_by_symbol()[s] for s in symbols])
    after = np.array([result.post_trade_holdings[s] for s in symbols])
    traded = after - before
    trade_value = traded * p
    rates = np.array([config.transaction_cost_rates.get(s, config.transaction_cost_rate) for s in symbols])
    costs = float(rates @ np.abs(trade_value))
    value = float(before @ p + config.cash)
    # Guarantee 3: money adds up to the cent, costs are the cost model applied to the trades.
    assert result.cash_after == pytest.approx(config.cash + config.cash_flow - trade_value.sum() - costs, abs=0.005)
    assert result.total_cost == pytest.approx(costs, abs=0.005)
    post_value = float(after @ p + result.cash_after)
    w = after * p / post_value
    # Guarantee 1: hard constraints on the whole-share trades.
    target = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    if not config.allow_short:
        assert (after >= -1e-9).all(), "short position"
    else:  # every traded asset ends on its target's side (a zero target: its holding's side)
        side = np.where(target > 0, 1.0, np.where(target < 0, -1.0, np.where(before < 0, -1.0, 1.0)))
        assert ((after * side >= -1e-9) | (traded == 0)).all(), "traded to the wrong side"
        if config.max_gross_exposure is not None:
            assert np.abs(w).sum() <= config.max_gross_exposure + TOL, "gross exposure"
    assert result.cash_after >= config.min_cash_weight * post_value - TOL * value
    lots = np.array([config.lot_sizes.get(s, 0.0 if config.allow_fractional_shares else 1.0) for s in symbols])
    whole = lots > 0
    multiples = traded[whole] / lots[whole]
    assert np.allclose(multiples, np.round(multiples), atol=1e-9) or (
        # selling out a holding that is not a lot multiple is allowed
        np.all((np.abs(multiples - np.round(multiples)) < 1e-9) | (after[whole] == 0))
    )
    moved = np.abs(trade_value) > 0
    assert (np.abs(trade_value[moved]) >= max(config.min_trade_size, 0.01) * (1 - 1e-12)).all()
    if config.max_position_weight is not None:
        assert (np.abs(w) <= config.max_position_weight + TOL).all()
    if config.max_sector_weight is not None:
        totals: dict[str, float] = {}
        for s, wi in zip(symbols, w, strict=True):
            totals[config.sectors[s]] = totals.get(config.sectors[s], 0.0) + wi
        assert max(totals.values()) <= config.max_sector_weight + TOL
    if config.max_turnover is not None:
        assert np.abs(trade_value).sum() / value <= config.max_turnover + TOL
    if config.min_esg_score is not None:
        scores = np.array([config.esg_scores[s] for s in symbols])
        # No buy of a screened asset, except buying back a short (which never ends long).
        assert not ((traded > 0) & (scores < config.min_esg_score) & (after > 0)).any()
        if config.min_average_esg_score is not None and (after @ p) > 0:
            assert scores @ (after * p) / (after @ p) >= config.min_average_esg_score - 1e-9
    index = {s: i for i, s in enumerate(symbols)}
    for s in config.no_buy:
        assert traded[index[s]] <= 0
    for s in config.no_sell:
        assert traded[index[s]] >= 0
    for s in config.no_trade:
        assert traded[index[s]] == 0
    ref_value = value + config.cash_flow
    in_band = np.abs(before * p / ref_value - target) <= config.tolerance
    caps = config.max_position_weight if config.max_position_weight is not None else np.inf
    in_band &= np.abs(before * p / ref_value) <= caps
    assert (traded[in_band] == 0).all(), "traded inside its band"
    assert result.is_compliant


@settings(max_examples=40)
@given(requests())
def test_hard_constraints_and_money(request: tuple[PortfolioConfiguration, dict[str, float]]) -> None:
    config, prices = request
    try:
        result = rebalance(config, prices)
    except InvalidPortfolioError as exc:
        # The one refusal random limits can provoke: a capped asset that may not be sold.
        assert "above its position cap and may not be sold" in str(exc)  # noqa: PT017
        return
    except InfeasibleRebalanceError as exc:
        conflicts = exc.conflicts
        assert conflicts, "an infeasible request must name its conflict"
        return
    check_guarantees(config, prices, result)
    # Guarantee 6: same input, same trades.
    again = rebalance(config, prices)
    assert [t.model_dump() for t in again.trades] == [t.model_dump() for t in result.trades]


@settings(max_examples=25)
@given(requests(max_assets=60))
def test_resolve_equals_fresh_build(request: tuple[PortfolioConfiguration, dict[str, float]]) -> None:
    config, prices = request
    shifted = {s: round(p * 1.03, 2) for s, p in prices.items()}
    try:
        rebalance(config, prices)  # warms the cache with this structure
        warm = rebalance(config, shifted)
    except InvalidPortfolioError as exc:
        # The one refusal random limits can provoke: a capped asset that may not be sold.
        assert "above its position cap and may not be sold" in str(exc)  # noqa: PT017
        return
    except InfeasibleRebalanceError:
        return
    clear_cache()
    fresh = rebalance(config, shifted)
    assert [t.model_dump() for t in warm.trades] == [t.model_dump() for t in fresh.trades]


@st.composite
def projection_requests(draw: st.DrawFn) -> tuple[PortfolioConfiguration, dict[str, float]]:
    n = draw(st.integers(2, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    symbols = [f"A{i}" for i in range(n)]
    prices = {s: float(rng.uniform(5, 300)) for s in symbols}
    fields: dict[str, object] = {
        "holdings": [{"symbol": s, "shares": float(rng.uniform(0, 100))} for s in symbols],
        "target_weights": {s: float(t) for s, t in zip(symbols, rng.dirichlet(np.ones(n)) * 0.95, strict=True)},
        "cash": float(rng.uniform(0, 2000)),
        "tolerance": 0.0,
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
        "method": "minimize_costs",
        "cash_flow": float(rng.uniform(-500, 500)),
    }
    if draw(st.booleans()):
        fields["max_position_weight"] = max(1.5 / n, 0.1)
    if draw(st.booleans()):
        fields["sectors"] = {s: f"S{i % 3}" for i, s in enumerate(symbols)}
        fields["max_sector_weight"] = 0.4
    if draw(st.booleans()):
        fields["max_turnover"] = float(rng.uniform(0.05, 0.5))
    return PortfolioConfiguration(**fields), prices  # type: ignore[arg-type]


@settings(max_examples=30)
@given(projection_requests())
def test_closest_feasible_portfolio(request: tuple[PortfolioConfiguration, dict[str, float]]) -> None:
    """Guarantee 2, against an independent projection written directly in cvxpy."""
    config, prices = request
    symbols = config.symbols
    p = np.array([prices[s] for s in symbols])
    q0 = np.array([config.shares_by_symbol()[s] for s in symbols])
    value = float(q0 @ p + config.cash)
    ref = value + config.cash_flow
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    x = cp.Variable(len(symbols))  # post-trade weights (no costs: fractions of post-trade value)
    cash = 1 - cp.sum(x)
    x0 = q0 * p / ref
    cons = [x >= 0, cash >= 0]
    if config.max_position_weight is not None:
        cons.append(x <= config.max_position_weight)
    if config.max_sector_weight is not None:
        for k in {config.sectors[s] for s in symbols}:
            members = np.array([config.sectors[s] == k for s in symbols], dtype=float)
            cons.append(members @ x <= config.max_sector_weight)
    if config.max_turnover is not None:
        cons.append(cp.sum(cp.abs(x - x0)) * ref / value <= config.max_turnover)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x - t) + cp.square(cash - (1 - t.sum()))), cons)
    problem.solve(solver="CLARABEL")
    if problem.status == cp.INFEASIBLE:
        with pytest.raises(InfeasibleRebalanceError):
            rebalance(config, prices)
        return
    result = rebalance(config, prices)
    got = np.array([result.post_trade_weights[s] for s in symbols] + [result.cash_weight_after])
    best = np.append(x.value, 1 - x.value.sum())
    distance_got = np.linalg.norm(got - np.append(t, 1 - t.sum()))
    distance_best = np.linalg.norm(best - np.append(t, 1 - t.sum()))
    assert distance_got <= distance_best + 1e-6, (prices, got, best)
    assert np.abs(got - best).max() <= 1e-5
