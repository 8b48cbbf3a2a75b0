"""The risk section of the report and the notebook view: before / after / change.

Reads ``result.risk_before`` and ``result.risk_after`` (:class:`~finwiz.RiskMetrics`, attached by
``rebalance(..., analyze=True)`` with a risk model or returns). Every symbol and sector name is
escaped here; the fragments are trusted HTML for the page. matplotlib is imported only to draw.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from finwiz.reporting._charts import LABEL_FONT_SIZE, figure_to_data_uri
from finwiz.reporting._exposure import NO_SECTOR
from finwiz.reporting._format import percent
from finwiz.risk import RiskMetrics
from finwiz.schemas import RebalancingResult, is_unclassified

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["risk_rows", "risk_section_html", "risk_summary_html", "sector_risk_figure", "top_risk_contributors"]

DEFAULT_TOP_CONTRIBUTORS = 10


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _points(change: float) -> str:
    """A change of fractions in percentage points: ``0.0123`` -> ``+1.23 pp``."""
    return f"{change * 100:+.2f} pp"


def _level(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def _pair(result: RebalancingResult) -> tuple[RiskMetrics, RiskMetrics] | None:
    before, after = result.risk_before, result.risk_after
    return None if before is None or after is None else (before, after)


def risk_rows(result: RebalancingResult) -> list[tuple[str, str, str, str]]:
    """(measure, before, after, change) for volatility, tracking error, VaR and CVaR; [] without risk."""
    pair = _pair(result)
    if pair is None:
        return []
    before, after = pair
    figures: list[tuple[str, float | None, float | None]] = [
        ("Volatility (annualised)", before.volatility, after.volatility),
        ("Tracking error to target (annualised)", before.tracking_error, after.tracking_error),
    ]
    method = after.var_method
    for label, b, a in (("VaR", before.var, after.var), ("CVaR", before.cvar, after.cvar)):
        for level in sorted(a):
            figures.append((f"{label} {_level(level)} (one period, {method})", b.get(level), a[level]))
    rows = []
    for label, b_value, a_value in figures:
        if b_value is None or a_value is None:
            continue
        rows.append((label, percent(b_value), percent(a_value), _points(a_value - b_value)))
    return rows


def top_risk_contributors(
    result: RebalancingResult, n: int = DEFAULT_TOP_CONTRIBUTORS
) -> list[tuple[str, float, float]]:
    """(symbol, before, after) of the ``n`` assets contributing most risk before or after."""
    pair = _pair(result)
    if pair is None:
        return []
    before, after = pair
    symbols = list(dict.fromkeys([*after.risk_contributions, *before.risk_contributions]))
    b = np.array([before.risk_contributions.get(s, 0.0) for s in symbols])
    a = np.array([after.risk_contributions.get(s, 0.0) for s in symbols])
    order = np.lexsort((np.arange(len(symbols)), -np.maximum(np.abs(a), np.abs(b))))[:n]
    return [(symbols[i], float(b[i]), float(a[i])) for i in order]


def _sector_frame(result: RebalancingResult) -> list[tuple[str, float, float]]:
    pair = _pair(result)
    if pair is None:
        return []
    before, after = pair
    names = sorted(set(before.sector_risk_contributions) | set(after.sector_risk_contributions))
    rows = [
        (
            NO_SECTOR if is_unclassified(name) else name,  # the sector table's label for them
            before.sector_risk_contributions.get(name, 0.0),
            after.sector_risk_contributions.get(name, 0.0),
        )
        for name in names
    ]
    return sorted(rows, key=lambda row: (-max(abs(row[1]), abs(row[2])), row[0]))


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], style: str = "") -> str:
    """A table of escaped text; every column but the first is numeric (right-aligned)."""
    left = f' style="{style}text-align:left"' if style else ""
    right = f' style="{style}text-align:right"' if style else ' class="num"'

    def cells(tag: str, values: tuple[str, ...]) -> str:
        return "".join(f"<{tag}{left if i == 0 else right}>{_esc(v)}</{tag}>" for i, v in enumerate(values))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', headers)}</tr></thead><tbody>{body}</tbody></table>"


def risk_section_html(
    result: RebalancingResult,
    *,
    include_charts: bool = True,
    dpi: int = 96,
    top: int = DEFAULT_TOP_CONTRIBUTORS,
) -> str:
    """The report's risk section body (escaped HTML): the before / after / change table, the top
    risk contributors and the sector risk bars; a note when no risk is attached."""
    pair = _pair(result)
    if pair is None:
        return '<p class="muted">No risk figures: pass factor_model=, covariance= or returns= with analyze=True.</p>'
    after = pair[1]
    headers = ("Measure", "Before", "After", "Change")
    parts = [_table(headers, risk_rows(result))]
    contributors = [
        (symbol, percent(b), percent(a), _points(a - b)) for symbol, b, a in top_risk_contributors(result, top)
    ]
    if contributors:
        parts.append(f"<h3>Top {len(contributors)} risk contributors (contribution to annualised volatility)</h3>")
        parts.append(_table(("Symbol", "Before", "After", "Change"), contributors))
    sectors = _sector_frame(result)
    if sectors:
        parts.append("<h3>Risk by sector (contribution to annualised volatility)</h3>")
        if include_charts:
            uri = figure_to_data_uri(sector_risk_figure(result), dpi=dpi)
            alt = "Bar chart of sector risk contributions before and after"
            parts.append(f'<img class="chart" src="{uri}" alt="{alt}">')
        sector_rows = [(s, percent(b), percent(a), _points(a - b)) for s, b, a in sectors]
        parts.append(_table(("Sector", "Before", "After", "Change"), sector_rows))
    source = {"factor_model": "a factor model", "covariance": "a covariance matrix", "returns": "a returns history"}
    observed = f" over {after.observations} periods" if after.observations else ""
    parts.append(
        f'<p class="muted">Risk from {_esc(source[after.risk_model])}{_esc(observed)}, annualised with '
        f"{after.periods_per_year:g} periods per year. Before: current weights; after: the post-trade "
        "whole-share weights. VaR and CVaR are one-period losses as fractions of value; risk "
        "contributions sum to the volatility.</p>"
    )
    return "".join(parts)


def risk_summary_html(result: RebalancingResult) -> str:
    """The notebook view's risk table (inline styles, no charts); '' without risk."""
    rows = risk_rows(result)
    if not rows:
        return ""
    style = "padding:2px 8px;"
    table = _table(("Risk", "Before", "After", "Change"), rows, style=style)
    top = top_risk_contributors(result, 5)
    names = ", ".join(f"{symbol} {percent(a)}" for symbol, _, a in top)
    note = f"<p><i>Top risk contributors after: {_esc(names)}</i></p>" if top else ""
    return table + note


def sector_risk_figure(result: RebalancingResult) -> Figure:
    """Horizontal bars of each sector's contribution to volatility before and after the trades."""
    from matplotlib.figure import Figure

    rows = _sector_frame(result)[::-1]  # largest at the top of a barh chart
    figure = Figure(figsize=(8.0, max(2.5, 0.45 * len(rows) + 1.5)), layout="constrained")
    axes = figure.add_subplot()
    if not rows:
        axes.text(0.5, 0.5, "No sector risk data", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    positions = np.arange(len(rows))
    height = 0.38
    before = np.array([r[1] for r in rows]) * 100.0
    after = np.array([r[2] for r in rows]) * 100.0
    axes.barh(positions + height / 2, before, height, label="Before", color="#9aa5b1")
    axes.barh(positions - height / 2, after, height, label="After", color="#e07b24")
    axes.set_yticks(positions, [str(r[0]).replace("$", r"\$") for r in rows], fontsize=LABEL_FONT_SIZE)
    axes.set_xlabel("Contribution to annualised volatility (percentage points)")
    axes.set_title("Risk by sector before and after")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    return figure
