"""``finwiz rebalance ... --orders PATH``: the trade list as orders, kept off inputs and outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finwiz.cli import main
from tests.cli.conftest import PORTFOLIO_TOML

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def test_rebalance_writes_orders_sells_first(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["rebalance", str(portfolio), "--no-report", "--orders", "orders.csv", "--json", "r.json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    orders = pd.read_csv(tmp_path / "orders.csv")
    assert list(orders.columns[:4]) == ["account", "order_id", "symbol", "side"]
    assert list(orders["order_id"]) == [f"acct-{n:04d}" for n in range(1, len(orders) + 1)]
    sides = list(orders["side"])
    assert sides == sorted(sides, key=lambda side: side != "SELL")  # every SELL before any BUY
    assert "SELL" in sides
    assert "BUY" in sides
    assert "Orders written to" in out


def test_orders_may_not_overwrite_the_portfolio_or_another_output(
    portfolio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = portfolio.read_text(encoding="utf-8")
    assert main(["rebalance", str(portfolio), "--orders", str(portfolio)]) == 2
    assert "--orders" in capsys.readouterr().err
    assert portfolio.read_text(encoding="utf-8") == before
    assert main(["rebalance", str(portfolio), "--csv", "x.csv", "--orders", "x.csv"]) == 2
    assert "--csv and --orders name the same file" in capsys.readouterr().err


def test_orders_cells_a_spreadsheet_would_run_are_neutralised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "acct.toml"
    path.write_text(PORTFOLIO_TOML, encoding="utf-8")
    assert main(["rebalance", str(path), "--no-report", "--portfolio-id", "=HYPERLINK(1)", "--orders", "o.csv"]) == 0
    capsys.readouterr()
    orders = pd.read_csv(tmp_path / "o.csv")
    assert set(orders["account"]) == {"'=HYPERLINK(1)"}
    assert orders["order_id"].str.startswith("'=HYPERLINK(1)-").all()


def test_mode_flag_overrides_the_files_mode(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "mode" not in portfolio.read_text(encoding="utf-8")  # the file trades both ways (full)
    status = main(["rebalance", str(portfolio), "--no-report", "--mode", "sell_only", "--orders", "o.csv"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert set(pd.read_csv(tmp_path / "o.csv")["side"]) == {"SELL"}
    # buy_only cannot bring the file's over-cap sector down: refused, the mode named.
    assert main(["rebalance", str(portfolio), "--no-report", "--mode", "buy_only"]) == 1
    assert "buy_only[" in capsys.readouterr().err


def test_an_unknown_mode_is_a_command_line_error(portfolio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebalance", str(portfolio), "--no-report", "--mode", "buy"]) == 2
    assert "--mode" in capsys.readouterr().err
