"""The HTML report: sections, embedded charts, escaping, breaches, custom sections, writing."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

import pytest

from finwiz.errors import ConfigurationError, FinwizError
from finwiz.reporting import HTMLReportGenerator, ReportSection, result_summary_html
from finwiz.schemas import RebalancingResult

from .conftest import EVIL_PORTFOLIO, EVIL_SECTOR, EVIL_SYMBOL, TRADE_COLUMNS, parse_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUILT_IN = ["summary", "weights", "sectors", "trades", "costs", "compliance", "warnings"]


def test_report_has_every_section_in_order(result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(result))
    assert page.section_ids == BUILT_IN
    assert page.headings == [
        "Executive summary",
        "Current vs target vs post-trade weights",
        "Sector exposure",
        "Trades",
        "Costs and turnover",
        "Compliance",
        "Warnings",
    ]
    assert page.title == "Portfolio rebalancing report"
    assert page.lang == "en"


def test_summary_shows_the_key_figures(result: RebalancingResult) -> None:
    text = parse_html(HTMLReportGenerator().generate_html(result)).text
    for expected in (
        "100,000.00",
        "99,971.00",
        "10,971.00",
        "29.00%",
        "CLARABEL",
        "whole_shares",
        "optimal",
        "2 (1 buy, 1 sell)",
        "acct-42",
        "rounded 2 trades to whole shares",
    ):
        assert expected in text


def test_trade_blotter_lists_each_trade(result: RebalancingResult) -> None:
    rows = parse_html(HTMLReportGenerator().generate_html(result)).tables["trades-table"]
    assert rows[0] == TRADE_COLUMNS
    by_symbol = {row[0]: row for row in rows if len(row) == 11}
    # Shares and value signed like to_frame(): negative for the sell.
    assert by_symbol["AAA"][:7] == ["AAA", "Technology", "SELL", "-150", "100.00", "-15,000.00", "15.00"]
    assert by_symbol["BBB"][:7] == ["BBB", "Health Care", "BUY", "280", "50.00", "14,000.00", "14.00"]
    for symbol in ("AAA", "BBB"):
        weights = (result.current_weights, result.target_weights, result.post_trade_weights)
        assert by_symbol[symbol][7:10] == [f"{100 * w[symbol]:.2f}%" for w in weights]
    assert by_symbol["Net total"][5] == "-1,000.00"  # net: 14,000 bought - 15,000 sold


def test_charts_are_embedded_pngs(result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(result))
    assert len(page.images) == 2  # weights and sectors
    for image in page.images:
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
        assert image["alt"]


def test_report_is_self_contained(result: RebalancingResult) -> None:
    document = HTMLReportGenerator().generate_html(result)
    page = parse_html(document)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"link", "iframe", "object", "embed"}
    # One inline script (the table sorter), loading nothing.
    assert [attributes for tag, attributes in page.tags if tag == "script"] == [{}]
    for word in ("fetch(", "XMLHttpRequest", "import", "src", "http", "eval("):
        assert word not in page.scripts[0]
    for _, attributes in page.tags:
        for name in ("src", "href"):
            value = attributes.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), value
    assert "http://" not in document
    assert "https://" not in document
    assert "@import" not in document


def test_charts_can_be_left_out(result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator(include_charts=False).generate_html(result))
    assert page.images == []
    assert page.section_ids == BUILT_IN


def test_user_strings_are_escaped(make_result: Callable[..., RebalancingResult]) -> None:
    result = make_result(evil=True)
    generator = HTMLReportGenerator()
    generator.add_section("<script>alert('title')</script>", "<b>plain text</b>")
    document = generator.generate_html(result, title="<i>Q2</i>")
    lowered = document.lower()
    assert lowered.count("<script") == 1  # the report's own sorter only
    assert "<script>alert" not in lowered
    assert "<img src=x" not in lowered
    assert "<b>" not in document
    assert "<i>q2" not in lowered
    page = parse_html(document)
    # Escaped, not dropped: the reader still sees the exact strings.
    for raw in (EVIL_SYMBOL, EVIL_SECTOR, EVIL_PORTFOLIO, "<b>plain text</b>", "<i>Q2</i>"):
        assert raw in page.text
    assert "<script>alert('title')</script>" in page.headings
    assert html.escape(EVIL_SYMBOL) in document


def test_breaches_are_highlighted(make_result: Callable[..., RebalancingResult]) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(make_result(breach=True)))
    assert page.row_classes.count("breach") == 2  # the compliance row and the sector row
    assert "BREACH" in page.text
    assert "OVER CAP" in page.text
    assert "3 of 4 limits hold." in page.text
    assert "Some constraints are breached" in page.text


def test_compliant_result_has_no_breach_rows(result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(result))
    assert "breach" not in page.row_classes
    assert "4 of 4 limits hold." in page.text
    for words in (
        "budget = 0",
        "long_only[AAA] \u2265 0",  # a kind of check the words do not know is shown as it is
        "Technology sector \u2264 60 % of value",
        "Health Care sector \u2264 50 % of value",
    ):
        assert words in page.text


def test_sector_table_uses_caps_from_compliance(result: RebalancingResult) -> None:
    text = parse_html(HTMLReportGenerator().generate_html(result)).text
    assert "Technology70.00%" in text  # 60k of AAA + 10k of CCC out of 100k before
    assert "50.00%" in text


def test_result_without_trades_or_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(make_result(trades=False, sectors=False)))
    assert page.section_ids == BUILT_IN
    assert "No trades" in page.text
    assert "No sector data." in page.text
    assert len(page.images) == 1


def test_custom_sections_text_callable_and_raw(result: RebalancingResult) -> None:
    generator = HTMLReportGenerator()
    generator.add_section("Notes", "Approved.")
    generator.add_section("Count", lambda r: f"{len(r.trades)} trades <ok>")
    generator.add_section("Raw", '<p class="mine">trusted</p>', raw_html=True)
    assert generator.section_titles == ["Notes", "Count", "Raw"]
    document = generator.generate_html(result)
    page = parse_html(document)
    assert page.section_ids == [*BUILT_IN, "section-1", "section-2", "section-3"]
    assert "2 trades &lt;ok&gt;" in document
    assert '<p class="mine">trusted</p>' in document
    generator.clear_sections()
    assert generator.section_titles == []
    assert parse_html(generator.generate_html(result)).section_ids == BUILT_IN


def test_add_section_refuses_bad_arguments() -> None:
    generator = HTMLReportGenerator()
    with pytest.raises(ConfigurationError, match="non-empty title"):
        generator.add_section("  ", "x")
    with pytest.raises(ConfigurationError, match="string or a callable"):
        generator.add_section("T", 42)  # type: ignore[arg-type]


def test_subclass_can_rebuild_sections(result: RebalancingResult) -> None:
    class TradesOnly(HTMLReportGenerator):
        def build_sections(self, result: RebalancingResult) -> list[ReportSection]:
            return [self.trades_section(result), ReportSection("Sign-off", "<p>ok</p>", "sign")]

    page = parse_html(TradesOnly().generate_html(result))
    assert page.section_ids == ["trades", "sign"]


def test_title_and_language(result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator(title="Default").generate_html(result, language="fr-CH"))
    assert page.title == "Default"
    assert page.lang == "fr-CH"
    page = parse_html(HTMLReportGenerator().generate_html(result, title="Q2 review"))
    assert page.title == "Q2 review"
    with pytest.raises(ConfigurationError, match="language"):
        HTMLReportGenerator().generate_html(result, language='en"><script>')


def test_write_creates_the_file(result: RebalancingResult, tmp_path: Path) -> None:
    path = HTMLReportGenerator().write(result, tmp_path / "report.html")
    assert path == tmp_path / "report.html"
    assert parse_html(path.read_text(encoding="utf-8")).section_ids == BUILT_IN


@pytest.mark.parametrize("where", ["missing/report.html", "."])
def test_unwritable_path_names_the_path(result: RebalancingResult, tmp_path: Path, where: str) -> None:
    target = tmp_path / where
    with pytest.raises(FinwizError, match="cannot write report to") as caught:
        HTMLReportGenerator().write(result, target)
    assert isinstance(caught.value, ConfigurationError)
    assert str(target) in str(caught.value)


def test_repr_rebuilds_the_generator() -> None:
    generator = HTMLReportGenerator(title="T", include_charts=False)
    assert repr(generator) == ("HTMLReportGenerator(title='T', include_charts=False, max_chart_assets=25, dpi=96)")


def test_notebook_summary(make_result: Callable[..., RebalancingResult]) -> None:
    result = make_result(evil=True, breach=True)
    snippet = result._repr_html_()
    assert snippet == result_summary_html(result)
    assert "<script" not in snippet.lower()
    assert "<img" not in snippet.lower()
    page = parse_html(snippet)
    assert EVIL_PORTFOLIO in page.text
    assert "Breached:" in page.text
    assert "AAA" in page.text


def test_notebook_summary_truncates_long_trade_lists(result: RebalancingResult) -> None:
    snippet = result_summary_html(result, max_trades=1)
    assert "1 smaller trades not shown" in snippet
