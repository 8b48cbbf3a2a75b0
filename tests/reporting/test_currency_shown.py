"""Every amount of the summary and the report carries the result's currency."""

from __future__ import annotations

from finwiz.reporting import HTMLReportGenerator, summary_text, trades_table
from finwiz.schemas import RebalancingResult
from tests.reporting.conftest import parse_html


def test_the_summary_and_tables_name_the_currency(result: RebalancingResult) -> None:
    euros = result.model_copy(update={"currency": "EUR"})
    text = summary_text(euros)
    for label in ("Value before", "Value after", "Cash before", "Cash after", "Total cost"):
        line = next(line for line in text.splitlines() if line.startswith(label + ":"))
        assert line.split(":", 1)[1].strip().startswith("EUR "), line
    assert "USD" not in text
    header = trades_table(euros).splitlines()[0].split()
    assert header[3:] == ["Price", "(EUR)", "Value", "(EUR)", "Cost", "(EUR)", "Why"]


def test_the_report_names_the_currency_on_every_amount(result: RebalancingResult) -> None:
    page = parse_html(
        HTMLReportGenerator(include_charts=False).generate_html(result.model_copy(update={"currency": "CHF"}))
    )
    assert page.tables["trades-table"][0][4:7] == ["Price (CHF)", "Value (CHF)", "Cost (CHF)"]
    assert "Value beforeCHF " in page.text
    assert "Total costCHF " in page.text
    assert "USD" not in page.text
