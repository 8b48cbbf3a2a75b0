"""Text dates in backtest price tables: read one way only, or refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finwiz import Holding, InvalidPortfolioError, PortfolioConfiguration
from finwiz.backtest import Backtest, NeverRebalance
from finwiz.cli import main
from finwiz.cli._backtest import price_table
from finwiz.data import compute_returns

# Eight trading days of March 2024 (1st to 12th), written day first: every day is 12 or less.
MARCH = pd.bdate_range("2024-03-01", periods=8)
DAY_FIRST = [d.strftime("%d/%m/%Y") for d in MARCH]


def book() -> PortfolioConfiguration:
    return PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=10)], target_weights={"AAA": 0.9}, cash=100.0, tolerance=0.0
    )


def prices(index: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"AAA": np.linspace(100.0, 108.0, len(index))}, index=index)


def test_day_first_dates_with_small_days_are_refused_by_name() -> None:
    with pytest.raises(InvalidPortfolioError, match=r"prices: date '01/03/2024' is ambiguous.*date_format") as info:
        Backtest(prices(DAY_FIRST), initial=book())
    assert info.value.field == "prices"


def test_date_format_reads_them_as_written() -> None:
    backtest = Backtest(prices(DAY_FIRST), initial=book(), date_format="%d/%m/%Y")
    assert list(backtest.prices.index) == list(MARCH)


def test_unambiguous_dates_keep_working() -> None:
    iso = Backtest(prices([d.strftime("%Y-%m-%d") for d in MARCH]), initial=book())
    assert list(iso.prices.index) == list(MARCH)
    # A day above 12 settles the order: day first here, month first in the US form.
    days = pd.bdate_range("2024-03-11", periods=9)
    for fmt in ("%d/%m/%Y", "%m/%d/%Y"):
        assert list(Backtest(prices([d.strftime(fmt) for d in days]), initial=book()).prices.index) == list(days)
    named = Backtest(prices([d.strftime("%b %d, %Y") for d in MARCH]), initial=book())  # a month name
    assert list(named.prices.index) == list(MARCH)
    stamped = Backtest(prices(list(MARCH)), initial=book())  # real dates: nothing to guess
    assert list(stamped.prices.index) == list(MARCH)


def test_a_value_not_matching_the_format_is_named() -> None:
    with pytest.raises(InvalidPortfolioError, match=r"'2024-03-01' does not match date_format '%d/%m/%Y'"):
        Backtest(prices(["2024-03-01", *DAY_FIRST[1:]]), initial=book(), date_format="%d/%m/%Y")


def test_ambiguous_cash_flow_dates_are_refused_too() -> None:
    flows = pd.Series([50.0], index=["04/03/2024"])
    with pytest.raises(InvalidPortfolioError, match="cash_flows: date '04/03/2024' is ambiguous"):
        Backtest(prices([d.strftime("%Y-%m-%d") for d in MARCH]), initial=book(), cash_flows=flows)
    played = Backtest(prices(DAY_FIRST), initial=book(), cash_flows=flows, date_format="%d/%m/%Y")
    assert played.history.flows[MARCH.get_loc(pd.Timestamp("2024-03-04"))] == 50.0


def test_duplicated_dates_are_refused_in_the_price_table_and_in_returns() -> None:
    index = [d.strftime("%Y-%m-%d") for d in MARCH]
    index[4] = index[3]
    with pytest.raises(InvalidPortfolioError, match="date 2024-03-06 appears twice"):
        Backtest(prices(index), initial=book())
    table = pd.DataFrame({"AAA": [1.0, 2.0, 3.0]}, index=pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-01"]))
    with pytest.raises(InvalidPortfolioError, match="date 2024-03-01 appears twice"):
        compute_returns(table)


CSV_BOOK = """\
cash = 100.0
tolerance = 0.0

[holdings]
AAA = 10

[target_weights]
AAA = 0.9
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    portfolio = tmp_path / "book.toml"
    portfolio.write_text(CSV_BOOK, encoding="utf-8")
    table = tmp_path / "prices.csv"
    prices(DAY_FIRST).rename_axis("Date").to_csv(table)
    return portfolio, table


def test_cli_refuses_ambiguous_csv_dates_and_takes_date_format(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    portfolio, table = files
    assert main(["-q", "backtest", str(portfolio), "--prices", f"csv:{table}", "--policy", "never"]) == 1
    err = capsys.readouterr().err
    assert "'01/03/2024' is ambiguous" in err
    assert "--date-format" in err
    status = main(
        ["-q", "backtest", str(portfolio), "--prices", f"csv:{table}", "--date-format", "%d/%m/%Y", "--policy", "never"]
    )
    assert status == 0, capsys.readouterr().err
    assert list(price_table(f"csv:{table}", date_format="%d/%m/%Y").index) == list(MARCH)
    assert NeverRebalance  # the policy the command line ran


def test_long_csv_with_a_date_twice_for_a_symbol_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("symbol,date,price\nAAA,2024-03-01,10\nAAA,2024-03-04,11\nAAA,2024-03-01,12\n", encoding="utf-8")
    with pytest.raises(InvalidPortfolioError, match="AAA has two prices on 2024-03-01"):
        price_table(f"csv:{path}")
    path.write_text("symbol,date,price\nAAA,01/03/2024,10\nAAA,04/03/2024,11\n", encoding="utf-8")
    with pytest.raises(InvalidPortfolioError, match="'01/03/2024' is ambiguous"):
        price_table(f"csv:{path}")
    assert list(price_table(f"csv:{path}", date_format="%d/%m/%Y").index) == list(
        pd.to_datetime(["2024-03-01", "2024-03-04"])
    )


def test_wide_csv_with_a_date_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("Date,AAA\n2024-03-01,10\n2024-03-01,11\n", encoding="utf-8")
    with pytest.raises(InvalidPortfolioError, match="date 2024-03-01 appears twice"):
        price_table(f"csv:{path}")
