"""Results that keep every limit but look like bugs to a portfolio manager say why (issue 21):
targets above the account's own caps, a forced sale's proceeds parked in cash, a deposit held back
by the turnover cap (and ``turnover_excludes_cash_flow``), positions sold down to dust."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest

from finwiz import Holding, PortfolioConfiguration, RebalancingResult, rebalance
from finwiz.reporting._format import percent


def _warned(result: RebalancingResult, *words: str) -> list[str]:
    return [w for w in result.warnings if all(word in w for word in words)]


# ---------------------------------------------------------------- targets above caps


def _three(**overrides: object) -> PortfolioConfiguration:
    fields: dict[str, object] = {
        "holdings": [Holding(symbol=s, shares=100) for s in ("A", "B", "C")],
        "target_weights": {"A": 0.15, "B": 0.35, "C": 0.45},  # cash target 0.05
        "cash": 1000.0,
        "tolerance": 0.0,
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
        "method": "minimize_costs",
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


PRICES3 = {"A": 100.0, "B": 100.0, "C": 100.0}


def test_a_target_above_its_position_cap_is_named_with_the_closest_distance_the_caps_allow() -> None:
    result = rebalance(_three(max_position_weights={"A": 0.10}), PRICES3)
    # By hand: A at its 10 % cap, the 5 points it gives spread evenly over B, C and cash (the
    # projection onto the budget): distance 0.05 x sqrt(1 + 3 / 9).
    closest = 0.05 * math.sqrt(1 + 3 / 9)
    (warning,) = _warned(result, "above the account's own caps")
    assert "A target 15% above its position cap 10% (capped target 10%)" in warning
    assert f"{closest:.4g}" in warning
    assert result.is_compliant
    # The result's own tracking distance stays at or above it (zero costs, fractional shares: at it).
    assert result.tracking_distance_after >= closest - 1e-6
    assert result.tracking_distance_after == pytest.approx(closest, abs=1e-4)


def test_sector_targets_above_the_sector_cap_are_named() -> None:
    config = _three(
        target_weights={"A": 0.3, "B": 0.3, "C": 0.35},
        sectors={"A": "X", "B": "X", "C": "Y"},
        sector_caps={"X": 0.5},
    )
    result = rebalance(config, PRICES3)
    (warning,) = _warned(result, "above the account's own caps")
    assert "sector X targets 60% above its cap 50%" in warning
    # By hand: A and B give 5 points each, C and cash take 5 each: distance sqrt(4 x 0.05^2) = 0.1.
    assert "is 0.1 from the targets" in warning


def test_many_targets_above_their_caps_show_five_and_count_the_rest() -> None:
    """Seven positions and a sector over their caps: the first five positions are named in order,
    the other two and the sector counted."""
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.verify._surprises import _targets_above_caps

    symbols = [f"S{i}" for i in range(9)]
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=10) for s in symbols],
        target_weights=dict.fromkeys(symbols, 0.11),
        sectors={s: "X" if i < 3 else "Y" for i, s in enumerate(symbols)},
        sector_caps={"X": 0.3},
        max_position_weights=dict.fromkeys(symbols[:7], 0.1),
    )
    (warning,) = _targets_above_caps(build_problem_data(config, dict.fromkeys(symbols, 100.0)))
    named = ", ".join(f"S{i} target 11% above its position cap 10% (capped target 10%)" for i in range(5))
    assert f"targets above the account's own caps: {named} and 3 more: the closest" in warning
    assert "sector" not in warning


def test_targets_within_the_caps_say_nothing() -> None:
    result = rebalance(_three(max_position_weights={"A": 0.15}), PRICES3)
    assert not _warned(result, "above the account's own caps")


# ---------------------------------------------------------------- forced sale parked in cash


def _capped_book(tolerance: float) -> PortfolioConfiguration:
    """AAPL is 13.4 % of a $100k book under a 10 % cap (target 6 %); five others sit 1.86 points
    under their 18.8 % targets, inside a 5-point band; cash 1.9 %, cash target 0."""
    others = ["B", "C", "D", "E", "F"]
    return PortfolioConfiguration(
        holdings=[Holding(symbol="AAPL", shares=134), *(Holding(symbol=s, shares=169.4) for s in others)],
        target_weights={"AAPL": 0.06, **dict.fromkeys(others, 0.188)},
        cash=1900.0,
        max_position_weights={"AAPL": 0.10},
        tolerance=tolerance,
        allow_fractional_shares=True,
    )


PRICES6 = dict.fromkeys(["AAPL", "B", "C", "D", "E", "F"], 100.0)


def test_a_forced_cap_sale_whose_proceeds_stay_in_cash_says_why_and_what_redeploys_them() -> None:
    result = rebalance(_capped_book(0.05), PRICES6)
    sold = {t.symbol for t in result.sells}
    assert sold == {"AAPL"}
    assert not result.buys
    assert result.cash_weight_after > 0.05
    (warning,) = _warned(result, "forced by its position cap")
    assert "AAPL" in warning
    assert "inside their tolerance bands" in warning
    assert "tolerance below 0.0186" in warning
    # The suggestion works: with a band just under the drift the proceeds are reinvested.
    redeployed = rebalance(_capped_book(0.018), PRICES6)
    assert redeployed.buys
    assert redeployed.cash_weight_after < 0.01
    assert not _warned(redeployed, "forced by its position cap")


# ---------------------------------------------------------------- deposit and the turnover cap


def _deposit(excludes: bool) -> PortfolioConfiguration:
    """Four $250k positions at target, a $500k deposit, a 20 % turnover cap."""
    return PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=2500) for s in ("A", "B", "C", "D")],
        target_weights=dict.fromkeys(("A", "B", "C", "D"), 0.25),
        cash=0.0,
        cash_flow=500_000.0,
        max_turnover=0.2,
        turnover_excludes_cash_flow=excludes,
    )


PRICES4 = dict.fromkeys(("A", "B", "C", "D"), 100.0)


def test_a_deposit_held_back_by_the_turnover_cap_is_said_with_the_option() -> None:
    result = rebalance(_deposit(False), PRICES4)
    bought = sum(t.trade_value for t in result.buys)
    assert bought <= 200_000 + 1e-6  # 20 % of the $1M before trading
    assert result.cash_after > 290_000
    (warning,) = _warned(result, "deposit stays in cash")
    assert "max_turnover 0.2" in warning
    assert "turnover_excludes_cash_flow=True" in warning


def test_turnover_excludes_cash_flow_counts_only_the_trades_beyond_the_deposit() -> None:
    result = rebalance(_deposit(True), PRICES4)
    assert result.cash_after < 1000  # invested, to the share
    traded = sum(t.trade_value for t in result.trades)
    assert traded > 490_000  # more than the cap would allow if the deposit counted (200k)
    (row,) = [c for c in result.compliance if c.constraint == "turnover_cap[turnover]"]
    # The definition, from the trades: (sum |trade value| - |cash flow|) / V before trading.
    assert row.value == pytest.approx((traded - 500_000) / 1_000_000, abs=1e-12)
    assert row.satisfied
    assert result.turnover == pytest.approx(traded / 1_000_000)  # the reported turnover is unchanged
    assert not _warned(result, "deposit stays in cash")


def _plain_turnover_projection(
    x0: np.ndarray, cash0: float, target: np.ndarray, cash_target: float, allowed: float
) -> np.ndarray:
    """The nearest portfolio to the target (cash included; fractions of V_ref) whose traded value
    is at most ``allowed`` (fractions of V_ref), in plain cvxpy."""
    b, s = cp.Variable(len(x0), nonneg=True), cp.Variable(len(x0), nonneg=True)
    w = x0 + b - s
    cash = cash0 - cp.sum(b - s)
    problem = cp.Problem(
        cp.Minimize(
            1e4 * (cp.sum_squares(w - target) + cp.square(cash - cash_target))
        ),  # scaled: Clarabel stops on an absolute gap
        [s <= x0, cash >= 0, cp.sum(b + s) <= allowed],
    )
    problem.solve(solver="CLARABEL")
    return np.asarray(w.value)


def test_turnover_excludes_cash_flow_still_caps_the_trades_beyond_it() -> None:
    """A $100k withdrawal from a drifted $1M book (60/40 against 50/50), a 5 % cap on the trades
    beyond it: the closest portfolio under that cap, against an independent model."""
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=4000), Holding(symbol="B", shares=6000)],
        target_weights={"A": 0.5, "B": 0.5},
        cash=0.0,
        cash_flow=-100_000.0,
        max_turnover=0.05,
        turnover_excludes_cash_flow=True,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=True,
        method="minimize_costs",
    )
    result = rebalance(config, {"A": 100.0, "B": 100.0})
    traded = sum(t.trade_value for t in result.trades)
    assert (traded - 100_000) / 1_000_000 <= 0.05 + 1e-9
    ref = 900_000.0
    # (sum |T| - 100k) / 1M <= 0.05  <=>  sum |T| / V_ref <= 150k / 900k.
    expected = _plain_turnover_projection(
        np.array([400_000.0, 600_000.0]) / ref, -100_000.0 / ref, np.array([0.5, 0.5]), 0.0, 150_000.0 / ref
    )
    got = np.array([result.post_trade_weights["A"], result.post_trade_weights["B"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[1] > 0.52  # the cap held it back from 50 %


# ---------------------------------------------------------------- dust


def test_a_position_sold_down_below_the_minimum_trade_is_named() -> None:
    """A $50k withdrawal from a $1M book leaves XYZ (target 0.03 %) at 3 shares, $314, under a
    $1,000 minimum trade: no later sale of it can keep the minimum."""
    config = PortfolioConfiguration(
        holdings=[
            Holding(symbol="A", shares=4000),
            Holding(symbol="B", shares=5979),
            Holding(symbol="XYZ", shares=20),
        ],
        target_weights={"A": 0.4, "B": 0.5997, "XYZ": 0.0003},
        cash=0.0,
        cash_flow=-50_000.0,
        min_trade_size=1000.0,
        tolerance=0.001,
        method="minimize_costs",
    )
    result = rebalance(config, {"A": 100.0, "B": 100.0, "XYZ": 104.67})
    assert result.post_trade_holdings["XYZ"] == 3
    (warning,) = _warned(result, "less than the minimum trade size")
    assert "XYZ 3 shares (314.01" in warning


def test_a_tiny_weight_is_not_shown_as_zero() -> None:
    assert percent(3.14e-5) == "0.0031%"
    assert percent(0.1234) == "12.34%"
    assert percent(0.0) == "0.00%"
    assert percent(-3.14e-5) == "-0.0031%"


def test_the_sectors_targets_are_summed_as_in_order() -> None:
    """The sector totals (bincount) are the sums ``np.add.at`` makes, unsectored assets left out,
    a sector with no asset at zero (float)."""
    from types import SimpleNamespace

    from finwiz.optimizer.verify._surprises import _sector_targets

    rng = np.random.default_rng(2)
    target = rng.uniform(0, 0.1, 40)
    for sector_of in (rng.integers(-1, 5, 40), np.full(40, -1)):
        data = SimpleNamespace(sector_names=("a", "b", "c", "d", "e", "f"), sector_of=sector_of, target=target)
        totals = np.zeros(6)
        np.add.at(totals, sector_of[sector_of >= 0], target[sector_of >= 0])
        got = _sector_targets(data)  # type: ignore[arg-type]
        assert got.dtype == np.float64
        assert got.tobytes() == totals.tobytes()
