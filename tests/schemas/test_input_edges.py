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


# ---------------------------------------------------------------- impact, factor models, YAML, bands


def impact(**overrides: object) -> object:
    from finwiz import MarketImpactModel

    fields: dict[str, object] = {
        "daily_dollar_volume": pd.Series({"AAA": 1e6, "BBB": 2e6}),
        "volatility": pd.Series({"AAA": 0.02, "BBB": 0.01}),
        "coefficient": 1.0,
    }
    fields.update(overrides)
    return MarketImpactModel(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field", "symbol", "match"),
    [
        ({"coefficient": -1.0}, "market_impact", None, "coefficient must be a finite number >= 0, not -1.0"),
        ({"coefficient": math.nan}, "market_impact", None, "coefficient"),
        ({"coefficient": "1.0"}, "market_impact", None, "not '1.0'"),
        ({"coefficient": True}, "market_impact", None, "not True"),
        ({"daily_dollar_volume": {"AAA": 1e6, "BBB": 2e6}}, "market_impact.daily_dollar_volume", None, "not dict"),
        ({"volatility": [0.02, 0.01]}, "market_impact.volatility", None, "not list"),
        (
            {"daily_dollar_volume": pd.Series({"AAA": 1e6, "BBB": 0.0})},
            "market_impact.daily_dollar_volume",
            "BBB",
            "positive",
        ),
        (
            {"daily_dollar_volume": pd.Series({"AAA": -5.0, "BBB": 1.0})},
            "market_impact.daily_dollar_volume",
            "AAA",
            "positive",
        ),
        (
            {"daily_dollar_volume": pd.Series({"AAA": math.nan, "BBB": 1.0})},
            "market_impact.daily_dollar_volume",
            "AAA",
            "positive",
        ),
        ({"volatility": pd.Series({"AAA": 0.02, "BBB": math.nan})}, "market_impact.volatility", "BBB", "nan"),
        ({"volatility": pd.Series({"AAA": -0.02, "BBB": 0.01})}, "market_impact.volatility", "AAA", ">= 0"),
        ({"volatility": pd.Series({"AAA": "0.02", "BBB": 0.01})}, "market_impact.volatility", "AAA", "'0.02'"),
        ({"volatility": pd.Series([0.02, 0.01], index=["AAA", "AAA"])}, "market_impact.volatility", "AAA", "twice"),
    ],
)
def test_market_impact_model_refuses_what_it_cannot_price(
    overrides: dict[str, object], field: str, symbol: str | None, match: str
) -> None:
    with pytest.raises(InvalidPortfolioError, match=match) as info:
        impact(**overrides)
    assert info.value.field == field
    assert info.value.symbol == symbol


def test_a_valid_market_impact_model_still_prices_trades() -> None:
    model = impact(coefficient=np.float32(0.5), volatility=pd.Series({"AAA": 0.0, "BBB": 0.01}))
    assert model.coefficient == 0.5  # type: ignore[attr-defined]
    config = two_assets(tolerance=0.0, min_trade_size=0.0, cash=300.0, target_weights={"AAA": 0.05, "BBB": 0.9})
    result = rebalance(config, {"AAA": 10.0, "BBB": 50.0}, market_impact=model)
    by_symbol = {t.symbol: t for t in result.trades}
    assert all(t.market_impact_cost == 0.0 for t in result.trades if t.symbol == "AAA")  # zero volatility
    bbb = by_symbol["BBB"]  # 0.5 x 0.01 x |T|^1.5 / sqrt(2e6), the documented formula
    assert bbb.market_impact_cost == pytest.approx(0.5 * 0.01 * bbb.trade_value**1.5 / np.sqrt(2e6), rel=1e-6, abs=0.01)


def factor_model(symbols: list[str], factors: list[str]) -> object:
    from finwiz import FactorModel

    loadings = pd.DataFrame(np.ones((len(symbols), len(factors))) * 0.01, index=symbols, columns=factors)
    covariance = pd.DataFrame(np.eye(len(factors)), index=factors, columns=factors)
    return FactorModel(loadings, covariance, pd.Series(1e-4, index=symbols))


def test_a_factor_model_with_a_symbol_or_factor_twice_is_refused_by_name() -> None:
    from finwiz import FactorModel

    with pytest.raises(InvalidPortfolioError, match="lists symbol AAA twice") as info:
        factor_model(["AAA", "BBB", "AAA"], ["mkt"])
    assert (info.value.field, info.value.symbol) == ("factor_model", "AAA")
    with pytest.raises(InvalidPortfolioError, match="lists factor mkt twice"):
        factor_model(["AAA", "BBB"], ["mkt", "mkt"])
    twice = pd.DataFrame(np.eye(3) * 1e-4, index=["AAA", "BBB", "AAA"], columns=["AAA", "BBB", "AAA"])
    with pytest.raises(InvalidPortfolioError, match="covariance lists symbol AAA twice") as info:
        FactorModel.from_covariance(twice)
    assert info.value.symbol == "AAA"
    with pytest.raises(InvalidPortfolioError, match="covariance lists symbol AAA twice"):
        rebalance(two_assets(method="risk_aware"), {"AAA": 10.0, "BBB": 50.0}, covariance=twice)
    with pytest.raises(InvalidPortfolioError, match="idiosyncratic_variance must be a pandas Series"):
        FactorModel(pd.DataFrame({"f": [1.0]}, index=["AAA"]), pd.DataFrame({"f": [1.0]}, index=["f"]), [1e-4])  # type: ignore[arg-type]


@pytest.mark.parametrize("ticker", ["ON", "OFF", "YES", "NO", "Y", "N", "TRUE", "False", "on", "7203"])
def test_yaml_tickers_that_yaml_1_1_reads_as_booleans_stay_tickers(ticker: str) -> None:
    from finwiz.cli._portfolio_file import parse_portfolio_text

    text = (
        f"cash: 1000.0\nallow_fractional_shares: true\nholdings:\n  {ticker}: 10\n  MSFT: 5\n"
        f"target_weights:\n  {ticker}: 0.5\n  MSFT: 0.4\nno_sell: [{ticker}]\n"
    )
    config = parse_portfolio_text(text, "yaml", source="p.yaml")
    symbol = ticker.upper()
    assert config.symbols == [symbol, "MSFT"]
    assert config.target_weights[symbol] == 0.5
    assert config.no_sell == [symbol]
    assert config.allow_fractional_shares is True  # a real boolean is still one
    listed = parse_portfolio_text(
        f"holdings:\n  - symbol: {ticker}\n    shares: 3\ntarget_weights: {{{ticker}: 0.9}}\n", "yaml", source="p.yaml"
    )
    assert listed.holdings[0].symbol == symbol


def test_yaml_file_with_ticker_on_rebalances(tmp_path: object) -> None:
    from pathlib import Path

    from finwiz.cli._portfolio_file import load_portfolio_file

    path = Path(str(tmp_path)) / "book.yaml"
    path.write_text("cash: 1000.0\ntolerance: 0.0\nholdings:\n  ON: 10\ntarget_weights:\n  ON: 0.9\n", encoding="utf-8")
    config = load_portfolio_file(path)
    result = rebalance(config, {"ON": 50.0})
    assert config.symbols == ["ON"]
    assert result.post_trade_holdings["ON"] > 10


def test_zero_tolerance_freezes_no_asset_even_one_exactly_on_target() -> None:
    # AAA sits exactly on its 40 % target; BBB may not be bought, so the 20 points it lacks stay
    # in cash unless AAA may take some. Nearest portfolio (zero costs, fractional shares): minimise
    # (a - 0.4)^2 + (c - 0.0)^2 with a + c = 0.6 + ... -> the excess splits evenly between AAA and cash.
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=40), Holding(symbol="BBB", shares=20)],
        target_weights={"AAA": 0.4, "BBB": 0.6},
        cash=40.0,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=True,
        no_buy=["BBB"],
        method="minimize_costs",
    )
    result = rebalance(config, {"AAA": 1.0, "BBB": 1.0})
    # Independent answer: BBB fixed at 0.2; a + cash = 0.8, nearest to (0.4, 0.0) is a = 0.6, cash = 0.2.
    assert result.post_trade_weights["AAA"] == pytest.approx(0.6, abs=1e-4)
    assert result.post_trade_holdings["AAA"] == pytest.approx(60.0, abs=0.01)
    banded = rebalance(config.model_copy(update={"tolerance": 0.01}), {"AAA": 1.0, "BBB": 1.0})
    assert banded.post_trade_holdings["AAA"] == 40  # a real band still holds it
