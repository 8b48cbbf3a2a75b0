"""``RebalancingResult.orders()``: the trade list as orders to send."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.errors import ConfigurationError
from finwiz.schemas import RebalancingResult


def _result(portfolio_id: str | None = "acct-1") -> RebalancingResult:
    """A sell of A (over target) and buys of B and C funded by it, cash short (0)."""
    prices = pd.Series({"A": 100.0, "B": 50.0, "C": 20.0})
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=100), Holding(symbol="B", shares=20), Holding(symbol="C", shares=0)],
        target_weights={"A": 0.4, "B": 0.3, "C": 0.3},
        cash=0.0,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
    )
    return rebalance(config, prices, portfolio_id=portfolio_id)


def test_orders_list_sells_before_buys_with_ids_and_values() -> None:
    result = _result()
    orders = result.orders()
    assert list(orders.columns) == [
        "account",
        "order_id",
        "symbol",
        "side",
        "quantity",
        "order_type",
        "limit_price",
        "estimated_value",
        "sequence",
    ]
    assert list(orders["symbol"]) == ["A", "B", "C"]
    assert list(orders["side"]) == ["SELL", "BUY", "BUY"]
    assert list(orders["sequence"]) == [1, 2, 3]
    assert list(orders["order_id"]) == ["acct-1-0001", "acct-1-0002", "acct-1-0003"]
    assert set(orders["account"]) == {"acct-1"}
    assert set(orders["order_type"]) == {"market"}
    assert orders["limit_price"].isna().all()
    by_symbol = {t.symbol: t for t in result.trades}
    for row in orders.itertuples():
        trade = by_symbol[row.symbol]
        assert row.quantity == trade.shares > 0
        assert row.estimated_value == pytest.approx(row.quantity * result.prices[row.symbol])
    # 11,000 of value, targets 40/30/30: sell 56 A, buy 46 B and 165 C.
    assert dict(zip(orders["symbol"], orders["quantity"], strict=True)) == {"A": 56, "B": 46, "C": 165}
    assert orders.equals(result.orders())  # deterministic ids


def test_orders_limit_prices_lean_past_the_last_price() -> None:
    orders = _result().orders(order_type="limit", limit_offset=0.01, account="IRA 7")
    assert list(orders["order_id"]) == ["IRA 7-0001", "IRA 7-0002", "IRA 7-0003"]
    prices = dict(zip(orders["symbol"], orders["limit_price"], strict=True))
    assert prices["A"] == pytest.approx(99.0)  # a sell limit below the price
    assert prices["B"] == pytest.approx(50.5)  # a buy limit above it
    assert prices["C"] == pytest.approx(20.2)


def test_orders_without_an_id_name_the_account_acct() -> None:
    assert _result(portfolio_id=None).orders()["order_id"].iloc[0] == "acct-0001"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"order_type": "limit"}, "limit_offset"),
        ({"order_type": "stop"}, "order_type"),
        ({"limit_offset": 0.01}, "limit_offset applies only"),
        ({"order_type": "limit", "limit_offset": math.nan}, "limit_offset"),
    ],
)
def test_orders_refuse_bad_options_by_name(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        _result().orders(**kwargs)  # type: ignore[arg-type]


def test_orders_of_a_result_without_trades_is_an_empty_frame() -> None:
    result = _result().model_copy(update={"trades": []})
    orders = result.orders()
    assert orders.empty
    assert "order_id" in orders.columns


def test_limit_prices_are_on_a_cent_tick() -> None:
    result = _result()
    orders = result.orders(order_type="limit", limit_offset=0.0033)
    prices = dict(zip(orders["symbol"], orders["limit_price"], strict=True))
    assert prices["A"] == 99.67  # 100 x 0.9967
    assert prices["B"] == 50.17  # 50 x 1.0033 = 50.165, to the cent
    assert prices["C"] == 20.07  # 20.066
