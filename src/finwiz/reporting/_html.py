"""A self-contained HTML report of a rebalance: one file, charts inlined, viewable offline.

Every string that comes from users or data (symbols, sector names, titles, the portfolio id,
warnings, constraint names) goes through :func:`html.escape` before it reaches the page: cells
are escaped by the one table helper, titles by the section renderer. Only the HTML built here,
and custom sections added with ``raw_html=True``, is emitted as is.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from finwiz.errors import ConfigurationError
from finwiz.reporting._charts import (
    DEFAULT_MAX_CHART_ASSETS,
    figure_to_data_uri,
    sector_figure,
    weights_figure,
)
from finwiz.reporting._exposure import sector_exposure, weights_frame
from finwiz.reporting._format import blotter_rows, money, percent, shares
from finwiz.reporting._risk_section import risk_section_html, risk_summary_html
from finwiz.reporting._text import summary_rows
from finwiz.schemas import RebalancingResult

__all__ = ["HTMLReportGenerator", "ReportSection", "SectionContent", "result_summary_html"]

SectionContent: TypeAlias = str | Callable[[RebalancingResult], str]
"""A custom section's body: a string, or a callable that builds one from the result."""

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_BREACH_EPSILON = 1e-9  # float noise tolerated before a sector counts as over its cap

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2733;
background:#f5f7fa;line-height:1.4}
header{background:#1f3b57;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:1.6em}header p{margin:4px 0 0;opacity:.85}
nav{padding:8px 32px;background:#e4e9f0;font-size:.9em}nav a{margin-right:14px;color:#1f3b57}
main{padding:8px 32px 32px;max-width:1400px}
section{background:#fff;border:1px solid #d8dee6;border-radius:6px;padding:12px 20px;margin:16px 0}
h2{margin:4px 0 10px;font-size:1.25em;color:#1f3b57}
table{border-collapse:collapse;font-size:.9em;margin:6px 0}
th,td{border-bottom:1px solid #e1e6ec;padding:4px 10px;text-align:left}
th{background:#eef2f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.breach td{background:#fde2e1;color:#8f1d14;font-weight:600}
tr.total td{font-weight:600;border-top:2px solid #1f3b57}
.kpis{display:flex;flex-wrap:wrap;gap:10px}
.kpi{border:1px solid #d8dee6;border-radius:6px;padding:8px 14px;min-width:150px}
.kpi .label{font-size:.8em;color:#5b6b7c}.kpi .value{font-size:1.15em;font-weight:600}
.status-ok{color:#1b7f3b}.status-bad{color:#b3261e}
img.chart{max-width:100%;height:auto;display:block;margin:8px 0}
.text{white-space:pre-wrap}.muted{color:#5b6b7c;font-size:.9em}
ul.warnings li{color:#8a5300}
"""


@dataclass(frozen=True)
class ReportSection:
    """One section of the report: a plain-text ``title``, a trusted ``body_html``, an ``anchor``."""

    title: str
    body_html: str
    anchor: str


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; every header and cell is escaped here, so callers pass plain text."""
    num = set(numeric)

    def cell(tag: str, index: int, value: object) -> str:
        attr = ' class="num"' if index in num else ""
        return f"<{tag}{attr}>{_esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        css = row_classes[r] if row_classes else ""
        attr = f' class="{_esc(css)}"' if css else ""
        body.append(f"<tr{attr}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(data_uri: str, alt: str) -> str:
    return f'<img class="chart" src="{data_uri}" alt="{_esc(alt)}">'


class HTMLReportGenerator:
    """Builds a single self-contained HTML report of a :class:`~finwiz.RebalancingResult`.

    The report holds an executive summary, current vs target vs post-trade weights (chart and
    table), sector exposure against caps, the trade blotter, costs and turnover, the compliance
    table (breaches highlighted) and warnings, followed by any custom sections. Charts are PNGs
    embedded as ``data:`` URIs and the stylesheet is inline, so the file works offline.

    Customise it by adding sections::

        generator = HTMLReportGenerator()
        generator.add_section("Notes", "Approved by the investment committee.")
        generator.add_section("Trade count", lambda result: str(len(result.trades)))

    or by subclassing and overriding :meth:`build_sections` (call ``super()`` to keep the
    built-in sections) or any ``*_section`` method.

    Parameters
    ----------
    title
        Default page title; :meth:`generate_html` can override it per report.
    include_charts
        Draw and embed the matplotlib charts (turn off for the fastest, text-only report).
    max_chart_assets
        The weights chart keeps at most this many assets (the largest); tables list every asset.
    dpi
        Resolution of the embedded charts.
    """

    def __init__(
        self,
        *,
        title: str = "Portfolio rebalancing report",
        include_charts: bool = True,
        max_chart_assets: int = DEFAULT_MAX_CHART_ASSETS,
        dpi: int = 96,
    ) -> None:
        self.title = title
        self.include_charts = include_charts
        self.max_chart_assets = max_chart_assets
        self.dpi = dpi
        self._custom: list[tuple[str, SectionContent, bool]] = []

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(title={self.title!r}, include_charts={self.include_charts!r}, "
            f"max_chart_assets={self.max_chart_assets!r}, dpi={self.dpi!r})"
        )

    # -- custom sections ------------------------------------------------------------------

    def add_section(self, title: str, content: SectionContent, *, raw_html: bool = False) -> None:
        """Append a custom section after the built-in ones.

        ``content`` is a string or a callable taking the result and returning one. It is shown
        as escaped plain text unless ``raw_html=True``, in which case it is trusted HTML and
        inserted as is (escape any data you put in it with :func:`html.escape`). The title is
        always escaped.
        """
        if not isinstance(title, str) or not title.strip():
            raise ConfigurationError("add_section: a section needs a non-empty title")
        if not (isinstance(content, str) or callable(content)):
            raise ConfigurationError(
                f"add_section: content of section {title!r} must be a string or a callable, "
                f"not {type(content).__name__}"
            )
        self._custom.append((title, content, raw_html))

    def clear_sections(self) -> None:
        """Remove every custom section (the built-in sections stay)."""
        self._custom.clear()

    @property
    def section_titles(self) -> list[str]:
        """Titles of the custom sections, in order."""
        return [title for title, _, _ in self._custom]

    # -- built-in sections ----------------------------------------------------------------

    def build_sections(self, result: RebalancingResult) -> list[ReportSection]:
        """Every section of the report, in order: the built-in ones, then the custom ones.

        Override to reorder, drop or add sections; each built-in comes from its own
        ``*_section`` method.
        """
        return [
            self.summary_section(result),
            self.weights_section(result),
            self.sectors_section(result),
            *([self.risk_section(result)] if result.risk_after is not None else []),
            self.trades_section(result),
            self.costs_section(result),
            self.compliance_section(result),
            self.warnings_section(result),
            *self.custom_sections(result),
        ]

    def summary_section(self, result: RebalancingResult) -> ReportSection:
        """Executive summary: values, cash, costs, turnover, trade count, solver and status."""
        kpis = "".join(
            f'<div class="kpi"><div class="label">{_esc(label)}</div><div class="value">{_esc(value)}</div></div>'
            for label, value in summary_rows(result)
        )
        verdict = (
            '<p class="status-ok">Every checked constraint holds on the final trades.</p>'
            if result.is_compliant
            else '<p class="status-bad">Some constraints are breached: see Compliance.</p>'
        )
        return ReportSection("Executive summary", f'<div class="kpis">{kpis}</div>{verdict}', "summary")

    def weights_section(self, result: RebalancingResult) -> ReportSection:
        """Current vs target vs post-trade weights: a bar chart and a (collapsible) table."""
        frame = weights_frame(result)
        parts = []
        if self.include_charts:
            figure = weights_figure(result, max_assets=self.max_chart_assets)
            parts.append(
                _image(
                    figure_to_data_uri(figure, dpi=self.dpi),
                    "Bar chart of current, target and post-trade weights",
                )
            )
        values = frame.to_numpy(dtype=float)
        rows = [
            (symbol, percent(current), percent(target), percent(after), percent(after - target))
            for symbol, (current, target, after) in zip(frame.index, values, strict=True)
        ]
        table = _table(
            ("Symbol", "Current", "Target", "Post-trade", "Post-trade - target"),
            rows,
            numeric=(1, 2, 3, 4),
        )
        parts.append(f"<details><summary>Weights of all {len(frame) - 1} assets and cash</summary>{table}</details>")
        parts.append(
            '<p class="muted">Current weights are fractions of the value before trading, '
            "post-trade weights fractions of the value after costs and cash flow.</p>"
        )
        return ReportSection("Current vs target vs post-trade weights", "".join(parts), "weights")

    def sectors_section(self, result: RebalancingResult) -> ReportSection:
        """Sector exposure before and after the trades against each sector's cap."""
        exposure = sector_exposure(result)
        if exposure.empty:
            return ReportSection("Sector exposure", '<p class="muted">No sector data.</p>', "sectors")
        parts = []
        if self.include_charts:
            parts.append(
                _image(
                    figure_to_data_uri(sector_figure(result), dpi=self.dpi),
                    "Bar chart of sector weights before and after against caps",
                )
            )
        values = exposure[["before", "after", "cap"]].to_numpy(dtype=float)
        over = values[:, 1] > values[:, 2] + _BREACH_EPSILON  # NaN cap (uncapped) is never over
        rows = [
            (
                sector,
                percent(before),
                percent(after),
                percent(cap),
                percent(cap - after),
                "OVER CAP" if breach else ("no cap" if math.isnan(cap) else "ok"),
            )
            for sector, (before, after, cap), breach in zip(exposure.index, values, over, strict=True)
        ]
        parts.append(
            _table(
                ("Sector", "Before", "After", "Cap", "Headroom", "Status"),
                rows,
                numeric=(1, 2, 3, 4),
                row_classes=["breach" if b else "" for b in over],
            )
        )
        return ReportSection("Sector exposure", "".join(parts), "sectors")

    def risk_section(self, result: RebalancingResult) -> ReportSection:
        """Risk before / after / change, top contributors and sector risk (when risk is attached)."""
        body = risk_section_html(result, include_charts=self.include_charts, dpi=self.dpi)
        return ReportSection("Risk", body, "risk")

    def trades_section(self, result: RebalancingResult) -> ReportSection:
        """The trade blotter: symbol, side, shares, price, value and cost of every trade."""
        if not result.trades:
            return ReportSection("Trades", "<p>No trades: the portfolio is already within its bands.</p>", "trades")
        rows = blotter_rows(result)
        classes = [""] * (len(rows) - 1) + ["total"]
        body = _table(
            ("Symbol", "Side", "Shares", "Price", "Value", "Cost"),
            rows,
            numeric=(2, 3, 4, 5),
            row_classes=classes,
        )
        return ReportSection("Trades", body, "trades")

    def costs_section(self, result: RebalancingResult) -> ReportSection:
        """Costs (transaction and market impact) and turnover."""
        bought = sum(t.trade_value for t in result.buys)
        sold = sum(t.trade_value for t in result.sells)
        value = result.portfolio_value_before
        cost_bps = result.total_cost / value * 1e4 if value else 0.0
        rows = [
            ("Transaction costs", money(result.transaction_costs)),
            ("Market impact costs", money(result.market_impact_costs)),
            ("Total cost", money(result.total_cost)),
            ("Total cost (bp of value before)", f"{cost_bps:.2f}"),
            ("Bought", money(bought)),
            ("Sold", money(sold)),
            ("Net cash used by trades", money(bought - sold)),
            ("Turnover (traded value / value before)", percent(result.turnover)),
        ]
        return ReportSection("Costs and turnover", _table(("Item", "Amount"), rows, numeric=(1,)), "costs")

    def compliance_section(self, result: RebalancingResult) -> ReportSection:
        """Every checked hard constraint with its limit, value and slack; breaches highlighted."""
        checks = result.compliance
        if not checks:
            return ReportSection("Compliance", '<p class="muted">No constraints were checked.</p>', "compliance")
        held = sum(c.satisfied for c in checks)
        rows = [
            (
                c.constraint,
                c.term,
                c.kind,
                f"{c.limit:.6g}",
                f"{c.value:.6g}",
                f"{c.slack:.3g}",
                "ok" if c.satisfied else "BREACH",
            )
            for c in checks
        ]
        classes = ["" if c.satisfied else "breach" for c in checks]
        verdict_css = "status-ok" if held == len(checks) else "status-bad"
        body = f'<p class="{verdict_css}">{held} of {len(checks)} constraints hold.</p>' + _table(
            ("Constraint", "Term", "Kind", "Limit", "Value", "Slack", "Status"),
            rows,
            numeric=(3, 4, 5),
            row_classes=classes,
        )
        return ReportSection("Compliance", body, "compliance")

    def warnings_section(self, result: RebalancingResult) -> ReportSection:
        """The warnings the engine attached to the result."""
        if not result.warnings:
            return ReportSection("Warnings", '<p class="muted">No warnings.</p>', "warnings")
        items = "".join(f"<li>{_esc(w)}</li>" for w in result.warnings)
        return ReportSection("Warnings", f'<ul class="warnings">{items}</ul>', "warnings")

    def custom_sections(self, result: RebalancingResult) -> list[ReportSection]:
        """The sections added with :meth:`add_section`, rendered for ``result``."""
        out = []
        for number, (title, content, raw_html) in enumerate(self._custom, start=1):
            text = content(result) if callable(content) else content
            body = str(text) if raw_html else f'<div class="text">{_esc(text)}</div>'
            out.append(ReportSection(title, body, f"section-{number}"))
        return out

    # -- the page -------------------------------------------------------------------------

    def generate_html(self, result: RebalancingResult, title: str | None = None, language: str = "en") -> str:
        """The whole report as one HTML document (UTF-8 text, no external resources).

        ``language`` is the page's BCP 47 language tag (``"en"``, ``"fr-CH"``...).
        """
        if not _LANGUAGE_TAG.match(language):
            raise ConfigurationError(f"language {language!r} is not a language tag such as 'en'")
        page_title = self.title if title is None else title
        sections = self.build_sections(result)
        nav = "".join(f'<a href="#{_esc(s.anchor)}">{_esc(s.title)}</a>' for s in sections)
        body = "".join(
            f'<section id="{_esc(s.anchor)}"><h2>{_esc(s.title)}</h2>{s.body_html}</section>' for s in sections
        )
        subtitle = " \u00b7 ".join(
            part
            for part in (
                f"Portfolio {result.portfolio_id}" if result.portfolio_id else "",
                f"{len(result.current_holdings)} assets",
                f"method {result.method}",
                result.timestamp.strftime("%Y-%m-%d %H:%M UTC"),
            )
            if part
        )
        return (
            f'<!DOCTYPE html>\n<html lang="{_esc(language)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="finwiz">\n'
            f"<title>{_esc(page_title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<header><h1>{_esc(page_title)}</h1><p>{_esc(subtitle)}</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
        )

    def write(
        self,
        result: RebalancingResult,
        path: str | Path,
        *,
        title: str | None = None,
        language: str = "en",
    ) -> Path:
        """Write the report to ``path`` (UTF-8) and return the path.

        Raises :class:`~finwiz.errors.ConfigurationError` naming the path when it cannot be
        written (missing directory, no permission, a directory in the way).
        """
        target = Path(path)
        document = self.generate_html(result, title=title, language=language)
        try:
            target.write_text(document, encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigurationError(f"cannot write report to {str(target)!r}: {reason}") from exc
        return target


def result_summary_html(result: RebalancingResult, *, max_trades: int = 15) -> str:
    """Compact HTML for notebooks: the key figures and the largest trades (no charts).

    Used by ``RebalancingResult._repr_html_``; styles are inline so the notebook's own
    stylesheet is left alone.
    """
    cell = 'style="padding:2px 8px;text-align:left"'
    num = 'style="padding:2px 8px;text-align:right"'
    summary = "".join(f"<tr><th {cell}>{_esc(k)}</th><td {cell}>{_esc(v)}</td></tr>" for k, v in summary_rows(result))
    largest = sorted(result.trades, key=lambda t: -t.trade_value)[:max_trades]
    trade_rows = "".join(
        f"<tr><td {cell}>{_esc(t.symbol)}</td><td {cell}>{_esc(t.action.value.upper())}</td>"
        f"<td {num}>{_esc(shares(t.shares))}</td><td {num}>{_esc(money(t.price))}</td>"
        f"<td {num}>{_esc(money(t.trade_value))}</td></tr>"
        for t in largest
    )
    more = len(result.trades) - len(largest)
    more_note = f"<p><i>{more} smaller trades not shown; see to_frame().</i></p>" if more > 0 else ""
    trades = (
        f"<table><thead><tr><th {cell}>Symbol</th><th {cell}>Side</th><th {num}>Shares</th>"
        f"<th {num}>Price</th><th {num}>Value</th></tr></thead><tbody>{trade_rows}</tbody></table>"
        if largest
        else "<p>No trades.</p>"
    )
    breaches = [c.constraint for c in result.compliance if not c.satisfied]
    alert = f'<p style="color:#b3261e"><b>Breached:</b> {_esc(", ".join(breaches))}</p>' if breaches else ""
    warnings = "".join(f'<p style="color:#8a5300">Warning: {_esc(w)}</p>' for w in result.warnings)
    return (
        f'<div class="finwiz-result"><b>RebalancingResult</b> \u2013 {len(result.trades)} trades, '
        f"cost {_esc(money(result.total_cost))}, turnover {_esc(percent(result.turnover))}"
        f"<table>{summary}</table>{alert}{warnings}{risk_summary_html(result)}{trades}{more_note}</div>"
    )
