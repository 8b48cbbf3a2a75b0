"""Rebalancing modes (``PortfolioConfiguration.mode``): each optimum is checked against an
independent plain-cvxpy model of the mode's definition (fractional shares, zero costs), the
whole-share answer is checked from shares alone, and a mode the request cannot meet is refused by
a diagnosis naming the mode."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import Holding, InfeasibleRebalanceError, InvalidPortfolioError, PortfolioConfiguration
from finwiz.cli._portfolio_file import parse_portfolio_text
from finwiz.optimizer import (
    Limit,
    RebalancingEngine,
    TargetTrackingTerm,
    Term,
    TermParts,
    TransactionCostTerm,
    Variables,
)
from finwiz.settings import RebalancingSettings
from tests.conftest import drifted_config

TOLERANCE = 0.01


def _config(prices: pd.Series, mode: str, seed: int, **overrides: Any) -> PortfolioConfiguration:
    fields: dict[str, Any] = {
        "mode": mode,
        "tolerance": TOLERANCE,
        "method": "minimize_costs",
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
    }
    fields.update(overrides)
    return drifted_config(prices, seed=seed, **fields)


def _reference(config: PortfolioConfiguration, prices: pd.Series) -> np.ndarray:
    """Post-trade weights (of V_ref) minimising ``||w - t||^2 + (cash - cash_t)^2`` under the
    mode, written from its definition: assets inside their band do not trade; buy_only: no sells;
    sell_only: no buys; band_edge: an asset outside its band tracks the band's nearest edge and
    the cash target is what the tracked targets leave. Long-only, cash >= 0, zero costs."""
    symbols = [str(s) for s in prices.index]
    held = {h.symbol: h.shares for h in config.holdings}
    value = np.array([held.get(s, 0.0) * float(prices[s]) for s in symbols])
    ref = value.sum() + config.cash + config.cash_flow
    x0 = value / ref
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    inside = np.abs(x0 - t) <= TOLERANCE
    if config.mode == "band_edge":
        t = np.where(inside, t, t + np.sign(x0 - t) * TOLERANCE)
    w = cp.Variable(len(symbols))
    cash = (config.cash + config.cash_flow) / ref - cp.sum(w - x0)
    limits = [w >= 0, cash >= 0]
    if inside.any():
        limits.append(w[np.flatnonzero(inside)] == x0[inside])
    if config.mode == "buy_only":
        limits.append(w >= x0)
    if config.mode == "sell_only":
        limits.append(w <= x0)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w - t) + cp.square(cash - (1 - t.sum()))), limits)
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return np.asarray(w.value)


def _weights(config: PortfolioConfiguration, result: Any, prices: pd.Series) -> np.ndarray:
    symbols = [str(s) for s in prices.index]
    held = {h.symbol: h.shares for h in config.holdings}
    ref = sum(held.get(s, 0.0) * float(prices[s]) for s in symbols) + config.cash + config.cash_flow
    return np.array([result.post_trade_holdings[s] * float(prices[s]) for s in symbols]) / ref


def _shares(config: PortfolioConfiguration, result: Any, prices: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    held = {h.symbol: h.shares for h in config.holdings}
    symbols = [str(s) for s in prices.index]
    return (
        np.array([held.get(s, 0.0) for s in symbols]),
        np.array([result.post_trade_holdings[s] for s in symbols]),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("mode", "cash_flow"),
    [("full", 0.0), ("buy_only", 60_000.0), ("sell_only", -60_000.0), ("band_edge", 0.0), ("band_edge", 30_000.0)],
)
def test_each_mode_matches_an_independent_model(
    sample_prices: pd.Series, mode: str, cash_flow: float, seed: int
) -> None:
    config = _config(sample_prices, mode, seed, cash_flow=cash_flow)
    result = RebalancingEngine().rebalance(config, sample_prices)
    got = _weights(config, result, sample_prices)
    want = _reference(config, sample_prices)
    np.testing.assert_allclose(got, want, atol=1e-6)
    before, after = _shares(config, result, sample_prices)
    if mode == "buy_only":
        assert (after >= before - 1e-9).all()
        assert (after > before + 1e-9).any()
    if mode == "sell_only":
        assert (after <= before + 1e-9).all()
        assert (after < before - 1e-9).any()
    assert result.is_compliant


def test_band_edge_stops_at_the_edge_where_full_goes_to_the_target(sample_prices: pd.Series) -> None:
    """With a deposit to spare, an asset far above its band ends near the band's upper edge in
    ``band_edge`` and near its target in ``full``: the modes differ where the definition says."""
    edge = _config(sample_prices, "band_edge", 0, cash_flow=30_000.0)
    full = _config(sample_prices, "full", 0, cash_flow=30_000.0)
    engine = RebalancingEngine()
    w_edge = _weights(edge, engine.rebalance(edge, sample_prices), sample_prices)
    w_full = _weights(full, engine.rebalance(full, sample_prices), sample_prices)
    symbols = [str(s) for s in sample_prices.index]
    held = {h.symbol: h.shares for h in edge.holdings}
    value = np.array([held[s] * float(sample_prices[s]) for s in symbols])
    x0 = value / (value.sum() + edge.cash + edge.cash_flow)
    t = np.array([edge.target_weights[s] for s in symbols])
    over = np.flatnonzero(x0 > t + 2 * TOLERANCE)
    assert over.size
    # full goes (close) to the target, band_edge stops (close) to the edge: t + tolerance
    assert np.all(np.abs(w_full[over] - t[over]) < 0.003)
    assert np.all(np.abs(w_edge[over] - (t[over] + TOLERANCE)) < 0.003)


@pytest.mark.parametrize(("mode", "cash_flow"), [("buy_only", 50_000.0), ("sell_only", -50_000.0), ("band_edge", 0.0)])
def test_whole_shares_keep_the_mode(sample_prices: pd.Series, mode: str, cash_flow: float) -> None:
    config = _config(sample_prices, mode, 3, cash_flow=cash_flow, allow_fractional_shares=False)
    result = RebalancingEngine().rebalance(config, sample_prices)
    before, after = _shares(config, result, sample_prices)
    assert np.array_equal(after, np.round(after))
    traded = after != before
    assert traded.any()
    if mode == "buy_only":
        assert (after >= before).all()
    elif mode == "sell_only":
        assert (after <= before).all()
    else:  # an asset outside its band trades toward its band's edge (near it), not to its target
        symbols = [str(s) for s in sample_prices.index]
        price = sample_prices.to_numpy(float)
        ref = float(before @ price) + config.cash + config.cash_flow
        x0, w = before * price / ref, after * price / ref
        t = np.array([config.target_weights[s] for s in symbols])
        inside = np.abs(x0 - t) <= TOLERANCE
        assert not traded[inside].any()
        over, under = (x0 > t + TOLERANCE), (x0 < t - TOLERANCE)
        assert over.any()
        assert under.any()
        assert (after[over] <= before[over]).all()
        assert (after[under] >= before[under]).all()
        assert (w[over] > t[over] + 0.8 * TOLERANCE).all()
        assert (w[under] < t[under] - 0.8 * TOLERANCE).all()
        fractional = _config(sample_prices, mode, 3, cash_flow=cash_flow)
        np.testing.assert_allclose(w, _reference(fractional, sample_prices), atol=5e-4)
    assert result.is_compliant


@pytest.mark.parametrize("fractional", [True, False])
def test_a_withdrawal_in_buy_only_is_refused_naming_the_mode(sample_prices: pd.Series, fractional: bool) -> None:
    config = _config(sample_prices, "buy_only", 0, cash_flow=-80_000.0, allow_fractional_shares=fractional)
    assert config.cash + config.cash_flow < 0  # the withdrawal needs sales
    with pytest.raises(InfeasibleRebalanceError) as caught:
        RebalancingEngine().rebalance(config, sample_prices)
    assert "buy_only" in {c.name for c in caught.value.conflicts}


def test_a_floor_to_buy_in_sell_only_is_refused_naming_the_mode(sample_prices: pd.Series) -> None:
    probe = _config(sample_prices, "sell_only", 0)
    held = {h.symbol: h.shares * float(sample_prices[h.symbol]) for h in probe.holdings}
    low = min(held, key=held.__getitem__)
    config = _config(sample_prices, "sell_only", 0, cash_flow=40_000.0, min_position_weights={low: 0.08})
    with pytest.raises(InfeasibleRebalanceError) as caught:
        RebalancingEngine().rebalance(config, sample_prices)
    assert "sell_only" in {c.name for c in caught.value.conflicts}


def test_an_asset_over_its_cap_in_buy_only_is_refused_by_name(sample_prices: pd.Series) -> None:
    probe = _config(sample_prices, "buy_only", 0)
    held = {h.symbol: h.shares * float(sample_prices[h.symbol]) for h in probe.holdings}
    ref = sum(held.values()) + probe.cash
    over = "|".join(s for s, v in held.items() if v / ref > 0.05)
    assert over
    with pytest.raises(InvalidPortfolioError, match=f"^({over}) is above its position cap.*mode buy_only"):
        RebalancingEngine().rebalance(_config(sample_prices, "buy_only", 0, max_position_weight=0.05), sample_prices)


def test_an_unknown_mode_is_refused_naming_the_field(sample_prices: pd.Series) -> None:
    with pytest.raises(InvalidPortfolioError, match="mode"):
        _config(sample_prices, "sell_first", 0)
    assert _config(sample_prices, " Buy_Only ", 0).mode == "buy_only"


class _LooseLimit(Term):
    """A user's cvxpy limit that never binds (sum of weights <= 1): it moves the solve off the
    native QP onto the cvxpy path."""

    name = "loose"

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        return TermParts(limits=[Limit("loose_cap", cp.sum(v.weights), "<=", 1.0)])  # type: ignore[arg-type]

    def structure(self, data: Any) -> Any:
        return (type(self).__qualname__,)


@pytest.mark.parametrize(("mode", "cash_flow"), [("buy_only", 60_000.0), ("sell_only", -60_000.0), ("band_edge", 0.0)])
def test_the_cvxpy_path_keeps_the_mode(sample_prices: pd.Series, mode: str, cash_flow: float) -> None:
    engine = RebalancingEngine()
    engine.strategies["loose"] = [TargetTrackingTerm(), TransactionCostTerm(), _LooseLimit()]
    config = _config(sample_prices, mode, 1, cash_flow=cash_flow, method="loose")
    result = engine.rebalance(config, sample_prices)
    np.testing.assert_allclose(_weights(config, result, sample_prices), _reference(config, sample_prices), atol=1e-6)


@pytest.mark.parametrize(("mode", "cash_flow"), [("buy_only", 50_000.0), ("sell_only", -50_000.0)])
def test_exact_mode_keeps_the_side(sample_prices: pd.Series, mode: str, cash_flow: float) -> None:
    # Whatever the program's gap when its time is up, its answer keeps every hard limit.
    prices = sample_prices.iloc[:6]
    config = _config(prices, mode, 2, cash_flow=cash_flow / 4, allow_fractional_shares=False)
    engine = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=1.0))
    result = engine.rebalance(config, prices, exact=True)
    before, after = _shares(config, result, prices)
    assert result.rounding == "exact_mip"
    assert (after != before).any()
    if mode == "buy_only":
        assert (after >= before).all()
    else:
        assert (after <= before).all()


def test_the_compliance_table_lists_the_mode(sample_prices: pd.Series) -> None:
    config = _config(sample_prices, "sell_only", 0, cash_flow=-40_000.0)
    result = RebalancingEngine().rebalance(config, sample_prices)
    rows = [c for c in result.compliance if c.constraint.startswith("sell_only[")]
    assert len(rows) == 1  # the group's row (its tightest member)
    assert rows[0].satisfied
    assert rows[0].value <= 0


def test_a_deposit_in_sell_only_stays_in_cash_and_the_result_says_so(sample_prices: pd.Series) -> None:
    config = _config(sample_prices, "sell_only", 0, cash_flow=40_000.0)
    result = RebalancingEngine().rebalance(config, sample_prices)
    before, after = _shares(config, result, sample_prices)
    assert (after <= before).all()
    assert result.cash_after >= config.cash + config.cash_flow - 1e-6
    assert any("sell_only" in w and "40,000.00 stays in cash" in w for w in result.warnings)


def test_a_portfolio_file_takes_the_mode() -> None:
    text = "holdings:\n  - {symbol: AAPL, shares: 10}\ntarget_weights: {AAPL: 0.5}\ncash: 1000\nmode: buy_only\n"
    assert parse_portfolio_text(text, "yaml").mode == "buy_only"


@pytest.mark.parametrize(("mode", "cash_flow"), [("buy_only", 3_000.0), ("sell_only", -3_000.0)])
@pytest.mark.parametrize("fractional", [True, False])
def test_a_taxable_account_keeps_the_mode(mode: str, cash_flow: float, fractional: bool) -> None:
    from tests.optimizer.tax.test_tax import book

    base, prices = book(4)
    config = PortfolioConfiguration(
        **{
            **base.model_dump(exclude={"holdings", "tax"}),
            "holdings": base.holdings,
            "tax": base.tax,
            "mode": mode,
            "cash_flow": cash_flow,
            "allow_fractional_shares": fractional,
        }
    )
    result = RebalancingEngine().rebalance(config, prices)
    before = np.array([h.shares for h in config.holdings])
    after = np.array([result.post_trade_holdings[h.symbol] for h in config.holdings])
    assert (after != before).any()
    if mode == "buy_only":
        assert (after >= before - 1e-9).all()
    else:
        assert (after <= before + 1e-9).all()
    assert result.is_compliant


def test_band_edge_long_short_ends_on_each_edge() -> None:
    """Every asset outside its band (a long one above, a short one too short, a long one below):
    with nothing else in the way each ends exactly on its band's nearest edge; ``full`` on target."""
    prices = {"A": 100.0, "B": 50.0, "C": 20.0}
    held = {"A": 600.0, "B": -400.0, "C": 500.0}  # weights 0.75, -0.25, 0.125 of 80,000
    fields: dict[str, Any] = {
        "holdings": [Holding(symbol=s, shares=n) for s, n in held.items()],
        "target_weights": {"A": 0.5, "B": -0.1, "C": 0.2},
        "cash": 30_000.0,
        "allow_short": True,
        "tolerance": 0.02,
        "method": "minimize_costs",
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
    }
    for mode, want in (("band_edge", [0.52, -0.12, 0.18]), ("full", [0.5, -0.1, 0.2])):
        result = RebalancingEngine().rebalance(PortfolioConfiguration(**fields, mode=mode), prices)
        got = [result.post_trade_holdings[s] * prices[s] / 80_000.0 for s in prices]
        np.testing.assert_allclose(got, want, atol=1e-6)
