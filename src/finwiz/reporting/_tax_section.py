"""The figures of a tax-aware rebalance for the report's "Taxes" section and the summaries.

Reads ``result.tax`` (:class:`~finwiz.schemas.TaxSummary`) and the lots each sell relieves
(``TradeRecommendation.lots``); every function returns nothing (``[]`` or ``None``) for a result
without tax, so the views show tax only when there is some.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from finwiz.reporting._format import money, percent
from finwiz.schemas import RebalancingResult, TaxSummary

__all__ = ["LotRow", "TaxFigures", "lot_rows", "tax_figures", "tax_summary_rows"]

_TERMS = {"short": "Short-term", "long": "Long-term"}


@dataclass(frozen=True)
class LotRow:
    """One lot sold: the sell's symbol and the lot's figures (``cost_basis`` per share)."""

    symbol: str
    lot_id: str
    acquired: date
    shares: float
    cost_basis: float
    realized_gain: float
    term: str  # "Short-term" or "Long-term"


@dataclass(frozen=True)
class TaxFigures:
    """The gains table of the section (rows: gains, losses, net; columns: short, long, total)
    and the headline figures as (label, formatted value) pairs."""

    by_term: list[tuple[str, float, float, float]]
    headline: list[tuple[str, str]]


def _budget_text(tax: TaxSummary, currency: str) -> str | None:
    if tax.budget is None:
        return None
    # A net loss uses none of the budget (budget_used is then negative).
    used = f" ({percent(max(tax.budget_used, 0.0))} used)" if tax.budget_used is not None else ""
    return f"{money(tax.net_realized_gain, currency)} of {money(tax.budget, currency)}{used}"


def tax_summary_rows(result: RebalancingResult) -> list[tuple[str, str]]:
    """(label, value) rows for the executive summary and the terminal: realised gains, harvested
    losses, the gain budget and the estimated tax; ``[]`` without tax."""
    tax = result.tax
    if tax is None:
        return []
    short = tax.short_term_gains - tax.short_term_losses
    long = tax.long_term_gains - tax.long_term_losses
    currency = result.currency
    rows = [
        (
            "Realised gains",
            f"{money(tax.net_realized_gain, currency)} net "
            f"(short {money(short, currency)}, long {money(long, currency)})",
        ),
        ("Harvested losses", money(tax.harvested_losses, result.currency)),
    ]
    budget = _budget_text(tax, result.currency)
    if budget is not None:
        rows.append(("Gain budget", budget))
    paid = "paid from cash" if tax.paid_from_cash else "not paid from cash"
    rows.append(("Estimated tax", f"{money(tax.estimated_tax, result.currency)} ({paid})"))
    return rows


def tax_figures(result: RebalancingResult) -> TaxFigures | None:
    """The section's figures, or None without tax."""
    tax = result.tax
    if tax is None:
        return None
    gains = (tax.short_term_gains, tax.long_term_gains)
    losses = (tax.short_term_losses, tax.long_term_losses)
    net = (gains[0] - losses[0], gains[1] - losses[1])
    by_term = [
        ("Realised gains", gains[0], gains[1], gains[0] + gains[1]),
        ("Realised losses", losses[0], losses[1], losses[0] + losses[1]),
        ("Net realised gain", net[0], net[1], tax.net_realized_gain),
    ]
    headline = [
        ("Net realised gain", money(tax.net_realized_gain, result.currency)),
        ("Estimated tax", money(tax.estimated_tax, result.currency)),
        ("Harvested losses", money(tax.harvested_losses, result.currency)),
        ("Gain budget", _budget_text(tax, result.currency) or "none"),
        ("Tax weight", f"{tax.tax_weight:g}"),
        ("Lot selection", tax.lot_policy),
    ]
    return TaxFigures(by_term=by_term, headline=headline)


def lot_rows(result: RebalancingResult) -> list[LotRow]:
    """Every lot the sells relieve, by symbol then acquisition date (oldest first)."""
    rows = [
        LotRow(
            symbol=trade.symbol,
            lot_id=sale.lot_id,
            acquired=sale.acquired,
            shares=sale.shares,
            cost_basis=sale.cost_basis,
            realized_gain=sale.realized_gain,
            term=_TERMS.get(sale.term, sale.term),
        )
        for trade in result.trades
        for sale in trade.lots
    ]
    return sorted(rows, key=lambda r: (r.symbol, r.acquired, r.lot_id))
