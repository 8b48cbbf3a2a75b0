"""Size ceilings: ``RebalancingSettings.max_assets`` and ``max_lots`` refuse a book past them
before any work, with an error naming the setting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from finwiz import (
    Holding,
    InvalidPortfolioError,
    PortfolioConfiguration,
    RebalancingEngine,
    RebalancingSettings,
    TaxLot,
    rebalance,
)
from finwiz.cli import main
from finwiz.optimizer.describe._data import build_problem_data


def book(n: int, lots_per_asset: int = 0) -> PortfolioConfiguration:
    holdings = [
        Holding(
            symbol=f"S{i:05d}",
            shares=10 * lots_per_asset if lots_per_asset else 10,
            lots=[TaxLot(shares=10, cost_basis=5.0, acquired=date(2020, 1, 2)) for _ in range(lots_per_asset)],
        )
        for i in range(n)
    ]
    tax = {"as_of": date(2024, 6, 28), "short_term_rate": 0.35, "long_term_rate": 0.15} if lots_per_asset else None
    return PortfolioConfiguration(
        holdings=holdings, target_weights={h.symbol: 0.9 / n for h in holdings}, cash=100.0, tax=tax
    )


def test_defaults_are_documented_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RebalancingSettings()
    assert (settings.max_assets, settings.max_lots) == (5_000, 200_000)
    monkeypatch.setenv("REBALANCING_MAX_ASSETS", "12")
    monkeypatch.setenv("REBALANCING_MAX_LOTS", "7")
    assert (RebalancingSettings().max_assets, RebalancingSettings().max_lots) == (12, 7)


def test_a_book_past_max_assets_is_refused_before_pricing() -> None:
    config = book(5_001)
    with pytest.raises(InvalidPortfolioError, match=r"5,001 assets, above max_assets 5,000") as info:
        rebalance(config, {})  # no prices at all: refused on size first
    assert info.value.field == "holdings"


def test_the_environment_moves_the_ceiling_of_a_new_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    config = book(3)
    prices = dict.fromkeys(config.symbols, 10.0)
    monkeypatch.setenv("REBALANCING_MAX_ASSETS", "2")
    with pytest.raises(InvalidPortfolioError, match="above max_assets 2"):
        RebalancingEngine().rebalance(config, prices)
    monkeypatch.setenv("REBALANCING_MAX_ASSETS", "3")
    assert RebalancingEngine().rebalance(config, prices).post_trade_holdings


def test_an_engine_keeps_the_ceiling_of_its_own_settings() -> None:
    config = book(3)
    prices = dict.fromkeys(config.symbols, 10.0)
    with pytest.raises(InvalidPortfolioError, match="above max_assets 2"):
        RebalancingEngine(RebalancingSettings(max_assets=2)).rebalance(config, prices)
    assert RebalancingEngine(RebalancingSettings(max_assets=3)).rebalance(config, prices).post_trade_holdings


def test_lots_past_max_lots_are_refused() -> None:
    config = book(2, lots_per_asset=3)
    prices = dict.fromkeys(config.symbols, 10.0)
    with pytest.raises(InvalidPortfolioError, match=r"6 tax lots, above max_lots 5") as info:
        build_problem_data(config, prices, settings=RebalancingSettings(max_lots=5))
    assert info.value.field == "lots"
    assert build_problem_data(config, prices, settings=RebalancingSettings(max_lots=6)).n == 2
    with pytest.raises(InvalidPortfolioError, match="above max_assets 1"):
        build_problem_data(config, prices, settings=RebalancingSettings(max_assets=1))


@pytest.mark.usefixtures("cli_sandbox")
def test_cli_stops_reading_a_lots_file_past_max_lots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lots = tmp_path / "lots.csv"
    rows = "".join(f"AAPL,1,100.0,2020-01-{day:02d}\n" for day in range(2, 6))
    lots.write_text("symbol,shares,cost_basis,acquired\n" + rows, encoding="utf-8")
    portfolio = tmp_path / "book.toml"
    portfolio.write_text(
        'cash = 1000.0\nlots = "lots.csv"\n[target_weights]\nAAPL = 0.9\n[tax]\nas_of = 2024-06-28\n'
        "short_term_rate = 0.35\nlong_term_rate = 0.15\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("REBALANCING_MAX_LOTS", "3")
    assert main(["-q", "rebalance", str(portfolio), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "row 5: more than max_lots 3 lots" in err
    monkeypatch.setenv("REBALANCING_MAX_LOTS", "4")
    assert main(["-q", "rebalance", str(portfolio), "--no-report"]) == 0
