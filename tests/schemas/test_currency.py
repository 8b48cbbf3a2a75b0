"""The portfolio's currency, a price's currency, and amounts shown with the currency."""

from __future__ import annotations

import asyncio

import pytest

from finwiz import Holding, InvalidPortfolioError, PortfolioConfiguration, PriceData
from finwiz.data import SamplePriceProvider
from finwiz.data._providers import check_currency
from finwiz.errors import InsufficientPriceDataError


def _config(**fields: object) -> PortfolioConfiguration:
    return PortfolioConfiguration(holdings=[Holding(symbol="AAPL", shares=1)], target_weights={"AAPL": 0.5}, **fields)  # type: ignore[arg-type]


def test_the_configuration_has_an_iso_currency_usd_by_default() -> None:
    assert _config().currency == "USD"
    assert _config(currency=" eur ").currency == "EUR"


@pytest.mark.parametrize("bad", ["EURO", "€", "E1R", 978, ""])
def test_a_currency_that_is_not_an_iso_code_is_refused_by_name(bad: object) -> None:
    with pytest.raises(InvalidPortfolioError, match="currency") as caught:
        _config(currency=bad)
    assert caught.value.field == "currency"


def test_a_price_s_currency_is_known_or_none() -> None:
    assert PriceData(symbol="AAPL", price=1.0).currency is None
    assert PriceData(symbol="AAPL", price=1.0, currency="gbp").currency == "GBP"
    with pytest.raises(InvalidPortfolioError, match="currency"):
        PriceData(symbol="AAPL", price=1.0, currency="pounds")


def test_quotes_in_another_currency_are_refused_naming_each_symbol() -> None:
    quotes = {
        "AAPL": PriceData(symbol="AAPL", price=1.0, currency="USD"),
        "SAP": PriceData(symbol="SAP", price=1.0, currency="EUR"),
        "ASML": PriceData(symbol="ASML", price=1.0, currency="EUR"),
        "X": PriceData(symbol="X", price=1.0),  # unknown: taken as the portfolio's
        "Y": 3.0,
    }
    with pytest.raises(InsufficientPriceDataError) as caught:
        check_currency(quotes, "USD", provider="desk")
    assert caught.value.failures == {
        "ASML": "priced in EUR, the portfolio is in USD",
        "SAP": "priced in EUR, the portfolio is in USD",
    }
    check_currency({k: v for k, v in quotes.items() if k not in ("SAP", "ASML")}, "USD")  # no error


def test_the_sample_prices_are_in_usd() -> None:
    quotes = asyncio.run(SamplePriceProvider().get_multiple_prices(["AAPL", "MSFT"]))
    assert {q.currency for q in quotes.values()} == {"USD"}


def test_the_engine_labels_its_result_in_the_configurations_currency() -> None:
    from finwiz import Holding, PortfolioConfiguration, rebalance

    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=10)], target_weights={"A": 0.5, "B": 0.4}, cash=1_000.0, currency="EUR"
    )
    assert rebalance(config, {"A": 50.0, "B": 20.0}).currency == "EUR"


def test_one_currency_check_for_quotes_and_price_series() -> None:
    import pandas as pd

    from finwiz.schemas._inputs import refuse_other_currencies

    assert check_currency is refuse_other_currencies  # the data layer's name for the same check
    refuse_other_currencies(pd.Series({"SAP": 1.0, "AAPL": 2.0}), "EUR")  # plain numbers: the portfolio's
    quotes = pd.Series({"SAP": PriceData(symbol="SAP", price=1.0, currency="EUR"), "AAPL": 2.0})
    refuse_other_currencies(quotes, "EUR")
    with pytest.raises(InsufficientPriceDataError) as caught:
        refuse_other_currencies(quotes, "USD", provider="desk")
    assert caught.value.failures == {"SAP": "priced in EUR, the portfolio is in USD"}
    assert caught.value.provider == "desk"
