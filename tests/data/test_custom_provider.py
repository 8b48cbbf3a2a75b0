"""A custom ``PriceDataProvider`` needs only ``get_current_price`` (history is optional)."""

from __future__ import annotations

import asyncio

import pytest

from finwiz.data import PriceDataProvider
from finwiz.errors import InsufficientPriceDataError
from finwiz.schemas import PriceData


class FixedQuotes(PriceDataProvider):
    name = "desk quotes"

    async def get_current_price(self, symbol: str) -> PriceData:
        return PriceData(symbol=symbol, price={"AAPL": 190.0, "MSFT": 410.0}[symbol], source=self.name)


def test_a_provider_with_only_current_prices_can_be_made_and_used() -> None:
    provider = FixedQuotes()
    prices = asyncio.run(provider.get_multiple_prices(["AAPL", "MSFT"]))
    assert {s: p.price for s, p in prices.items()} == {"AAPL": 190.0, "MSFT": 410.0}


def test_asking_it_for_history_names_the_provider_and_what_to_implement() -> None:
    with pytest.raises(InsufficientPriceDataError, match="FixedQuotes serves no price history") as caught:
        asyncio.run(FixedQuotes().get_historical_prices(["AAPL"]))
    assert caught.value.provider == "desk quotes"
    assert "fetch_history" in str(caught.value)
    assert caught.value.symbols == ["AAPL"]
