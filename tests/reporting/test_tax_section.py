"""The report's "Taxes" section and the tax lines of the summaries: shown, with the right figures,
only for a tax-aware result."""

from __future__ import annotations

from datetime import date

import pytest

from finwiz.reporting import HTMLReportGenerator, result_summary_html, summary_text
from finwiz.schemas import LotSale, RebalancingResult, TaxSummary, TradeAction

from .conftest import EVIL_SYMBOL, ParsedPage, build_result, parse_html

SHORT_RATE, LONG_RATE, BUDGET = 0.35, 0.15, 5000.0
AS_OF = date(2024, 6, 28)

# The sell of build_result() is 150 AAA at 100: three lots, one long-term gain, two short-term
# (a gain and a harvested loss).
LOTS = [
    (90.0, 60.0, date(2019, 1, 2), "AAA#1"),  # (shares, cost basis per share, acquired, lot id)
    (40.0, 130.0, date(2024, 3, 1), "AAA#3"),
    (20.0, 95.5, date(2024, 1, 15), "AAA#2"),
]
BLOCKS = {"BBB": "sold at a loss on 2024-06-10: not bought", EVIL_SYMBOL: "bought on 2024-06-20: not sold at a loss"}


def lot_sales(price: float) -> list[LotSale]:
    sales = []
    for shares, basis, acquired, lot_id in LOTS:
        term = "long" if (AS_OF - acquired).days > 365 else "short"
        gain = round(shares * (price - basis), 2)
        sales.append(
            LotSale(lot_id=lot_id, shares=shares, cost_basis=basis, acquired=acquired, realized_gain=gain, term=term)
        )
    return sales


def summary_of(sales: list[LotSale], blocks: dict[str, str]) -> TaxSummary:
    """The summary the optimizer would give, computed here from the lots sold."""

    def total(term: str, sign: int) -> float:
        return sum(max(0.0, sign * s.realized_gain) for s in sales if s.term == term)

    st_gain, st_loss, lt_gain, lt_loss = total("short", 1), total("short", -1), total("long", 1), total("long", -1)
    net = st_gain - st_loss + lt_gain - lt_loss
    return TaxSummary(
        short_term_gains=st_gain,
        short_term_losses=st_loss,
        long_term_gains=lt_gain,
        long_term_losses=lt_loss,
        net_realized_gain=net,
        estimated_tax=SHORT_RATE * (st_gain - st_loss) + LONG_RATE * (lt_gain - lt_loss),
        harvested_losses=st_loss + lt_loss,
        budget=BUDGET,
        budget_used=net / BUDGET,
        tax_weight=0.5,
        wash_sale_blocks=blocks,
    )


def tax_result(*, blocks: dict[str, str] | None = None, evil: bool = False) -> RebalancingResult:
    base = build_result(evil=evil)
    sell = next(t for t in base.trades if t.action is TradeAction.SELL)
    sales = lot_sales(sell.price)
    assert sum(s.shares for s in sales) == sell.shares  # the lots add up to the sell
    trades = [t.model_copy(update={"lots": sales}) if t is sell else t for t in base.trades]
    summary = summary_of(sales, BLOCKS if blocks is None else blocks)
    return base.model_copy(update={"trades": trades, "tax": summary})


def page_of(result: RebalancingResult) -> ParsedPage:
    return parse_html(HTMLReportGenerator(include_charts=False).generate_html(result))


def test_figures_of_the_example_by_hand() -> None:
    # Independent of the code under test: 90 x (100 - 60) long; 40 x (100 - 130) and 20 x (100 - 95.5) short.
    tax = tax_result().tax
    assert tax is not None
    assert (tax.long_term_gains, tax.short_term_gains, tax.short_term_losses) == (3600.0, 90.0, 1200.0)
    assert tax.net_realized_gain == pytest.approx(2490.0)
    assert tax.estimated_tax == pytest.approx(0.15 * 3600 + 0.35 * (90 - 1200))


def test_the_section_sits_after_costs_only_with_tax() -> None:
    page = page_of(tax_result())
    assert page.section_ids == ["summary", "weights", "sectors", "trades", "costs", "taxes", "compliance", "warnings"]
    assert "Taxes" in page.headings
    without = page_of(build_result())
    assert "taxes" not in without.section_ids
    assert "Taxes" not in without.headings
    assert "tax-lots-table" not in without.tables
    assert "Estimated tax" not in without.text


def test_gains_by_term_net_budget_tax_and_harvested_losses() -> None:
    result = tax_result()
    page = page_of(result)
    assert page.tables["tax-gains-table"] == [
        ["Realised", "Short-term (USD)", "Long-term (USD)", "Total (USD)"],
        ["Realised gains", "90.00", "3,600.00", "3,690.00"],
        ["Realised losses", "1,200.00", "0.00", "1,200.00"],
        ["Net realised gain", "-1,110.00", "3,600.00", "2,490.00"],
    ]
    text = page.text
    assert "Estimated taxUSD 151.50" in text  # 0.15 x 3600 - 0.35 x 1110 (kpi label, then value)
    assert "Harvested lossesUSD 1,200.00" in text
    assert "Gain budgetUSD 2,490.00 of USD 5,000.00 (49.80% used)" in text
    assert "Tax weight0.5" in text


def test_lots_sold_table() -> None:
    page = page_of(tax_result())
    rows = page.tables["tax-lots-table"]
    assert rows[0] == ["Symbol", "Lot", "Acquired", "Shares", "Cost basis / share (USD)", "Realised gain (USD)", "Term"]
    assert rows[1:-1] == [  # by acquisition date
        ["AAA", "AAA#1", "2019-01-02", "90", "60.00", "3,600.00", "Long-term"],
        ["AAA", "AAA#2", "2024-01-15", "20", "95.50", "90.00", "Short-term"],
        ["AAA", "AAA#3", "2024-03-01", "40", "130.00", "-1,200.00", "Short-term"],
    ]
    assert rows[-1] == ["Total", "3 lots", "", "150", "", "2,490.00", ""]
    loss_cells = [attrs for tag, attrs in page.tags if tag == "td" and "loss" in (attrs.get("class") or "")]
    assert [c.get("data-value") for c in loss_cells] == ["-1200.0"]


def test_wash_sale_blocks_are_listed_and_escaped() -> None:
    document = HTMLReportGenerator(include_charts=False).generate_html(tax_result(evil=True))
    assert EVIL_SYMBOL not in document  # escaped
    rows = parse_html(document).tables["tax-wash-sales-table"]
    assert rows[1:] == sorted([[s, why] for s, why in BLOCKS.items()])
    none = page_of(tax_result(blocks={}))
    assert "tax-wash-sales-table" not in none.tables
    assert "The wash-sale rule restricted no asset." in none.text


def test_a_tax_aware_result_without_sells_says_so() -> None:
    base = build_result(trades=False)
    page = page_of(base.model_copy(update={"tax": TaxSummary()}))
    assert "taxes" in page.section_ids
    assert "No lots sold." in page.text
    assert page.tables["tax-gains-table"][3] == ["Net realised gain", "0.00", "0.00", "0.00"]
    assert "Gain budgetnone" in page.text


def summary_lines(result: RebalancingResult) -> dict[str, str]:
    text = summary_text(result)
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line}


def test_summaries_show_tax_only_when_set() -> None:
    lines = summary_lines(tax_result())
    assert lines["Realised gains"] == "USD 2,490.00 net (short USD -1,110.00, long USD 3,600.00)"
    assert lines["Harvested losses"] == "USD 1,200.00"
    assert lines["Gain budget"] == "USD 2,490.00 of USD 5,000.00 (49.80% used)"
    assert lines["Estimated tax"] == "USD 151.50 (not paid from cash)"
    plain = summary_text(build_result())
    assert "tax" not in plain.lower()
    assert "Realised" not in plain
    assert "Estimated tax" in result_summary_html(tax_result())
    assert "Estimated tax" not in result_summary_html(build_result())


def test_a_budget_of_zero_shows_no_share_used() -> None:
    result = tax_result()
    assert result.tax is not None
    zero = result.model_copy(update={"tax": result.tax.model_copy(update={"budget": 0.0, "budget_used": None})})
    assert summary_lines(zero)["Gain budget"] == "USD 2,490.00 of USD 0.00"


def test_a_net_loss_uses_none_of_the_budget() -> None:
    result = tax_result()
    assert result.tax is not None
    loss = result.tax.model_copy(update={"net_realized_gain": -300.0, "budget_used": -300.0 / BUDGET})
    assert (
        summary_lines(result.model_copy(update={"tax": loss}))["Gain budget"]
        == "USD -300.00 of USD 5,000.00 (0.00% used)"
    )


def test_tax_paid_from_cash_is_reported_as_paid() -> None:
    result = tax_result()
    assert result.tax is not None
    paid = result.model_copy(update={"tax": result.tax.model_copy(update={"paid_from_cash": True})})
    assert summary_lines(paid)["Estimated tax"] == "USD 151.50 (paid from cash)"
    text = page_of(paid).text
    assert "The estimated tax is paid from the account's cash" in text
    assert "not paid from the account's cash" not in text
    assert "not paid from the account's cash" in page_of(result).text
