"""What the 431-asset report's screenshots puzzled a reader with, each fixed and held here: the
sector table left out the assets without a sector (its weights did not add up), the compliance
table's per-asset groups showed one asset without saying why, and the blotter's sector names
wrapped once the Why column took its room."""

from __future__ import annotations

import pytest

from finwiz.reporting import HTMLReportGenerator, sector_exposure
from finwiz.schemas import RebalancingResult

from .conftest import build_large_result, parse_html


@pytest.fixture(scope="module")
def book() -> RebalancingResult:
    return build_large_result(60, 30)  # every tenth asset without a sector


def test_sector_exposure_has_a_row_for_the_assets_without_a_sector(book: RebalancingResult) -> None:
    exposure = sector_exposure(book)
    unclassified = [s for s in book.current_holdings if s not in book.sectors]
    assert unclassified
    row = exposure.loc["No sector"]
    assert row["before"] == pytest.approx(sum(book.current_weights[s] for s in unclassified))
    assert row["after"] == pytest.approx(sum(book.post_trade_weights[s] for s in unclassified))
    assert row["cap"] != row["cap"]  # NaN: no cap applies
    assert exposure.index[-1] == "No sector"
    cash = book.current_weights["CASH"]
    assert exposure["before"].sum() + cash == pytest.approx(1.0)  # the table adds up


def test_per_asset_compliance_groups_say_which_asset_they_show(book: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator(include_charts=False).generate_html(book))
    headers = [row[0] for row in page.tables["compliance-table"] if len(row) == 1]
    per_asset = [h for h in headers if h.startswith(("Position caps", "No short sales"))]
    assert per_asset
    assert all(h.endswith("the asset nearest its limit") for h in per_asset)
    assert not any(h.startswith("Sector caps") and "nearest" in h for h in headers)


def test_blotter_sector_names_do_not_wrap(book: RebalancingResult) -> None:
    document = HTMLReportGenerator(include_charts=False).generate_html(book)
    assert '<td class="sector">' in document
    assert "td.sector { white-space: nowrap; }" in document


def test_risk_by_sector_names_the_assets_without_a_sector_as_the_sector_table_does(book: RebalancingResult) -> None:
    from finwiz.reporting._risk_section import risk_section_html, sector_risk_figure

    from .test_risk_section import with_risk

    risky = with_risk(book)
    assert risky.risk_after is not None
    assert "Unclassified" in risky.risk_after.sector_risk_contributions  # the risk model's own label
    html = risk_section_html(risky)
    assert "<td>No sector</td>" in html
    assert "Unclassified" not in html
    (axes,) = sector_risk_figure(risky).axes
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert "No sector" in labels
    assert {t.get_fontsize() for t in axes.get_yticklabels()} == {10.0}  # as the other charts' labels
