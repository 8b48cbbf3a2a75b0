"""``finwiz backtest --cash-flows``, the risk metrics it prints, and its progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from finwiz.cli import main
from tests.cli.test_backtest_cli import PORTFOLIO

pytestmark = pytest.mark.usefixtures("cli_sandbox")
RANGE = ["--start", "2016-01-01", "--end", "2016-12-31"]


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    path = tmp_path / "book.toml"
    path.write_text(PORTFOLIO, encoding="utf-8")
    return path


def _final_value(out: str, policy: str) -> float:
    row = next(line for line in out.splitlines() if line.startswith(policy))
    return float(row.split()[1].replace(",", ""))


def test_cash_flows_from_a_csv_reach_the_book(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows.csv").write_text("Date,Amount\n2016-03-01,50000\n2016-09-15,-20000.5\n", encoding="utf-8")
    assert main(["-q", "backtest", str(portfolio), "--policy", "never", *RANGE]) == 0
    without = _final_value(capsys.readouterr().out, "never")
    assert main(["-q", "backtest", str(portfolio), "--policy", "never", *RANGE, "--cash-flows", "flows.csv"]) == 0
    out = capsys.readouterr().out
    assert _final_value(out, "never") == pytest.approx(without + 29_999.5, abs=0.01)  # never: flows stay cash
    for column in ("volatility", "max_drawdown", "sharpe"):
        assert column in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("when,amount\n2016-03-01,5\n", "a cash-flow CSV has the columns date,amount"),
        ("date,amount\n2016-03-01,lots\n", "flows.csv, row 2, column amount: 'lots' is not a finite number"),
        ("date,amount\n2016-03-01,5\n2016-03-01,6\n", "date 2016-03-01 appears twice"),
        ("date,amount\n2030-03-01,5\n", "2030-03-01 is outside the backtest"),
    ],
)
def test_bad_cash_flow_files_are_refused_by_name(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    (tmp_path / "flows.csv").write_text(content, encoding="utf-8")
    assert main(["backtest", str(portfolio), "--policy", "never", *RANGE, "--cash-flows", "flows.csv"]) == 1
    err = capsys.readouterr().err
    assert expected in err, err


def test_the_cash_flow_file_is_an_input(portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "flows.csv").write_text("date,amount\n2016-03-01,5\n", encoding="utf-8")
    assert main(["backtest", str(portfolio), "--cash-flows", "flows.csv", "--report", "flows.csv"]) == 2
    assert "would overwrite the --cash-flows file" in capsys.readouterr().err


def test_a_terminal_sees_a_bar_of_rebalance_dates_a_pipe_does_not(
    portfolio: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["backtest", str(portfolio), "--policy", "monthly", "--policy", "quarterly", *RANGE]
    assert main(args) == 0
    assert "date" not in capsys.readouterr().err.replace("dates", "")  # not a TTY: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Backtesting 2 policies: 100%" in err
    assert "16/16" in err  # 12 month ends + 4 quarter ends
