"""The report's tables as a PM reads them: blotter by sector, sector targets, compliance units."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import ComplianceCheck, RebalancingResult

from .conftest import TRADE_COLUMNS, ParsedPage, compliance_check, parse_html


def _page(result: RebalancingResult) -> ParsedPage:
    return parse_html(HTMLReportGenerator(include_charts=False).generate_html(result))


def test_large_blotter_is_grouped_by_sector_with_every_trade(large_result: RebalancingResult) -> None:
    page = _page(large_result)
    rows = page.tables["trades-table"]
    attrs = page.row_attrs["trades-table"]
    assert rows[0] == TRADE_COLUMNS
    trades = [row for row, a in zip(rows, attrs, strict=True) if len(row) == 11 and row[0] != "Symbol"]
    trades = [row for row in trades if row[0] != "Net total"]
    assert sorted(row[0] for row in trades) == sorted(t.symbol for t in large_result.trades)
    assert len(trades) == 145
    # One group header per sector traded, in order, each counting its own trades.
    groups = [row[0] for row, a in zip(rows, attrs, strict=True) if a.get("class") == "group"]
    expected = Counter(large_result.sectors.get(t.symbol, "No sector") for t in large_result.trades)
    names = [g.split(" \u00b7 ")[0] for g in groups]
    assert names == [*sorted(n for n in expected if n != "No sector"), "No sector"]
    for header in groups:
        name = header.split(" \u00b7 ")[0]
        n = expected[name]
        assert f"{n} trade{'' if n == 1 else 's'}" in header
    # Each trade row sits under its sector's header.
    current = None
    for row, a in zip(rows[1:], attrs[1:], strict=True):
        if a.get("class") == "group":
            current = row[0].split(" \u00b7 ")[0]
        elif len(row) == 11 and row[0] != "Net total":
            assert (row[1] or "No sector") == current
    # Without JavaScript nothing is hidden: no row carries a hidden attribute.
    assert all("hidden" not in a for a in attrs)


def test_blotter_weights_and_sort_keys_match_the_result(large_result: RebalancingResult) -> None:
    document = HTMLReportGenerator(include_charts=False).generate_html(large_result)
    rows = {r[0]: r for r in parse_html(document).tables["trades-table"] if len(r) == 11}
    for trade in large_result.trades:
        row = rows[trade.symbol]
        side = -1.0 if trade.action.value == "sell" else 1.0
        assert row[2] == trade.action.value.upper()
        assert row[5] == f"{side * trade.trade_value:,.2f}"
        assert row[7] == f"{100 * large_result.current_weights[trade.symbol]:.2f}%"
        assert row[8] == f"{100 * large_result.target_weights[trade.symbol]:.2f}%"
        assert row[9] == f"{100 * large_result.post_trade_weights[trade.symbol]:.2f}%"
        # The sorter reads the exact signed number, not the formatted text.
        assert f'data-value="{side * trade.trade_value}"' in document


def test_large_tables_sit_in_scroll_boxes_and_are_sortable(large_result: RebalancingResult) -> None:
    page = _page(large_result)
    sortable = {a.get("id") for tag, a in page.tags if tag == "table" and "sortable" in (a.get("class") or "")}
    assert {"trades-table", "weights-table", "compliance-table"} <= sortable
    wraps = [a.get("class") or "" for tag, a in page.tags if tag == "div"]
    assert sum("table-wrap scroll" in c for c in wraps) >= 3


def test_ungrouped_blotter_without_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    page = _page(make_result(sectors=False))
    attrs = page.row_attrs["trades-table"]
    assert not any(a.get("class") == "group" for a in attrs)
    assert len(page.tables["trades-table"]) == 1 + 2 + 1  # header, trades, total


def test_sector_table_has_a_target_column(result: RebalancingResult) -> None:
    rows = _page(result).tables["sectors-table"]
    assert rows[0] == ["Sector", "Current", "Target", "Post-trade", "Cap", "Headroom", "Status"]
    by_sector = {row[0]: row for row in rows[1:]}
    target_tech = result.target_weights["AAA"] + result.target_weights["CCC"]
    after_tech = result.post_trade_weights["AAA"] + result.post_trade_weights["CCC"]
    assert by_sector["Technology"][1:5] == ["70.00%", f"{100 * target_tech:.2f}%", f"{100 * after_tech:.2f}%", "60.00%"]
    assert by_sector["Health Care"][2] == f"{100 * result.target_weights['BBB']:.2f}%"


def _with_checks(result: RebalancingResult, checks: list[ComplianceCheck]) -> RebalancingResult:
    return result.model_copy(update={"compliance": checks})


def test_compliance_rows_read_in_words_grouped_by_kind(result: RebalancingResult) -> None:
    checks = [
        compliance_check("max_position[AAA]", "max_position", "<=", 0.3, 0.25, 0.05, "weight"),
        compliance_check("long_only[AAA]", "long_only", ">=", 0.0, 450.0, 450.0, "shares"),
        compliance_check("cash_floor", "cash", ">=", 1000.0, 10971.0, 9971.0, "currency"),
        compliance_check("esg_floor", "esg", ">=", 7.0, 6.5, -0.5, "score"),
        compliance_check("custom", "custom", "<=", 1.0, 0.5, 0.5),
    ]
    rows = _page(_with_checks(result, checks)).tables["compliance-table"]
    assert rows[0] == ["Limit", "Post-trade", "Room", "Status"]
    # In words, each value in its unit; the group with a breach first, then the fixed order.
    assert rows[1:] == [
        ["ESG floor \u00b7 0 of 1 hold"],
        ["average ESG score \u2265 7", "6.5", "-0.5", "BREACH"],
        ["Position caps \u00b7 1 of 1 hold \u00b7 the asset nearest its limit"],
        ["AAA \u2264 30 % of value", "25 %", "5 %", "ok"],
        ["Cash floor \u00b7 1 of 1 hold"],
        ["cash \u2265 USD 1,000.00", "USD 10,971.00", "USD 9,971.00", "ok"],
        ["No short sales \u00b7 1 of 1 hold \u00b7 the asset nearest its limit"],
        ["long_only[AAA] \u2265 0", "450", "450", "ok"],  # not a sale bound: shown as it is
        ["Custom checks \u00b7 1 of 1 hold"],
        ["custom: its own check", "passes", "", "ok"],
    ]


@pytest.mark.parametrize("unit", ["weight", "turnover"])
def test_fraction_units_read_as_percentages(result: RebalancingResult, unit: str) -> None:
    check = compliance_check("c", "t", "<=", 0.5, 0.123456, 0.376544, unit)
    row = _page(_with_checks(result, [check])).tables["compliance-table"][2]
    assert row[:2] == ["c \u2264 50 %", "12.346 %"]


def test_one_row_per_limit_and_member_at_its_tightest(result: RebalancingResult) -> None:
    def band(slack: float) -> ComplianceCheck:
        value = 0.0 if slack == 0 else 2.0
        return compliance_check("tolerance_band[MMM]", "trade_bounds", "<=", 0.0, value, slack, "shares")

    cap = compliance_check("max_position[AAPL]", "max_position", "<=", 0.1, 0.09997, 0.00003, "weight")
    rows = _page(_with_checks(result, [band(0.0), band(-2.0), cap])).tables["compliance-table"]
    assert rows[1:] == [
        ["Inside the tolerance band \u00b7 0 of 1 hold \u00b7 the asset nearest its limit"],
        ["MMM: no trade (inside its tolerance band)", "trades 2", "-2", "BREACH"],
        ["Position caps \u00b7 1 of 1 hold \u00b7 the asset nearest its limit"],
        ["AAPL \u2264 10 % of value", "9.997 %", "0.003 %", "ok"],
    ]
