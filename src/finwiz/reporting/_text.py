"""Plain-text views of a result for the terminal: an aligned trade table and a summary."""

from __future__ import annotations

from collections.abc import Sequence

from finwiz.reporting._format import blotter_rows, money, percent, shares
from finwiz.reporting._tax_section import lot_rows, tax_summary_rows
from finwiz.schemas import RebalancingResult

__all__ = ["lots_table", "summary_rows", "summary_text", "trades_table"]

_TRADE_HEADERS = ("Symbol", "Side", "Shares", "Price", "Value", "Cost", "Why")
_LOT_HEADERS = ("Symbol", "Lot", "Acquired", "Term", "Shares", "Basis/share", "Realised gain")


def _align(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int, text_last: bool = False) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned, and the last
    one too when it is text (``text_last``: the trades' reasons)."""
    widths = [
        max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i]) for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left or (text_last and i == len(widths) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def trades_table(result: RebalancingResult) -> str:
    """The trades as an aligned text table (symbol, side, shares, price, value, cost, why) with totals.

    Sells come first (they fund the buys), then buys, each by descending value.
    """
    if not result.trades:
        return "No trades: the portfolio is already within its bands."
    rows = blotter_rows(result)
    return _align(_headers(_TRADE_HEADERS, result.currency), rows, left=2, text_last=True)


_AMOUNTS = frozenset({"Price", "Value", "Cost", "Basis/share", "Realised gain"})


def _headers(headers: Sequence[str], currency: str) -> tuple[str, ...]:
    """Amount columns labelled with the currency: ``Price (USD)``."""
    return tuple(f"{h} ({currency})" if h in _AMOUNTS else h for h in headers)


def lots_table(result: RebalancingResult) -> str:
    """The lots a tax-aware rebalance sells as an aligned text table (symbol, lot, acquired, term,
    shares, cost basis per share, realised gain) with a total; "" when no lot is sold."""
    lots = lot_rows(result)
    if not lots:
        return ""
    rows = [
        (
            r.symbol,
            r.lot_id,
            r.acquired.isoformat(),
            r.term,
            shares(r.shares),
            money(r.cost_basis),
            money(r.realized_gain),
        )
        for r in lots
    ]
    total = sum(r.realized_gain for r in lots)
    rows.append(("Total", f"{len(lots)} lot{'' if len(lots) == 1 else 's'}", "", "", "", "", money(total)))
    return _align(_headers(_LOT_HEADERS, result.currency), rows, left=4)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def summary_rows(result: RebalancingResult) -> list[tuple[str, str]]:
    """The executive summary as (label, value) pairs, shared by the text and HTML views."""
    buys, sells = len(result.buys), len(result.sells)
    rows = [
        ("Portfolio", result.portfolio_id or "\u2013"),
        ("Status", result.status),
        ("Compliant", "yes" if result.is_compliant else "NO \u2013 see compliance"),
        ("Method", result.method),
        ("Solver", result.solver),
        ("Rounding", result.rounding),
        ("Value before", money(result.portfolio_value_before, result.currency)),
        ("Value after", money(result.portfolio_value_after, result.currency)),
        ("Cash before", money(result.cash_before, result.currency)),
        ("Cash after", f"{money(result.cash_after, result.currency)} ({percent(result.cash_weight_after)})"),
    ]
    if result.cash_flow:
        rows.append(("Cash flow", money(result.cash_flow, result.currency)))
    rows += [
        ("Total cost", money(result.total_cost, result.currency)),
        *tax_summary_rows(result),  # only for a tax-aware rebalance
        ("Turnover", percent(result.turnover)),
        ("Trades", f"{len(result.trades)} ({_count(buys, 'buy')}, {_count(sells, 'sell')})"),
        (
            "Tracking distance",
            f"{result.tracking_distance_before:.4f} \u2192 {result.tracking_distance_after:.4f}",
        ),
        ("Solve time", f"{result.solve_time_seconds:.3f} s"),
        ("Generated", result.timestamp.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
    ]
    return rows


def summary_text(result: RebalancingResult) -> str:
    """A few aligned ``label: value`` lines summarising the rebalance, then any warnings."""
    rows = summary_rows(result)
    width = max(len(label) for label, _ in rows)
    lines = [f"{label + ':':<{width + 1}} {value}" for label, value in rows]
    lines += [f"Warning: {w}" for w in result.warnings]
    return "\n".join(lines)
