"""Input that used to be taken quietly: text prices, boolean shares, NaN cash, a covariance named
as a factor model. Each is refused, naming the field (and the symbol)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from finwiz import Holding, InvalidPortfolioError, PortfolioConfiguration, PriceData, PriceDataError, rebalance


def two_assets(**overrides: object) -> PortfolioConfiguration:
    fields: dict[str, object] = {
        "holdings": [{"symbol": "AAA", "shares": 10}, {"symbol": "BBB", "shares": 10}],
        "target_weights": {"AAA": 0.5, "BBB": 0.4},
        "cash": 100.0,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", ["110.3", "1,234.5", b"110.3", True, np.bool_(True)])
def test_text_and_boolean_prices_are_refused(price: object) -> None:
    with pytest.raises(PriceDataError) as info:
        rebalance(two_assets(), {"AAA": price, "BBB": 50.0})
    assert info.value.symbol == "AAA"
    assert "not a number" in str(info.value)


def test_text_and_boolean_series_are_refused() -> None:
    with pytest.raises(PriceDataError, match="not a number"):
        rebalance(two_assets(), pd.Series({"AAA": "110.3", "BBB": "50"}))
    with pytest.raises(PriceDataError, match="not a number"):
        rebalance(two_assets(), pd.Series({"AAA": True, "BBB": True}))


def test_numeric_prices_of_any_numeric_type_are_taken() -> None:
    prices = {"AAA": np.float32(110.5), "BBB": np.int64(50)}
    result = rebalance(two_assets(), prices)
    assert result.prices == {"AAA": 110.5, "BBB": 50.0}


@pytest.mark.parametrize("shares", [True, False, "10"])
def test_holding_shares_must_be_a_number(shares: object) -> None:
    with pytest.raises(InvalidPortfolioError, match="not a number") as info:
        Holding(symbol="aaa", shares=shares)
    assert info.value.field == "shares"
    assert info.value.symbol == "AAA"


def test_price_data_refuses_text() -> None:
    with pytest.raises(InvalidPortfolioError, match="text"):
        PriceData(symbol="AAA", price="110.3")


@pytest.mark.parametrize("field", ["cash", "cash_flow", "min_trade_size", "tolerance", "relative_tolerance"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_scalars_are_named_as_such(field: str, value: float) -> None:
    with pytest.raises(InvalidPortfolioError, match="not a finite number") as info:
        two_assets(**{field: value})
    assert info.value.field == field
    assert ">= 0" not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "field", "symbol"),
    [
        ({"target_weights": {"AAA": True}}, "target_weights", "AAA"),
        ({"lot_sizes": {"aaa": "10"}}, "lot_sizes", "AAA"),
        ({"cash": True}, "cash", None),
        ({"max_turnover": "0.2"}, "max_turnover", None),
        ({"sectors": {"AAA": "X", "BBB": "Y"}, "sector_caps": {"X": "0.3"}}, "sector_caps", None),
    ],
)
def test_booleans_and_text_in_numeric_fields_are_refused(
    fields: dict[str, object], field: str, symbol: str | None
) -> None:
    with pytest.raises(InvalidPortfolioError, match="not a number") as info:
        two_assets(**fields)
    assert info.value.field == field
    assert info.value.symbol == symbol


def test_a_covariance_missing_a_symbol_is_reported_as_covariance() -> None:
    covariance = pd.DataFrame(np.eye(2) * 1e-4, index=["AAA", "CCC"], columns=["AAA", "CCC"])
    with pytest.raises(InvalidPortfolioError) as info:
        rebalance(two_assets(method="risk_aware"), {"AAA": 10.0, "BBB": 50.0}, covariance=covariance)
    assert info.value.field == "covariance"
    assert info.value.symbol == "BBB"
    assert str(info.value).startswith("covariance has no data for BBB")
