"""A new user's first runs: a real book on the default sample prices, CSV holdings files."""

from __future__ import annotations

from pathlib import Path

import pytest

from finwiz.cli import main
from finwiz.cli._prices import UnpricedSymbolsError

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def _book(path: Path, symbols: list[str]) -> Path:
    weight = 0.9 / len(symbols)
    lines = ["cash = 1000.0", "[holdings]", *(f"{s} = 10" for s in symbols)]
    lines += ["[target_weights]", *(f"{s} = {weight}" for s in symbols)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_book_beyond_the_sample_gets_one_short_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = [f"ZZ{i:03d}" for i in range(411)]
    book = _book(tmp_path / "real.toml", [*unknown, "AAPL", "MSFT"])
    assert main(["-q", "rebalance", str(book), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert len(err) < 300, err
    assert "411 of 413 symbols unknown to the sample provider (ZZ000, ZZ001, ZZ002, ZZ003, ZZ004 and 406 more)" in err
    assert "--prices csv:PATH" in err


def test_the_short_error_keeps_every_failure_and_groups_other_reasons() -> None:
    error = UnpricedSymbolsError(
        {"A": "csv: unknown symbol", "B": "csv: refused price: zero", "C": "csv: unknown symbol"},
        provider="csv",
        total=10,
    )
    assert set(error.failures) == {"A", "B", "C"}
    assert str(error) == "3 of 10 symbols have no usable price from csv (unknown symbol: A, C; refused price: zero: B)"


HOLDINGS = (
    "Symbol,Shares,Target_Weight,Sector\n"
    "AAPL,300,0.3,Information Technology\nMSFT,20,0.3,Information Technology\nJNJ,100,0.3,Health Care\n"
)


def test_a_holdings_csv_with_targets_rebalances_like_the_same_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.conftest import PORTFOLIO_TOML

    (tmp_path / "book.csv").write_text(HOLDINGS, encoding="utf-8")
    toml = PORTFOLIO_TOML.replace("max_sector_weight = 0.6\n", "")
    (tmp_path / "book.toml").write_text(toml, encoding="utf-8")
    assert main(["-q", "rebalance", "book.csv", "--cash", "10000", "--no-report", "--csv", "a.csv"]) == 0
    assert main(["-q", "rebalance", "book.toml", "--no-report", "--csv", "b.csv"]) == 0
    capsys.readouterr()
    from_csv = (tmp_path / "a.csv").read_text(encoding="utf-8")
    assert from_csv == (tmp_path / "b.csv").read_text(encoding="utf-8")
    assert "Health Care" in from_csv


def test_a_holdings_csv_takes_targets_from_a_targets_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finwiz.cli._portfolio_file import load_portfolio_file

    (tmp_path / "h.csv").write_text("symbol,shares\nAAPL,10\nMSFT,5\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("symbol,target_weight\nmsft,0.5\nJNJ,0.4\n", encoding="utf-8")
    config = load_portfolio_file(tmp_path / "h.csv", targets=tmp_path / "t.csv", cash=250.0)
    assert {h.symbol: h.shares for h in config.holdings} == {"AAPL": 10, "MSFT": 5}
    assert config.target_weights == {"MSFT": 0.5, "JNJ": 0.4}
    assert config.cash == 250.0
    assert main(["-q", "rebalance", "h.csv", "--targets", "t.csv", "--no-report"]) == 0
    assert "JNJ" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("holdings", "extra", "expected"),
    [
        ("symbol,qty\nAAPL,1\n", [], "h.csv, row 1: missing column shares"),
        ("symbol,shares,price\nAAPL,1,3\n", [], "h.csv, row 1, column 3: unknown column 'price'"),
        ("symbol,shares\nAAPL,1\n", [], "h.csv: no target weights; add a target_weight column or give"),
        (
            "symbol,shares,target_weight\nAAPL,ten,0.5\n",
            [],
            "h.csv, row 2, column shares: 'ten' is not a number (AAPL)",
        ),
        (
            "symbol,shares,target_weight\nAAPL,1,0.5\naapl,2,0.1\n",
            [],
            "h.csv, row 3: AAPL is listed twice (also row 2)",
        ),
        ("symbol,shares,target_weight\nAAPL,1,0.5\n", ["--targets", "t.csv"], "target weights given twice"),
        ("symbol,shares,target_weight\nAAPL,,0.5\n", [], "h.csv, row 2, column shares: empty (AAPL)"),
        (
            "symbol,shares,target_weight\nAAPL,1,0.7\nMSFT,1,0.7\n",
            [],
            "h.csv: PortfolioConfiguration: target_weights sum to 1.4",
        ),
    ],
)
def test_bad_holdings_csvs_are_refused_by_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], holdings: str, extra: list[str], expected: str
) -> None:
    (tmp_path / "h.csv").write_text(holdings, encoding="utf-8")
    (tmp_path / "t.csv").write_text("symbol,target_weight\nAAPL,0.5\n", encoding="utf-8")
    assert main(["rebalance", "h.csv", "--no-report", *extra]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert err.count("\n") == 1


def test_the_targets_file_is_an_input_no_output_may_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "h.csv").write_text("symbol,shares\nAAPL,10\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("symbol,target_weight\nAAPL,0.5\n", encoding="utf-8")
    assert main(["rebalance", "h.csv", "--targets", "t.csv", "--orders", "t.csv"]) == 2
    assert "would overwrite the targets file" in capsys.readouterr().err
    assert main(["rebalance", "h.csv", "--targets", "t.csv", "--csv", "h.csv"]) == 2
    assert "would overwrite the portfolio file" in capsys.readouterr().err
