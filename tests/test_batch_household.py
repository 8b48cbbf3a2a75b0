"""``rebalance_many`` over households (#25): a Household in the batch is rebalanced whole."""

from __future__ import annotations

import pytest

from finwiz import (
    Account,
    Holding,
    Household,
    HouseholdResult,
    PortfolioConfiguration,
    RebalancingResult,
    rebalance_household,
    rebalance_many,
)

PRICES = {"VTI": 100.0, "BND": 50.0}


def _household(cash: float) -> Household:
    return Household(
        accounts=[
            Account(account_id="joint", kind="taxable", holdings=[Holding(symbol="VTI", shares=100)], cash=cash),
            Account(account_id="ira", kind="traditional", holdings=[Holding(symbol="BND", shares=10)]),
        ],
        target_weights={"VTI": 0.5, "BND": 0.5},
        tax_drag={"BND": {"taxable": 0.01}},
    )


def test_households_and_accounts_in_one_batch() -> None:
    single = PortfolioConfiguration(
        holdings=[Holding(symbol="VTI", shares=10)], target_weights={"VTI": 0.5, "BND": 0.5}
    )
    infeasible = _household(0.0).model_copy(update={"max_turnover": 0.0, "max_position_weight": 0.6})
    batch = rebalance_many({"smiths": _household(2000.0), "solo": single, "stuck": infeasible}, PRICES, progress=False)
    smiths, solo, stuck = batch.outcomes
    assert isinstance(smiths.result, HouseholdResult)
    assert smiths.result.weights_after == rebalance_household(_household(2000.0), PRICES).weights_after
    assert isinstance(solo.result, RebalancingResult)
    assert stuck.error_type == "InfeasibleHouseholdError"
    frame = batch.to_frame()
    assert frame.loc[0, "trades"] == len(smiths.result.trades)
    assert frame.loc[0, "turnover"] == pytest.approx(smiths.result.turnover)
