"""Number formatting and table rows shared by the HTML report and the terminal tables."""

from __future__ import annotations

import math

from finwiz.schemas import RebalancingResult, TradeAction

__all__ = ["blotter_rows", "in_unit", "money", "percent", "shares"]


def money(value: float, currency: str | None = None) -> str:
    """``1,234,567.89``, or ``USD 1,234,567.89`` with a ``currency`` (the result's ISO code).
    Tables print the code once in the column header and plain amounts in the cells."""
    return f"{currency} {value:,.2f}" if currency else f"{value:,.2f}"


def percent(value: float, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.34%``; NaN -> an en dash. A value that is not
    zero but would print as zero keeps two significant digits (``3.14e-5`` -> ``0.0031%``): a
    position left after a sale is never shown as ``0.00%``."""
    if math.isnan(value):
        return "\u2013"
    if value != 0 and round(abs(value) * 100, digits) == 0:
        return f"{value * 100:.2g}%" if abs(value) * 100 >= 1e-4 else f"{value * 100:.2e}%"
    return f"{value * 100:.{digits}f}%"


def shares(value: float) -> str:
    """Whole shares without decimals, fractional shares with up to four."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")  # 590.0000000001 (float noise) is "590"


_PERCENT_UNITS = frozenset({"weight", "turnover"})


def in_unit(value: float, unit: str, *, slack: bool = False, currency: str | None = None) -> str:
    """``value`` written for its unit: weights and turnover as percentages, currency as money,
    shares as shares, anything else (scores, "" for unknown) as a short general number.

    ``slack=True`` keeps three significant digits for units without a fixed format, enough to
    tell a hair's-breadth breach from a clear one.
    """
    if math.isnan(value):
        return "\u2013"
    if unit in _PERCENT_UNITS:
        return percent(value, 3)
    if unit == "currency":
        return money(value, currency)
    if unit == "shares":
        return shares(value)
    return f"{value:.3g}" if slack else f"{value:.6g}"


def blotter_rows(result: RebalancingResult) -> list[tuple[str, ...]]:
    """Trade blotter rows (symbol, side, shares, price, value, cost, why) and a closing "Net" row.

    Shares and value are signed like ``to_frame()``'s (negative for a sell), so the total is the
    net cash the trades use. Sells come first (they fund the buys), then buys, each by
    descending value. ``why`` is the trade's two strongest reasons (``TradeRecommendation.reasons``).
    """
    ordered = sorted(result.trades, key=lambda t: (t.action is not TradeAction.SELL, -t.trade_value, t.symbol))
    rows: list[tuple[str, ...]] = [
        (
            t.symbol,
            t.action.value.upper(),
            shares(t.signed_shares),
            money(t.price),
            money(t.signed_trade_value),
            money(t.total_estimated_cost),
            t.why_text(2),
        )
        for t in ordered
    ]
    total = money(sum(t.signed_trade_value for t in result.trades))
    rows.append(("Net", f"{len(result.trades)} trades", "", "", total, money(result.total_cost), ""))
    return rows
