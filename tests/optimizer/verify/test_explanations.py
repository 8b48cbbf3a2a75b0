"""An explanation that blames whole shares is checked against the continuous model with the trades'
real costs (issue 21): a position floor on an asset that may not be bought is met in the continuous
model only by a cost variable above the trades' costs (a phantom cost that shrinks the book), so
"fractional trades keep every limit" was false and the restricted list went unnamed."""

from __future__ import annotations

import pandas as pd
import pytest

from finwiz import Holding, InfeasibleRebalanceError, PortfolioConfiguration, rebalance
from finwiz.optimizer import MarketImpactModel
from tests.optimizer.tax.test_tax import _pgr_case

PRICES = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0}


def _floor_on_no_buy(fractional: bool, floor: float = 0.36) -> PortfolioConfiguration:
    """AAA is 32.3 % of a $31,000 book, may not be bought, and must end at ``floor`` or more."""
    return PortfolioConfiguration(
        holdings=[
            Holding(symbol="AAA", shares=100),
            Holding(symbol="BBB", shares=200),
            Holding(symbol="CCC", shares=500),
        ],
        target_weights={"AAA": 0.3, "BBB": 0.3, "CCC": 0.4},
        cash=1000.0,
        allow_fractional_shares=fractional,
        no_buy=["AAA"],
        min_position_weights={"AAA": floor},
    )


def _largest_reachable_weight(config: PortfolioConfiguration) -> float:
    """An upper bound on AAA's post-trade weight over every trade (fractional, real costs): AAA may
    not be bought, so only costs shrinking the book raise it; one side per asset, every other
    asset sold and bought back in full at most, costs ``rate x |trade|`` stay below twice the
    value times the rate."""
    held = config.shares_by_symbol()
    value = sum(held[s] * PRICES[s] for s in config.symbols) + config.cash
    return held["AAA"] * PRICES["AAA"] / (value * (1 - 2 * config.transaction_cost_rate))


IMPACT = MarketImpactModel(pd.Series(dict.fromkeys(PRICES, 1e6)), pd.Series(dict.fromkeys(PRICES, 0.02)))


@pytest.mark.parametrize("impact", [None, IMPACT], ids=["linear costs", "market impact"])
@pytest.mark.parametrize("fractional", [True, False])
def test_a_floor_on_a_no_buy_asset_names_the_restricted_list_not_whole_shares(
    fractional: bool, impact: MarketImpactModel | None
) -> None:
    config = _floor_on_no_buy(fractional)
    assert _largest_reachable_weight(config) < 0.36  # no trades at all reach the floor (impact aside)
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, PRICES, market_impact=impact)
    error = caught.value
    text = str(error)
    assert "min_position" in error.constraint_names
    assert "no_buy" in error.constraint_names
    assert "AAA" in text
    assert "whole shares" not in text
    assert "allow fractional shares" not in text


def test_fractional_shares_are_never_suggested_when_they_are_on() -> None:
    """Fractional shares on, a $10k lot size on one asset: the trade grid (not whole shares) is
    what the limits cannot meet, and the error says so."""
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=10.0), Holding(symbol="B", shares=10.0)],
        target_weights={"A": 0.5, "B": 0.5},
        cash=0.0,
        cash_flow=-500.0,
        max_turnover=0.3,
        tolerance=0.0,
        method="minimize_costs",
        transaction_cost_rate=0.0,
        allow_fractional_shares=True,
        lot_sizes={"A": 10.0, "B": 10.0},
    )
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, {"A": 100.0, "B": 100.0})
    text = str(caught.value)
    assert "allow fractional shares" not in text
    assert "lot size" in text
    assert "turnover_cap" in caught.value.constraint_names


@pytest.mark.parametrize("fractional", [False, True])
def test_a_refusal_with_a_position_floor_and_a_gain_budget_names_the_floor(fractional: bool) -> None:
    """A's floor keeps at least 16 of its 17 shares; the -$94 budget needs 15 of them sold (its
    only loss lot, B and C hold gains); selling and buying back is no wash-free way out. The
    refusal names the floor with the budget (issue 21: it named the budget and the one-side rule
    only, so the user could not see that the floor was the other half of the conflict)."""
    config, prices = _pgr_case(-94.0, min_position_weights={"A": 0.08}, allow_fractional_shares=fractional)
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, prices)
    names = caught.value.constraint_names
    assert "min_position" in names
    assert "realized_gain" in names
    assert "min_position[A]" in str(caught.value)
