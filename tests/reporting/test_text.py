"""Terminal views: the aligned trade table and the summary."""

from __future__ import annotations

from collections.abc import Callable

from finwiz.reporting import summary_text, trades_table
from finwiz.schemas import RebalancingResult


def test_trades_table_is_aligned(result: RebalancingResult) -> None:
    lines = trades_table(result).splitlines()
    assert lines[0].split() == ["Symbol", "Side", "Shares", "Price", "(USD)", "Value", "(USD)", "Cost", "(USD)", "Why"]
    assert set(lines[1]) == {"-", " "}
    # Sells first, then buys; numbers right-aligned so every line ends in the same column.
    assert lines[2].split() == ["AAA", "SELL", "-150", "100.00", "-15,000.00", "15.00"]  # signed like to_frame()
    assert lines[3].split() == ["BBB", "BUY", "280", "50.00", "14,000.00", "14.00"]
    assert lines[4].startswith("Net ")
    assert lines[4].split()[-2:] == ["-1,000.00", "29.00"]
    numbers_end = lines[0].index("(USD)  Why") + len("(USD)")
    assert {line[numbers_end - 1] for line in lines[2:]} != {" "}  # numbers end in the Cost column
    assert len({len(line.rstrip()) for line in lines[2:]}) == 1  # (no reasons in this fixture)


def test_trades_table_without_trades(make_result: Callable[..., RebalancingResult]) -> None:
    assert trades_table(make_result(trades=False)).startswith("No trades")


def test_summary_text(result: RebalancingResult) -> None:
    text = summary_text(result)
    assert "Value before:      USD 100,000.00" in text
    assert "Turnover:          29.00%" in text
    assert "Warning: rounded 2 trades to whole shares" in text
    assert "Compliant:         yes" in text


def test_the_text_blotter_gives_two_reasons_and_the_report_every_one(result: RebalancingResult) -> None:
    from finwiz.reporting import HTMLReportGenerator
    from finwiz.schemas import TradeReason

    reasons = [TradeReason(kind="fact", label=f"reason {k}") for k in (1, 2, 3)]
    trades = [t.model_copy(update={"reasons": reasons}) for t in result.trades]
    explained = result.model_copy(update={"trades": trades})
    assert trades[0].why_text(2) == "reason 1; reason 2"
    assert trades[0].why_text() == trades[0].why == "reason 1; reason 2; reason 3"
    text = trades_table(explained)
    assert "reason 1; reason 2" in text
    assert "reason 3" not in text
    page = HTMLReportGenerator().generate_html(explained)
    assert "reason 1; reason 2; reason 3" in page
