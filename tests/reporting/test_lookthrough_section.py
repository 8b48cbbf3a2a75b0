"""The report's look-through sections: exposures against their caps and floors, and a blended
model's sleeves, each only when the result has the data."""

from __future__ import annotations

from finwiz import Holding, Model, PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine
from finwiz.reporting import HTMLReportGenerator

from .conftest import parse_html

PRICES = {"AAPL": 190.0, "SPY": 500.0, "BND": 72.0}


def _result(**fields: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {
        "holdings": [Holding(symbol="AAPL", shares=50), Holding(symbol="SPY", shares=100)],
        "target_weights": {"AAPL": 0.10, "SPY": 0.60, "BND": 0.30},
        "cash": 20_000.0,
        "tolerance": 0.0,
    }
    config = PortfolioConfiguration(**{**base, **fields})  # type: ignore[arg-type]
    return RebalancingEngine().rebalance(config, PRICES)


def test_the_exposures_table_shows_each_exposure_against_its_limits() -> None:
    result = _result(
        exposures={"AAPL": {"issuer:Apple": 1.0, "US": 1.0}, "SPY": {"issuer:Apple": 0.07, "US": 1.0}},
        exposure_caps={"issuer:Apple": 0.10},
    )
    page = parse_html(HTMLReportGenerator(include_charts=False).generate_html(result))
    assert "exposures" in page.section_ids
    assert "sleeves" not in page.section_ids
    rows = page.tables["exposures-table"]
    assert rows[0] == ["Exposure", "Current", "Target", "Post-trade", "Floor", "Cap", "Status"]
    by_name = {row[0]: row for row in rows[1:]}
    frame = result.exposures()
    assert by_name["issuer:Apple"][5] == "10.00%"
    assert by_name["issuer:Apple"][3] == f"{frame.loc['issuer:Apple', 'after'] * 100:.2f}%"
    assert by_name["issuer:Apple"][6] == "ok"
    assert by_name["US"][5] == "\u2013"
    assert by_name["US"][6] == "no limit"
    words = [row[0] for row in page.tables["compliance-table"][1:]]
    assert "issuer:Apple (look-through) \u2264 10 % of value" in words


def test_the_sleeves_table_shows_each_sleeve() -> None:
    model = Model("balanced", {Model("stocks", {"AAPL": 0.2, "SPY": 0.8}): 0.7, Model("bonds", {"BND": 1.0}): 0.3})
    result = _result(target_weights=model)
    page = parse_html(HTMLReportGenerator(include_charts=False).generate_html(result))
    assert "exposures" not in page.section_ids
    rows = page.tables["sleeves-table"]
    assert [row[0] for row in rows[1:]] == list(result.sleeves().index)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["balanced/bonds"][1] == "30.00%"
    assert by_name["balanced/stocks"][1] == "70.00%"
