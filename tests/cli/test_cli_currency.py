"""The CLI in the portfolio's currency: amounts labelled, quotes in another currency refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from finwiz.cli import main
from finwiz.data import sample_latest_prices
from tests.cli.conftest import PORTFOLIO_TOML
from tests.reporting.conftest import parse_html

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def test_sample_prices_in_usd_are_refused_for_a_euro_book(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "eur.toml").write_text('currency = "EUR"\n' + PORTFOLIO_TOML, encoding="utf-8")
    assert main(["-q", "rebalance", "eur.toml", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert (
        "3 of 3 symbols have no usable price from sample (priced in USD, the portfolio is in EUR: AAPL, JNJ, MSFT)"
        in err
    )
    assert "holds only 20" not in err


def test_a_euro_book_on_csv_prices_is_shown_in_euros(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "eur.toml").write_text('currency = "eur"\n' + PORTFOLIO_TOML, encoding="utf-8")
    sample_latest_prices().rename("price").rename_axis("symbol").to_frame().assign(date="2024-01-02").reset_index()[
        ["symbol", "date", "price"]
    ].to_csv(tmp_path / "prices.csv", index=False)
    assert (
        main(["-q", "rebalance", "eur.toml", "--prices", "csv:prices.csv", "--report", "r.html", "--json", "r.json"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Value before:" in out
    summary = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines() if ":" in line}
    assert summary["Value before"].startswith("EUR ")
    assert summary["Total cost"].startswith("EUR ")
    assert "Price (EUR)" in out
    page = parse_html((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert page.tables["trades-table"][0][4] == "Price (EUR)"
    assert "USD" not in page.text
    assert '"currency": "EUR"' in (tmp_path / "r.json").read_text(encoding="utf-8")
