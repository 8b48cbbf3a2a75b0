"""Mixed currencies are refused by name wherever prices enter: the engine (``PriceData`` quotes
given to ``rebalance``) and the orchestrator (its price service's quotes), not only the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from finwiz import Holding, PortfolioConfiguration, PriceData, rebalance
from finwiz.errors import InsufficientPriceDataError
from finwiz.optimizer import PortfolioAnalyzer, RebalancingEngine
from finwiz.orchestrator import PortfolioRebalancingOrchestrator

CONFIG = PortfolioConfiguration(
    holdings=[Holding(symbol="SAP", shares=100), Holding(symbol="ASML", shares=20)],
    target_weights={"SAP": 0.5, "ASML": 0.5},
    currency="EUR",
    tolerance=0.0,
)


def _quotes(sap: str | None, asml: str | None) -> dict[str, PriceData]:
    return {
        "SAP": PriceData(symbol="SAP", price=180.0, currency=sap),
        "ASML": PriceData(symbol="ASML", price=650.0, currency=asml),
    }


def test_the_engine_refuses_quotes_in_another_currency_naming_each_symbol() -> None:
    with pytest.raises(InsufficientPriceDataError) as caught:
        rebalance(CONFIG, _quotes("EUR", "USD"))
    assert caught.value.failures == {"ASML": "priced in USD, the portfolio is in EUR"}
    with pytest.raises(InsufficientPriceDataError, match="SAP"):
        rebalance(CONFIG, pd.Series(_quotes("GBP", "EUR")))  # a Series of quotes too


def test_the_engine_takes_quotes_of_the_portfolios_or_an_unknown_currency() -> None:
    assert rebalance(CONFIG, _quotes("EUR", None)).trades
    assert rebalance(CONFIG, {"SAP": 180.0, "ASML": 650.0}).trades  # plain numbers: the portfolio's


class _Quotes:
    def __init__(self, quotes: Mapping[str, PriceData]) -> None:
        self.quotes = quotes

    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        return {s: self.quotes[s] for s in symbols}


async def test_the_orchestrator_refuses_a_providers_quotes_in_another_currency() -> None:
    orchestrator = PortfolioRebalancingOrchestrator(
        _Quotes(_quotes("USD", "USD")), PortfolioAnalyzer(), RebalancingEngine()
    )
    with pytest.raises(InsufficientPriceDataError) as caught:
        await orchestrator.rebalance_portfolio(CONFIG, "eu-1")
    assert set(caught.value.failures) == {"ASML", "SAP"}
    assert "the portfolio is in EUR" in str(caught.value)
