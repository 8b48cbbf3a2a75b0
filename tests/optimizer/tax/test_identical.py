"""No wash sale inside one rebalance across an ``identical`` group: a member sold at a loss is
not replaced by buying its twin (issue 21), in fractional and whole shares, taxable or not."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from finwiz import Holding, RebalancingResult, TaxLot, rebalance
from tests.optimizer.tax.test_tax import AS_OF, taxable, with_tax


def _twins(fractional: bool) -> tuple[object, dict[str, float]]:
    """A over its target with a large short-term loss lot, its twin A2 under its target: the
    tax-blind optimum sells A and buys A2, which is a wash sale when they are identical."""
    prices = {"A": 50.0, "A2": 50.0, "B": 100.0}
    held = [
        Holding(
            symbol="A", shares=300, lots=[TaxLot(shares=300, cost_basis=80.0, acquired=AS_OF - timedelta(days=60))]
        ),
        Holding(
            symbol="A2", shares=40, lots=[TaxLot(shares=40, cost_basis=45.0, acquired=AS_OF - timedelta(days=900))]
        ),
        Holding(
            symbol="B", shares=100, lots=[TaxLot(shares=100, cost_basis=90.0, acquired=AS_OF - timedelta(days=900))]
        ),
    ]
    config = taxable(held, {"A": 0.3, "A2": 0.3, "B": 0.38}, 1_000.0, identical={"A": "G", "A2": "G"})
    return config.model_copy(update={"fractional_shares": fractional}), prices


def _loss_sale_and_buy(result: RebalancingResult) -> tuple[float, float]:
    lost = sum(-lot.realized_gain for t in result.trades for lot in (t.lots or []) if lot.realized_gain < 0)
    bought = sum(t.shares for t in result.trades if t.action == "buy" and t.symbol in ("A", "A2"))
    return lost, bought


@pytest.mark.parametrize("fractional", [False, True])
def test_a_loss_sale_of_one_twin_forbids_buying_the_other_in_the_same_rebalance(fractional: bool) -> None:
    config, prices = _twins(fractional)
    apart = rebalance(with_tax(config, identical={}), prices)  # not identical: harvest and replace
    lost, bought = _loss_sale_and_buy(apart)
    assert lost > 0
    assert bought > 0
    result = rebalance(config, prices)
    lost, bought = _loss_sale_and_buy(result)
    assert lost == 0 or bought == 0, result.trades
    assert result.is_compliant
    assert np.isfinite(result.objective_value)


def test_exact_mode_keeps_the_identical_groups_rule_too() -> None:
    """Exact mode's program knows no identical groups (it sold A at a loss and bought 144 A2): the
    engine checks the final trades and walls the group off (the better of its two walls kept), so
    the answer is never the wash sale, and it costs at least the answer without the groups."""
    config, prices = _twins(False)
    apart = rebalance(with_tax(config, identical={}), prices, exact=True)
    lost, bought = _loss_sale_and_buy(apart)
    assert lost > 0
    assert bought > 0
    result = rebalance(config, prices, exact=True)
    lost, bought = _loss_sale_and_buy(result)
    assert lost == 0 or bought == 0, result.trades
    assert result.is_compliant
    assert result.objective_value >= apart.objective_value  # a restriction of the program without groups
