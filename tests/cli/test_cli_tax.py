"""`finwiz rebalance` with tax lots: the file's lots CSV, ``--lots`` replacing it, one-line errors
for bad lots, and the tax figures in the printed summary and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from finwiz import PortfolioConfiguration, RebalancingEngine, RebalancingResult
from finwiz.cli import main
from finwiz.reporting._format import money
from finwiz.schemas import LotSale, TaxSummary, TradeAction
from tests.reporting.conftest import parse_html

ACCOUNT = """\
cash = 2000.0
tolerance = 0.0
lots = "missing-lots.csv"

[tax]
as_of = 2024-06-28
short_term_rate = 0.35
long_term_rate = 0.15

[[holdings]]
symbol = "AAPL"

[[holdings.lots]]
shares = 300
cost_basis = 40.0
acquired = 2016-03-01

[[holdings.lots]]
shares = 100
cost_basis = 500.0
acquired = "2024-05-02"

[target_weights]
AAPL = 0.3
MSFT = 0.3
JNJ = 0.3
"""

LOTS = """\
symbol,shares,cost_basis,acquired,lot_id
MSFT,15,200.0,2019-01-04,M-1
MSFT,5,900.0,2024-04-01,M-2
JNJ,100,150.0,2021-09-01,
"""


pytestmark = pytest.mark.usefixtures("cli_sandbox")


@pytest.fixture
def account(tmp_path: Path) -> Path:
    (tmp_path / "lots.csv").write_text(LOTS, encoding="utf-8")
    path = tmp_path / "acct.toml"
    path.write_text(ACCOUNT, encoding="utf-8")
    return path


def _fifo_lots(config: PortfolioConfiguration, result: RebalancingResult) -> RebalancingResult:
    """Until the optimizer sells by lot: each sell relieves its oldest lots, and the summary adds
    them up (an engine that already fills result.tax is left alone)."""
    tax = config.tax
    if tax is None or result.tax is not None:
        return result
    lots = {h.symbol: sorted(h.lots, key=lambda x: x.acquired) for h in config.holdings}
    trades, sums = [], {"short": [0.0, 0.0], "long": [0.0, 0.0]}
    for trade in result.trades:
        if trade.action is TradeAction.SELL:
            left, sales = trade.shares, []
            for lot in lots[trade.symbol]:
                take = min(left, lot.shares)
                if take <= 0:
                    break
                gain = round(take * (trade.price - lot.cost_basis), 2)
                term = "long" if tax.is_long_term(lot.acquired) else "short"
                sums[term][0 if gain >= 0 else 1] += abs(gain)
                sales.append(
                    LotSale(
                        lot_id=str(lot.lot_id),
                        shares=take,
                        cost_basis=lot.cost_basis,
                        acquired=lot.acquired,
                        realized_gain=gain,
                        term=term,
                    )
                )
                left -= take
            trade = trade.model_copy(update={"lots": sales})
        trades.append(trade)
    net = {term: gain - loss for term, (gain, loss) in sums.items()}
    summary = TaxSummary(
        short_term_gains=sums["short"][0],
        short_term_losses=sums["short"][1],
        long_term_gains=sums["long"][0],
        long_term_losses=sums["long"][1],
        net_realized_gain=net["short"] + net["long"],
        estimated_tax=tax.short_term_rate * net["short"] + tax.long_term_rate * net["long"],
        harvested_losses=sums["short"][1] + sums["long"][1],
    )
    return result.model_copy(update={"trades": trades, "tax": summary})


@pytest.fixture
def lot_aware_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RebalancingEngine.rebalance

    def rebalance(self: RebalancingEngine, config: PortfolioConfiguration, *args: Any, **kwargs: Any) -> Any:
        return _fifo_lots(config, original(self, config, *args, **kwargs))

    monkeypatch.setattr(RebalancingEngine, "rebalance", rebalance)


def test_the_files_lots_key_is_read_and_lots_replaces_it(
    account: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file names a CSV that is not there: refused in one line naming it ...
    assert main(["rebalance", str(account), "--no-report"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("finwiz: error: ")
    assert "missing-lots.csv: no such lots file" in err
    assert err.count("\n") == 1
    # ... and --lots (relative to the working directory) replaces it.
    assert main(["rebalance", str(account), "--lots", "lots.csv", "--no-report", "--json", "r.json"]) == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["current_holdings"] == {"AAPL": 400.0, "MSFT": 20.0, "JNJ": 100.0}


def test_a_bad_lots_csv_gives_one_line_naming_file_row_and_column(
    account: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.csv").write_text(LOTS.replace("150.0", "15O.0"), encoding="utf-8")
    assert main(["rebalance", str(account), "--lots", "bad.csv", "--no-report"]) == 1
    _, err = capsys.readouterr()
    assert "bad.csv, row 4, column cost_basis: '15O.0' is not a number (JNJ)" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.usefixtures("lot_aware_engine")
def test_the_summary_and_the_report_show_the_tax(
    account: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["rebalance", str(account), "--lots", "lots.csv", "--json", "r.json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    sold = [(t["symbol"], lot) for t in data["trades"] for lot in t["lots"]]
    assert sold, "the account must sell something (AAPL is far above its target)"
    # Realised gains recomputed from the lots sold and the trade prices, to the cent.
    prices = {t["symbol"]: t["price"] for t in data["trades"]}
    for symbol, lot in sold:
        assert lot["realized_gain"] == pytest.approx(lot["shares"] * (prices[symbol] - lot["cost_basis"]), abs=0.005)
    net = sum(lot["realized_gain"] for _, lot in sold)
    assert data["tax"]["net_realized_gain"] == pytest.approx(net, abs=0.01)
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines() if ":" in line}
    assert lines["Estimated tax"] == f"{money(data['tax']['estimated_tax'], 'USD')} (not paid from cash)"
    assert lines["Realised gains"].startswith(f"{money(data['tax']['net_realized_gain'], 'USD')} net")
    assert "Lots sold" in out
    for _, lot in sold:
        assert lot["lot_id"] in out
    page = parse_html((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "taxes" in page.section_ids
    assert len(page.tables["tax-lots-table"]) == len(sold) + 2  # header and total


def test_help_mentions_lots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebalance", "--help"]) == 0
    out, _ = capsys.readouterr()
    assert "--lots PATH" in out
    assert "symbol,shares,cost_basis,acquired" in out
