"""What the command line reads and writes: outputs never on inputs nor on each other, CSV cells a
spreadsheet cannot run, no control characters on the terminal, bounded lots files, Ctrl-C -> 130."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pytest

from finwiz import InvalidPortfolioError, SolverError
from finwiz.cli import main
from finwiz.cli._files import csv_safe, terminal_text
from tests.cli.conftest import book_toml

pytestmark = pytest.mark.usefixtures("cli_sandbox")

BOOK = book_toml({"AAPL": '=HYPERLINK("http://x")', "MSFT": "+cmd", "JNJ": "@SUM(A1)"})

LOTS = "symbol,shares,cost_basis,acquired\nAAPL,300,100.0,2020-01-02\n"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.toml"
    path.write_text(BOOK, encoding="utf-8")
    return path


def run(*argv: str) -> int:
    return main(["-q", *argv])


@pytest.mark.parametrize("option", ["--csv", "--json", "--report"])
def test_an_output_on_the_portfolio_file_is_refused_and_the_file_kept(
    book: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = book.read_bytes()
    assert run("rebalance", str(book), option, str(book)) == 2
    err = capsys.readouterr().err
    assert f"{option} '{book}' would overwrite the portfolio file" in err
    assert book.read_bytes() == before


def test_an_output_on_another_spelling_or_a_link_of_an_input_is_refused(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.link(book, tmp_path / "hard.toml")
    (tmp_path / "soft.toml").symlink_to(book)
    for alias in ("./book.toml", "hard.toml", "soft.toml"):
        assert run("rebalance", str(book), "--csv", alias, "--no-report") == 2
        assert "would overwrite the portfolio file" in capsys.readouterr().err
    assert book.read_text(encoding="utf-8") == BOOK


def test_outputs_on_lots_and_price_files_are_refused(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lots = tmp_path / "lots.csv"
    lots.write_text(LOTS, encoding="utf-8")
    assert run("rebalance", str(book), "--lots", str(lots), "--json", str(lots)) == 2
    err = capsys.readouterr().err
    assert "--json" in err
    assert "the lots file" in err
    keyed = tmp_path / "keyed.toml"
    keyed.write_text('lots = "lots.csv"\n' + BOOK.replace("AAPL = 300\n", ""), encoding="utf-8")
    assert run("rebalance", str(keyed), "--csv", str(lots)) == 2
    assert "the lots file" in capsys.readouterr().err
    prices = tmp_path / "prices.csv"
    prices.write_text("Date,AAPL,MSFT,JNJ\n2024-01-02,100,200,150\n", encoding="utf-8")
    assert run("rebalance", str(book), "--prices", f"csv:{prices}", "--report", str(prices)) == 2
    assert "the price file" in capsys.readouterr().err
    assert lots.read_text(encoding="utf-8") == LOTS
    assert prices.read_text(encoding="utf-8").startswith("Date,AAPL")


def test_two_outputs_on_one_file_are_refused_naming_both(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rebalance", str(book), "--report", "out.txt", "--json", "out.txt") == 2
    assert "--report and --json name the same file 'out.txt'" in capsys.readouterr().err
    assert not Path("out.txt").exists()
    assert run("rebalance", str(book), "--no-report", "--csv", "o.csv", "--json", "./o.csv") == 2
    assert "--json and --csv name the same file" in capsys.readouterr().err


def test_backtest_report_never_overwrites_its_inputs(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("backtest", str(book), "--report", str(book)) == 2
    assert "--report" in capsys.readouterr().err
    prices = tmp_path / "p.csv"
    prices.write_text("Date,AAPL,MSFT,JNJ\n2024-01-02,100,200,150\n2024-01-03,101,201,151\n", encoding="utf-8")
    for argv in (["--prices", f"csv:{prices}"], ["--volumes", str(prices)]):
        assert run("backtest", str(book), *argv, "--report", str(prices)) == 2
        assert "would overwrite the --" in capsys.readouterr().err
    assert book.read_text(encoding="utf-8") == BOOK


def test_csv_cells_that_spreadsheets_run_are_neutralised_and_numbers_kept(book: Path) -> None:
    assert run("rebalance", str(book), "--no-report", "--csv", "out.csv") == 0
    with Path("out.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    sectors = {row["symbol"]: row["sector"] for row in rows}
    assert sectors["AAPL"] == '\'=HYPERLINK("http://x")'
    assert sectors["MSFT"] == "'+cmd"
    assert sectors["JNJ"] == "'@SUM(A1)"
    values = [float(row["trade_value"]) for row in rows]  # still numbers, the sells negative
    assert min(values) < 0
    assert all(not row["trade_value"].startswith("'") for row in rows)


def test_csv_safe_touches_text_only() -> None:
    frame = pd.DataFrame(
        {"name": ["-1+2", "ok", "=A1", "\tx"], "value": [-1.5, 2.0, -3.0, 0.0]}, index=["@a", "b", "c", "d"]
    )
    safe = csv_safe(frame)
    assert list(safe["name"]) == ["'-1+2", "ok", "'=A1", "'\tx"]
    assert list(safe["value"]) == [-1.5, 2.0, -3.0, 0.0]
    assert list(safe.index) == ["'@a", "b", "c", "d"]


def test_control_characters_never_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "evil.toml"
    evil.write_text(
        'cash = 1000.0\nholdings = []\n[target_weights]\n"\\u001b[2J\\u001b]0;pwned\\u0007EVIL\\u0008" = 0.5\n',
        encoding="utf-8",
    )
    assert run("rebalance", str(evil), "--no-report") == 1
    err = capsys.readouterr().err
    assert "EVIL" in err
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in err)
    assert terminal_text("a\x1b[31mred\x1b[0m\x07b\x9b1mc\r\n") == "aredbc\n"


def test_control_characters_in_printed_trades_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("Date,AAA\x1b[31m,BBB\n2024-01-02,100,50\n", encoding="utf-8")
    book = tmp_path / "b.toml"
    book.write_text(
        "cash = 10000.0\nholdings = []\ntolerance = 0.0\nmin_trade_size = 0.0\n"
        '[target_weights]\n"AAA\\u001b[31m" = 0.5\nBBB = 0.4\n',
        encoding="utf-8",
    )
    assert run("rebalance", str(book), "--prices", f"csv:{prices}", "--no-report") == 0
    out = capsys.readouterr().out
    assert "\nAAA  BUY" in out  # the symbol, without its escape sequence
    assert "\x1b" not in out


@pytest.mark.parametrize("kind", ["device", "directory", "fifo", "too large"])
def test_a_lots_path_must_be_a_bounded_regular_file(
    book: Path, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finwiz.cli import _portfolio_file

    if kind == "device":
        target = Path("/dev/zero")
    elif kind == "directory":
        target = tmp_path
    elif kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    else:
        target = tmp_path / "big.csv"
        target.write_text(LOTS * 100, encoding="utf-8")
        monkeypatch.setattr(_portfolio_file, "MAX_INPUT_FILE_BYTES", 1000)
    keyed = tmp_path / "keyed.toml"
    keyed.write_text(f'lots = "{target}"\n' + BOOK.replace("AAPL = 300\n", ""), encoding="utf-8")
    with pytest.raises(
        InvalidPortfolioError, match=r"lots file is (a directory|not a regular file|.*over the)"
    ) as info:
        _portfolio_file.load_portfolio_file(keyed)
    assert info.value.field == "lots"
    assert str(target) in str(info.value)
    assert run("rebalance", str(keyed), "--no-report") == 1
    assert "lots file" in capsys.readouterr().err


def test_the_portfolio_file_itself_must_be_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert run("rebalance", str(folder), "--no-report") == 1
    assert "portfolio file is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["parser", "load", "solve", "wrapped", "backtest"])
def test_ctrl_c_anywhere_exits_130_with_one_line(
    book: Path, where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finwiz.cli import _main, _portfolio_file
    from finwiz.optimizer import RebalancingEngine

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    def wrapped(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SolverError("SCIP failed") from exc

    if where == "parser":
        monkeypatch.setattr(_main, "build_parser", interrupt)
    elif where in ("load", "backtest"):
        monkeypatch.setattr(_portfolio_file, "load_portfolio_file", interrupt)
    else:
        monkeypatch.setattr(RebalancingEngine, "rebalance", interrupt if where == "solve" else wrapped)
    command = "backtest" if where == "backtest" else "rebalance"
    assert main(["--debug", command, str(book)] if where != "wrapped" else [command, str(book)]) == 130
    err = capsys.readouterr().err
    assert err.endswith("\nfinwiz: interrupted\n") or err == "finwiz: interrupted\n"  # after a progress bar
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["rebalance", "backtest"])
def test_a_price_source_that_is_not_a_regular_file_is_a_bad_command_line(
    book: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for source in ("/dev/zero", str(tmp_path)):
        assert (
            run(command, str(book), "--prices", f"csv:{source}", *(["--no-report"] if command == "rebalance" else []))
            == 2
        )
        err = capsys.readouterr().err
        assert "--prices file is" in err
