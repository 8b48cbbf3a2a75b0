"""Long/short requests: short targets and holdings, the side rule, caps on |w|, the gross-exposure cap.

The continuous optimum is compared with an independent cvxpy model written from the README's
definitions, with explicit auxiliary variables ``a >= |w|`` for the caps and gross exposure (not
the side trick the engine uses); whole-share answers are checked from shares and prices alone.
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import (
    Holding,
    InfeasibleRebalanceError,
    InvalidPortfolioError,
    PortfolioConfiguration,
    RebalancingResult,
    rebalance,
)
from finwiz.optimizer import MarketImpactModel
from tests.optimizer.test_properties import check_guarantees, requests


@st.composite
def small_long_short(draw: st.DrawFn) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """2-12 assets, some targets and holdings short, fractional shares, no costs or bands, and
    often a gross-exposure cap below the targets' own (so it binds)."""
    n = draw(st.integers(2, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    symbols = [f"L{i}" for i in range(n)]
    prices = {s: float(rng.uniform(5, 300)) for s in symbols}
    p = np.array(list(prices.values()))
    shares = rng.uniform(-60, 100, n) * (rng.random(n) < 0.8)
    short = rng.random(n) < 0.4
    short[0] = False
    raw = rng.dirichlet(np.ones(n))
    target = np.where(short, -0.5 * raw, raw)
    target *= draw(st.floats(0.6, 0.98)) / max(float(target.sum()), 0.05)
    if target.sum() > 0.98:  # keep the net at most 1
        target *= 0.98 / target.sum()
    # No zero targets here: an optimum exactly on the bound w_i = 0 with a zero multiplier is
    # degenerate, and interior points (this test's Clarabel included) stop ~1e-6 off it. Zero
    # targets (the holding's side) have their own tests below and in the whole-share property.
    proceeds = float(-(np.minimum(shares, 0) * p).sum())
    gross = float(np.abs(target).sum())
    fields: dict[str, object] = {
        "holdings": [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True) if q != 0],
        "target_weights": {s: float(t) for s, t in zip(symbols, target, strict=True)},
        "cash": float(rng.uniform(0, 3000) + proceeds),
        "allow_short": True,
        "tolerance": 0.0,
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
        "method": "minimize_costs",
        "cash_flow": float(rng.uniform(-300, 300)),
        "max_gross_exposure": draw(st.sampled_from([None, 0.7 * gross, 0.9 * gross, 1.1 * gross])),
    }
    if draw(st.booleans()):
        fields["max_position_weight"] = float(min(1.0, max(1.5 / n, 0.8 * np.abs(target).max())))
    if draw(st.booleans()):
        fields["sectors"] = {s: f"S{i % 3}" for i, s in enumerate(symbols)}
        fields["max_sector_weight"] = 0.3
    if draw(st.booleans()):
        fields["max_turnover"] = float(rng.uniform(0.1, 0.8))
    return PortfolioConfiguration(**fields), prices  # type: ignore[arg-type]


def closest_by_definition(config: PortfolioConfiguration, prices: dict[str, float]) -> cp.Problem:
    """The README's definitions, written directly: post-trade weights w (no costs: fractions of
    V' = V + cash flow), each asset on its target's side (zero target: its holding's), |w| <= a,
    caps on a, net sector weights, gross exposure sum(a), turnover sum|w - w0| of V."""
    symbols = config.symbols
    p = np.array([prices[s] for s in symbols])
    q0 = np.array([config.shares_by_symbol()[s] for s in symbols])
    value = float(q0 @ p + config.cash)
    ref = value + config.cash_flow
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    w = cp.Variable(len(symbols))
    a = cp.Variable(len(symbols))  # |w|, explicitly
    cash = 1 - cp.sum(w)
    w0 = q0 * p / ref
    short_side = (t < 0) | ((t == 0) & (q0 < 0))
    cons = [a >= w, a >= -w, cash >= 0, w[~short_side] >= 0, w[short_side] <= 0]
    if config.max_position_weight is not None:
        cons.append(a <= config.max_position_weight)
    if config.max_sector_weight is not None:
        for k in {config.sectors[s] for s in symbols}:
            members = np.array([config.sectors[s] == k for s in symbols], dtype=float)
            cons.append(members @ w <= config.max_sector_weight)
    if config.max_gross_exposure is not None:
        cons.append(cp.sum(a) <= config.max_gross_exposure)
    if config.max_turnover is not None:
        cons.append(cp.sum(cp.abs(w - w0)) * ref / value <= config.max_turnover)
    # Scaled up: the squared gaps are ~1e-6 and an interior point stops on an absolute gap.
    problem = cp.Problem(cp.Minimize(1e4 * (cp.sum_squares(w - t) + cp.square(cash - (1 - t.sum())))), cons)
    problem.solve(solver="CLARABEL")
    return problem


@settings(max_examples=40)
@given(small_long_short())
def test_continuous_optimum_equals_the_definitions(request: tuple[PortfolioConfiguration, dict[str, float]]) -> None:
    config, prices = request
    problem = closest_by_definition(config, prices)
    if problem.status == cp.INFEASIBLE:
        with pytest.raises(InfeasibleRebalanceError):
            rebalance(config, prices)
        return
    assert problem.status == cp.OPTIMAL
    w = problem.variables()[0].value
    symbols = config.symbols
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols] + [config.cash_target])
    result = rebalance(config, prices)
    got = np.array([result.post_trade_weights[s] for s in symbols] + [result.cash_weight_after])
    best = np.append(w, 1 - w.sum())
    assert np.linalg.norm(got - t) <= np.linalg.norm(best - t) + 1e-6
    assert np.abs(got - best).max() <= 1e-5
    if config.max_gross_exposure is not None:
        assert np.abs(got[:-1]).sum() <= config.max_gross_exposure + 1e-9


def test_the_gross_cap_binds_and_is_reported() -> None:
    """Targets of gross 2.0 under a cap of 1.5 (net 1.0, no cash target): the closest portfolio
    shrinks every |w| by the same 0.125 (the projection onto the l1 ball keeps the net), gross
    exactly 1.5, and the compliance table shows the row with zero slack."""
    prices = {"A": 50.0, "B": 40.0, "C": 25.0, "D": 20.0}
    config = PortfolioConfiguration(
        holdings=[],
        target_weights={"A": 0.8, "B": 0.7, "C": -0.3, "D": -0.2},
        cash=100_000.0,
        allow_short=True,
        max_gross_exposure=1.5,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=True,
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    w = np.array([result.post_trade_weights[s] for s in config.symbols])
    assert np.abs(w).sum() == pytest.approx(1.5, abs=1e-7)
    assert w == pytest.approx([0.675, 0.575, -0.175, -0.075], abs=1e-7)
    assert result.cash_weight_after == pytest.approx(0.0, abs=1e-7)
    assert any("gross exposure 2 is above max_gross_exposure 1.5" in w for w in result.warnings)
    (row,) = [c for c in result.compliance if c.constraint == "gross_exposure"]
    assert row.limit == 1.5
    assert row.value == pytest.approx(1.5, abs=1e-7)
    assert row.satisfied
    assert row.unit == "weight"


def gross_and_legs(result: RebalancingResult, prices: dict[str, float]) -> tuple[float, float, float]:
    """Long leg, short leg and gross exposure recomputed from the post-trade shares and prices."""
    values = np.array([q * prices[s] for s, q in result.post_trade_holdings.items()])
    total = float(values.sum() + result.cash_after)
    return (
        float(values[values > 0].sum() / total),
        float(values[values < 0].sum() / total),
        float(np.abs(values).sum() / total),
    )


def test_130_30_from_cash_in_whole_shares() -> None:
    """A 130/30 book built from $1M of cash: 10 longs of 13 %, 6 shorts of 5 %, gross 1.6."""
    longs = [f"L{i}" for i in range(10)]
    shorts = [f"S{i}" for i in range(6)]
    rng = np.random.default_rng(7)
    prices = {s: float(np.round(rng.uniform(10, 400), 2)) for s in longs + shorts}
    config = PortfolioConfiguration(
        holdings=[],
        target_weights={**dict.fromkeys(longs, 0.13), **dict.fromkeys(shorts, -0.05)},
        cash=1_000_000.0,
        allow_short=True,
        max_gross_exposure=1.6,
        max_position_weight=0.14,
        tolerance=0.0,
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    assert result.warnings == []  # the targets' gross exposure is the cap's
    long_leg, short_leg, gross = gross_and_legs(result, prices)
    # Within a few tenths of a point of 130/30: whole shares, and 10 bp costs on 1.6x the book.
    assert long_leg == pytest.approx(1.3, abs=5e-3)
    assert short_leg == pytest.approx(-0.3, abs=5e-3)
    assert gross <= 1.6 + 1e-12
    assert all(float(q).is_integer() for q in result.post_trade_holdings.values())
    assert all(result.post_trade_holdings[s] < 0 for s in shorts)
    # Short proceeds are cash, costs are paid from it, no borrow cost: money adds up to the cent.
    trades = {s: q * prices[s] for s, q in result.post_trade_holdings.items()}
    costs = 0.001 * sum(abs(v) for v in trades.values())
    assert result.cash_after == pytest.approx(1_000_000.0 - sum(trades.values()) - costs, abs=0.005)
    assert result.total_cost == pytest.approx(costs, abs=0.005)
    assert 0 <= result.cash_after <= 0.01 * 1_000_000
    check_guarantees(config, prices, result)
    # The same book under a gross cap of 1.3: both legs shrink, the cap holds in whole shares.
    tight = rebalance(config.model_copy(update={"max_gross_exposure": 1.3}), prices)
    long_leg, short_leg, gross = gross_and_legs(tight, prices)
    assert gross <= 1.3 + 1e-12
    assert gross == pytest.approx(1.3, abs=5e-3)
    assert short_leg < -0.1


def test_a_long_position_with_a_short_target_sells_out_and_goes_short_in_one_trade() -> None:
    prices = {"A": 100.0, "B": 80.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=300), Holding(symbol="B", shares=50)],
        target_weights={"A": 0.9, "B": -0.2},
        cash=6_000.0,
        allow_short=True,
        tolerance=0.0,
        lot_sizes={"B": 10},
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    (b,) = [t for t in result.trades if t.symbol == "B"]
    assert b.action.value == "sell"
    assert b.shares > 50
    assert b.shares % 10 == 0  # a whole number of lots (no odd-lot sell-out for shorts)
    assert result.post_trade_holdings["B"] < 0
    check_guarantees(config, prices, result)


def test_a_zero_target_short_is_covered_to_zero_not_turned_long() -> None:
    prices = {"A": 100.0, "B": 20.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=100), Holding(symbol="B", shares=-200)],
        target_weights={"A": 0.95},
        cash=14_000.0,
        allow_short=True,
        tolerance=0.0,
        min_trade_size=0.0,
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    assert result.post_trade_holdings["B"] == 0.0
    check_guarantees(config, prices, result)


def test_an_asset_that_may_not_cross_keeps_its_holdings_side() -> None:
    """A long holding with a short target on the no-sell list: it cannot go short, so it stays
    long (the request is feasible, not refused), and the other assets still trade."""
    prices = {"A": 100.0, "B": 50.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=50), Holding(symbol="B", shares=40)],
        target_weights={"A": 0.9, "B": -0.1},
        cash=3_000.0,
        allow_short=True,
        no_sell=["B"],
        tolerance=0.0,
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    assert result.post_trade_holdings["B"] == 40.0
    assert result.post_trade_holdings["A"] > 50
    check_guarantees(config, prices, result)


def test_position_caps_bound_short_positions_too() -> None:
    prices = {"A": 100.0, "B": 50.0, "C": 25.0}
    config = PortfolioConfiguration(
        holdings=[],
        target_weights={"A": 0.3, "B": 0.3, "C": -0.6},  # the cash target is 1.0
        cash=100_000.0,
        allow_short=True,
        max_position_weight=0.3,
        tolerance=0.0,
        method="minimize_costs",
    )
    result = rebalance(config, prices)
    weights = result.post_trade_weights
    # Uncapped, C would be -0.6 (its gap and the cash gap are the same); capped at |w| <= 0.3.
    assert weights["C"] == pytest.approx(-0.3, abs=1e-3)
    assert weights["C"] >= -0.3 - 1e-12
    assert max(abs(v) for v in weights.values()) <= 0.3 + 1e-12
    (row,) = [c for c in result.compliance if c.constraint.startswith("max_position")]
    assert row.slack == pytest.approx(0.0, abs=1e-3)
    check_guarantees(config, prices, result)


@settings(max_examples=30)
@given(requests(max_assets=60, long_short=True))
def test_whole_share_long_short_keeps_every_limit(request: tuple[PortfolioConfiguration, dict[str, float]]) -> None:
    """Whole shares (lots, minimum trades, bands, restricted lists, caps, sectors, turnover, ESG,
    the gross cap): every limit checked from shares and prices alone, money to the cent."""
    config, prices = request
    try:
        result = rebalance(config, prices)
    except InvalidPortfolioError as exc:
        assert "above its position cap and may not be" in str(exc)  # noqa: PT017
        return
    except InfeasibleRebalanceError as exc:
        assert exc.conflicts  # noqa: PT017
        return
    check_guarantees(config, prices, result)


def base(**fields: object) -> PortfolioConfiguration:
    given_fields: dict[str, object] = {"holdings": [{"symbol": "AAA", "shares": 10}], "target_weights": {"AAA": 0.5}}
    given_fields.update(fields)
    return PortfolioConfiguration(**given_fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "needle", "field", "symbol"),
    [
        ({"target_weights": {"AAA": 0.5, "BBB": -0.1}}, "allow_short", "target_weights", "BBB"),
        ({"holdings": [{"symbol": "AAA", "shares": -3}]}, "allow_short", "shares", "AAA"),
        ({"allow_short": True, "max_gross_exposure": 0.0}, "max_gross_exposure", "max_gross_exposure", None),
        ({"allow_short": True, "max_gross_exposure": -1.0}, "max_gross_exposure", "max_gross_exposure", None),
        ({"allow_short": True, "max_gross_exposure": math.nan}, "finite", "max_gross_exposure", None),
        ({"allow_short": True, "max_gross_exposure": math.inf}, "finite", "max_gross_exposure", None),
        ({"allow_short": True, "max_gross_exposure": "1.3"}, "text", "max_gross_exposure", None),
        ({"max_gross_exposure": 0.8}, "min_cash_weight=0.2", "max_gross_exposure", None),
        (
            {"allow_short": True, "target_weights": {"AAA": 0.5, "BBB": -0.1}, "min_position_weights": {"BBB": 0.01}},
            "short target",
            "min_position_weights",
            "BBB",
        ),
    ],
)
def test_bad_long_short_input_is_refused(
    fields: dict[str, object], needle: str, field: str, symbol: str | None
) -> None:
    with pytest.raises(InvalidPortfolioError) as info:
        base(**fields)
    assert needle in str(info.value)
    assert info.value.field is not None
    assert field in info.value.field
    if symbol is not None:
        assert info.value.symbol == symbol


def test_a_gross_cap_of_one_or_more_without_shorting_cannot_bind() -> None:
    """Long-only, gross exposure is the invested fraction (at most 1): a cap >= 1 is accepted and
    adds no row; shorts stay refused."""
    config = base(max_gross_exposure=1.2, tolerance=0.0)
    result = rebalance(config, {"AAA": 10.0})
    assert not any(c.constraint.startswith("gross") for c in result.compliance)
    assert config.gross_exposure_limit is None
    assert base(allow_short=True, max_gross_exposure=1.2).gross_exposure_limit == 1.2


def test_the_esg_screen_lets_a_short_be_bought_back_but_never_held_long() -> None:
    """B scores below the screen. With a smaller short target its short is bought back (the side
    bound stops the buy at zero, so it is never held long); with a long target it may not cross to
    long, which is a buy, so it stays where it is."""
    prices = {"A": 100.0, "B": 50.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=100), Holding(symbol="B", shares=-100)],
        target_weights={"A": 0.9, "B": -0.05},
        cash=10_000.0,
        allow_short=True,
        esg_scores={"A": 8.0, "B": 1.0},
        min_esg_score=3.0,
        tolerance=0.0,
        method="minimize_costs",
    )
    covered = rebalance(config, prices)
    assert -100 < covered.post_trade_holdings["B"] < 0
    assert covered.post_trade_weights["B"] == pytest.approx(-0.05, abs=0.01)
    check_guarantees(config, prices, covered)
    crossing = config.model_copy(update={"target_weights": {"A": 0.8, "B": 0.1}})
    stuck = rebalance(crossing, prices)
    assert stuck.post_trade_holdings["B"] == -100
    check_guarantees(crossing, prices, stuck)


@pytest.mark.parametrize("route", ["cvxpy", "exact"])
def test_the_cvxpy_problem_and_exact_mode_keep_the_gross_cap(route: str) -> None:
    """The same description feeds the cvxpy problem (market impact is a cone, so the request
    goes through cvxpy) and the mixed-integer mode."""
    prices = {"A": 100.0, "B": 50.0, "C": 20.0, "D": 80.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=100), Holding(symbol="B", shares=200), Holding(symbol="D", shares=50)],
        target_weights={"A": 0.6, "B": 0.3, "C": 0.4, "D": -0.3},
        cash=2_000.0,
        allow_short=True,
        max_gross_exposure=1.4,
        tolerance=0.0,
        min_trade_size=0.0,
    )
    if route == "exact":
        pytest.importorskip("pyscipopt")
        result = rebalance(config, prices, exact=True)
        assert result.rounding == "exact_mip"
    else:
        symbols = list(prices)
        impact = MarketImpactModel(pd.Series(1e6, index=symbols), pd.Series(0.02, index=symbols))
        result = rebalance(config, prices, market_impact=impact)
        assert result.solver.startswith("CLARABEL")
    assert result.post_trade_holdings["D"] < 0
    _, _, gross = gross_and_legs(result, prices)
    assert 1.35 <= gross <= 1.4 + 1e-12
    assert result.is_compliant


def test_an_infeasible_gross_cap_is_named() -> None:
    """A frozen long position worth 80 % of the book under a 50 % gross cap."""
    prices = {"A": 100.0, "B": 50.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=80)],
        target_weights={"A": 0.5, "B": -0.2},
        cash=2_000.0,
        allow_short=True,
        max_gross_exposure=0.5,
        no_sell=["A"],
        tolerance=0.0,
    )
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(config, prices)
    names = {c.name for c in info.value.conflicts}
    assert "gross_exposure" in names


def test_an_average_esg_floor_is_refused_on_a_book_with_shorts() -> None:
    """s'w / 1'w over net weights means nothing when the net can be <= 0: refused by name once a
    short target or position exists; a long-only book with allow_short keeps its floor."""
    fields: dict[str, object] = {
        "holdings": [{"symbol": "A", "shares": 10}],
        "target_weights": {"A": 0.5, "B": -0.1},
        "cash": 1_000.0,
        "allow_short": True,
        "esg_scores": {"A": 5.0, "B": 2.0},
        "min_average_esg_score": 3.0,
    }
    with pytest.raises(InvalidPortfolioError) as info:
        rebalance(PortfolioConfiguration(**fields), {"A": 10.0, "B": 10.0})  # type: ignore[arg-type]
    assert info.value.field == "min_average_esg_score"
    fields["target_weights"] = {"A": 0.5, "B": 0.1}
    result = rebalance(PortfolioConfiguration(**fields), {"A": 10.0, "B": 10.0})  # type: ignore[arg-type]
    assert any(c.constraint.startswith("esg_floor") for c in result.compliance)
