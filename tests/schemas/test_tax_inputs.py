"""Tax lots and tax settings as input: bad lots and settings are refused naming the symbol, lot or
field; a configuration with lots survives pickling (batches) and dump/validate (dates included)."""

from __future__ import annotations

import math
import pickle
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finwiz import InvalidPortfolioError, PortfolioConfiguration, rebalance
from finwiz.schemas import LotSale, RebalancingResult, TaxLot, TaxSettings, TaxSummary, TradeAction

AS_OF = "2024-06-28"


def lot(shares: float = 5, cost_basis: float = 10.0, acquired: str = "2021-03-01", **extra: Any) -> dict[str, Any]:
    return {"shares": shares, "cost_basis": cost_basis, "acquired": acquired, **extra}


def tax(**extra: Any) -> dict[str, Any]:
    return {"as_of": AS_OF, "short_term_rate": 0.35, "long_term_rate": 0.15, **extra}


def config(**overrides: Any) -> PortfolioConfiguration:
    """AAA (two lots) and BBB (one lot) in a tax-aware account, with ``overrides``."""
    fields: dict[str, Any] = {
        "holdings": [
            {"symbol": "AAA", "shares": 10, "lots": [lot(4, 80.0, "2020-01-15"), lot(6, 120.0, "2024-02-01")]},
            {"symbol": "BBB", "shares": 20, "lots": [lot(20, 30.0, "2023-06-01", lot_id="broker-17")]},
        ],
        "target_weights": {"AAA": 0.5, "BBB": 0.4},
        "cash": 1000.0,
        "tax": tax(),
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


def refused(needles: tuple[str, ...], field: str | None, symbol: str | None, **overrides: Any) -> None:
    with pytest.raises(InvalidPortfolioError) as caught:
        config(**overrides)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    assert caught.value.field == field, message
    assert caught.value.symbol == symbol, message


def one_holding(symbol: str = "AAA", shares: float = 10, lots: list[dict[str, Any]] | None = None) -> list[Any]:
    return [{"symbol": symbol, "shares": shares, "lots": [lot(10)] if lots is None else lots}]


def test_a_good_configuration_numbers_its_lots_and_keeps_given_ids() -> None:
    cfg = config()
    assert [x.lot_id for x in cfg.holdings[0].lots] == ["AAA#1", "AAA#2"]
    assert [x.lot_id for x in cfg.holdings[1].lots] == ["broker-17"]
    assert cfg.holdings[0].lots[1].acquired == date(2024, 2, 1)
    assert cfg.tax is not None
    assert cfg.tax.as_of == date(2024, 6, 28)
    assert cfg.tax.is_long_term(date(2020, 1, 15))
    assert not cfg.tax.is_long_term(date(2024, 2, 1))


@pytest.mark.parametrize(
    ("overrides", "needles", "field", "symbol"),
    [
        # lots that do not add up to the holding (a large position: the figures stay distinct)
        ({"holdings": one_holding(shares=11)}, ("AAA", "10 shares", "11"), "lots", "AAA"),
        (
            {"holdings": one_holding(shares=1_234_568, lots=[lot(1_234_567)])},
            ("AAA", "1234567", "1234568"),
            "lots",
            "AAA",
        ),
        # cost basis: negative, NaN, infinite, text
        ({"holdings": one_holding(lots=[lot(10, -1.0)])}, ("AAA", "cost_basis"), "cost_basis", "AAA"),
        ({"holdings": one_holding(lots=[lot(10, math.nan)])}, ("AAA", "cost_basis", "nan"), "cost_basis", "AAA"),
        ({"holdings": one_holding(lots=[lot(10, math.inf)])}, ("AAA", "cost_basis", "inf"), "cost_basis", "AAA"),
        ({"holdings": one_holding(lots=[lot(10, "12")])}, ("AAA", "cost_basis", "text"), "cost_basis", "AAA"),  # type: ignore[arg-type]
        # lot shares and dates
        ({"holdings": one_holding(lots=[lot(12), lot(-2)])}, ("AAA", "shares"), "shares", "AAA"),
        ({"holdings": one_holding(lots=[lot(10, acquired="2021-02-30")])}, ("AAA", "acquired"), "acquired", "AAA"),
        (
            {"holdings": one_holding(lots=[lot(4), lot(6, acquired="2024-07-01")])},
            ("AAA#2", "AAA", "2024-07-01", "after as_of 2024-06-28"),
            "acquired",
            "AAA",
        ),
        # repeated lot ids: within a holding, also against an automatic id, and across holdings
        (
            {"holdings": one_holding(lots=[lot(5, lot_id="L1"), lot(5, lot_id="L1")])},
            ("AAA", "L1", "twice"),
            "lots",
            "AAA",
        ),
        (
            {"holdings": one_holding(lots=[lot(5, lot_id="AAA#2"), lot(5)])},
            ("AAA", "AAA#2", "twice"),
            "lots",
            "AAA",
        ),
        (
            {
                "holdings": [
                    {"symbol": "AAA", "shares": 10, "lots": [lot(10, lot_id="L1")]},
                    {"symbol": "BBB", "shares": 20, "lots": [lot(20, lot_id="L1")]},
                ]
            },
            ("L1", "AAA", "BBB"),
            "lots",
            "BBB",
        ),
        # a position without lots in a tax-aware account
        (
            {"holdings": [*one_holding(), {"symbol": "BBB", "shares": 20}]},
            ("BBB", "no lots"),
            "lots",
            "BBB",
        ),
        # tax rates outside [0, 1], or not numbers
        ({"tax": tax(short_term_rate=1.2)}, ("short_term_rate",), "short_term_rate", None),
        ({"tax": tax(long_term_rate=-0.01)}, ("long_term_rate",), "long_term_rate", None),
        ({"tax": tax(long_term_rate=math.nan)}, ("long_term_rate", "nan"), "long_term_rate", None),
        ({"tax": tax(short_term_rate="0.3")}, ("short_term_rate", "text"), "short_term_rate", None),
        # the other numbers of the settings
        ({"tax": tax(long_term_days=True)}, ("long_term_days", "boolean"), "long_term_days", None),
        ({"tax": tax(wash_sale_days="30")}, ("wash_sale_days", "text"), "wash_sale_days", None),
        ({"tax": tax(wash_sale_days=-1)}, ("wash_sale_days",), "wash_sale_days", None),
        ({"tax": tax(tax_weight=-1.0)}, ("tax_weight",), "tax_weight", None),
        ({"tax": tax(max_realized_gain=math.inf)}, ("max_realized_gain",), "max_realized_gain", None),
        ({"tax": tax(lot_policy="lifo")}, ("lot_policy",), "lot_policy", None),
        ({"tax": tax(as_of="2024-06-31")}, ("as_of",), "as_of", None),
        ({"tax": tax(ordinary_rate=1.5)}, ("ordinary_rate",), "ordinary_rate", None),
        ({"tax": tax(loss_carryforward=-1.0)}, ("loss_carryforward",), "loss_carryforward", None),
        ({"tax": tax(realized_short_ytd=math.inf)}, ("realized_short_ytd",), "realized_short_ytd", None),
        ({"tax": tax(realized_long_ytd="5")}, ("realized_long_ytd", "text"), "realized_long_ytd", None),
        ({"tax": tax(ordinary_loss_limit=-3000)}, ("ordinary_loss_limit",), "ordinary_loss_limit", None),
        ({"tax": tax(tax_model="flat")}, ("tax_model",), "tax_model", None),
        # recent trades: after as_of, naming unknown lots, bad numbers
        (
            {"tax": tax(recent_sales=[{"symbol": "aaa", "date": "2024-06-29", "shares": 1, "loss": 5}])},
            ("recent_sales", "AAA", "2024-06-29", "after as_of"),
            "recent_sales",
            "AAA",
        ),
        (
            {"tax": tax(recent_purchases=[{"symbol": "BBB", "date": "2024-07-02", "shares": 1}])},
            ("recent_purchases", "BBB", "after as_of"),
            "recent_purchases",
            "BBB",
        ),
        (
            {"tax": tax(recent_sales=[{"symbol": "AAA", "date": "2024-06-20", "shares": 1, "lot_id": "AAA#3"}])},
            ("recent_sales", "unknown lot AAA#3", "AAA"),
            "recent_sales",
            "AAA",
        ),
        (
            # a lot id of another holding is not this holding's lot
            {
                "tax": tax(
                    recent_purchases=[{"symbol": "AAA", "date": "2024-06-20", "shares": 1, "lot_id": "broker-17"}]
                )
            },
            ("recent_purchases", "unknown lot broker-17", "AAA"),
            "recent_purchases",
            "AAA",
        ),
        (
            {"tax": tax(recent_sales=[{"symbol": "AAA", "date": "2024-06-20", "shares": 1, "loss": -3}])},
            ("loss", "AAA"),
            "loss",
            "AAA",
        ),
        (
            {"tax": tax(recent_sales=[{"symbol": "AAA", "date": "2024-06-20", "shares": 0}])},
            ("shares", "AAA"),
            "shares",
            "AAA",
        ),
        # tax-aware rebalancing is long-only
        ({"allow_short": True}, ("long-only", "allow_short"), "tax", None),
    ],
)
def test_bad_tax_input_is_refused_naming_it(
    overrides: dict[str, Any], needles: tuple[str, ...], field: str | None, symbol: str | None
) -> None:
    refused(needles, field, symbol, **overrides)


def test_lots_are_checked_against_as_of_only_when_tax_is_set() -> None:
    # Without tax settings the lots are kept (they must still add up) and no date is compared.
    cfg = config(holdings=one_holding(lots=[lot(10, acquired="2030-01-01")]), tax=None)
    assert cfg.holdings[0].lots[0].acquired == date(2030, 1, 1)
    # ... and a position without lots is fine.
    assert config(holdings=[{"symbol": "AAA", "shares": 10}], tax=None).holdings[0].lots == []


def test_a_recent_trade_naming_a_held_lot_and_an_unheld_symbol_are_accepted() -> None:
    cfg = config(
        tax=tax(
            recent_sales=[{"symbol": "AAA", "date": "2024-06-20", "shares": 2, "loss": 40.0, "lot_id": "AAA#2"}],
            recent_purchases=[{"symbol": "ZZZ", "date": "2024-06-01", "shares": 3}],
        )
    )
    assert cfg.tax is not None
    assert cfg.tax.recent_sales[0].lot_id == "AAA#2"
    assert cfg.tax.recent_purchases[0].symbol == "ZZZ"


def test_lots_summing_up_to_float_noise_are_accepted() -> None:
    cfg = config(holdings=one_holding(shares=0.3, lots=[lot(0.1), lot(0.2)]), tax=None)
    assert sum(x.shares for x in cfg.holdings[0].lots) != 0.3  # 0.30000000000000004
    assert cfg.holdings[0].shares == 0.3


def test_configuration_with_lots_pickles_and_round_trips_through_dumps() -> None:
    cfg = config(
        tax=tax(
            max_realized_gain=2500.0,
            recent_sales=[{"symbol": "BBB", "date": "2024-06-10", "shares": 3, "loss": 12.5}],
            recent_purchases=[{"symbol": "AAA", "date": "2024-06-02", "shares": 1, "lot_id": "AAA#2"}],
            identical={"bbb": "index-fund"},
        )
    )
    back = pickle.loads(pickle.dumps(cfg))
    assert back == cfg
    assert back.holdings[0].lots[0].acquired == date(2020, 1, 15)
    assert back.tax is not None
    assert back.tax.recent_sales[0].date == date(2024, 6, 10)
    for mode in ("python", "json"):
        dumped = cfg.model_dump(mode=mode)
        if mode == "json":
            assert dumped["tax"]["as_of"] == AS_OF
            assert dumped["holdings"][0]["lots"][0]["acquired"] == "2020-01-15"
        again = PortfolioConfiguration.model_validate(dumped)
        assert again == cfg
        assert again.holdings[0].lots[1].acquired == date(2024, 2, 1)  # a date again, not text
    assert PortfolioConfiguration.model_validate_json(cfg.model_dump_json()) == cfg


def _tax_result(cfg: PortfolioConfiguration, prices: dict[str, float]) -> RebalancingResult:
    """A tax-blind rebalance dressed with lot sales and a summary (the optimizer's part)."""
    result = rebalance(cfg.model_copy(update={"tax": None}), prices)
    trades = []
    for trade in result.trades:
        if trade.action is TradeAction.SELL:
            first = next(h for h in cfg.holdings if h.symbol == trade.symbol).lots[0]
            sale = LotSale(
                lot_id=str(first.lot_id),
                shares=trade.shares,
                cost_basis=first.cost_basis,
                acquired=first.acquired,
                realized_gain=trade.shares * (trade.price - first.cost_basis),
                term="long",
            )
            trade = trade.model_copy(update={"lots": [sale]})
        trades.append(trade)
    summary = TaxSummary(long_term_gains=100.0, net_realized_gain=100.0, estimated_tax=15.0, budget=2500.0)
    return result.model_copy(update={"tax": summary, "trades": trades})


def test_result_with_lot_sales_and_tax_pickles_and_round_trips() -> None:
    cfg = config(target_weights={"AAA": 0.2, "BBB": 0.7}, tolerance=0.0)
    result = _tax_result(cfg, {"AAA": 150.0, "BBB": 40.0})
    sold = [t for t in result.trades if t.lots]
    assert sold, "the test needs a sell"
    back = pickle.loads(pickle.dumps(result))
    assert back == result
    assert back.tax == result.tax
    assert [t.lots for t in back.trades] == [t.lots for t in result.trades]
    again = RebalancingResult.model_validate_json(result.model_dump_json())
    assert again.tax == result.tax
    assert again.trades[0].lots == result.trades[0].lots
    assert isinstance(again.trades[0].lots[0].acquired, date)


positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(positive, min_size=1, max_size=8), st.floats(min_value=-0.5, max_value=0.5))
def test_lots_must_add_up_to_the_holding(lot_shares: list[float], offset: float) -> None:
    total = math.fsum(lot_shares)
    shares = total + offset
    lots = [TaxLot(shares=s, cost_basis=1.0, acquired=date(2020, 1, 1)) for s in lot_shares]
    close = abs(sum(lot_shares) - shares) <= 1e-9 * max(1.0, abs(shares))
    if close:
        cfg = config(holdings=[{"symbol": "AAA", "shares": shares, "lots": lots}], tax=None)
        assert [x.lot_id for x in cfg.holdings[0].lots] == [f"AAA#{k + 1}" for k in range(len(lots))]
    else:
        with pytest.raises(InvalidPortfolioError, match="lots of AAA") as caught:
            config(holdings=[{"symbol": "AAA", "shares": shares, "lots": lots}], tax=None)
        assert caught.value.symbol == "AAA"


def test_settings_helpers_count_days_from_as_of() -> None:
    settings = TaxSettings(**tax(long_term_days=365, wash_sale_days=30))
    assert settings.is_long_term(date(2023, 6, 28)) is True  # 366 days
    assert settings.is_long_term(date(2023, 6, 29)) is False  # 365 days: not more than a year
    assert settings.in_window(date(2024, 5, 29)) is True  # 30 days
    assert settings.in_window(date(2024, 5, 28)) is False  # 31 days
