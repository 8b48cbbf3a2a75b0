"""A self-contained HTML report of a rebalance: one file, charts inlined, viewable offline.

The page is rendered from the Jinja2 templates in ``templates/`` with autoescaping on: every
string from users or data (symbols, sectors, titles, the portfolio id, warnings, constraint
names) is escaped when it reaches the page. Only template text, the charts' ``data:`` URIs and
custom sections added with ``raw_html=True`` are emitted as they are. The only script is the
inline sorter/filter in ``templates/report.js``; without it every row is still on the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import jinja2
from markupsafe import Markup

from finwiz.errors import ConfigurationError
from finwiz.reporting._charts import (
    DEFAULT_MAX_CHART_ASSETS,
    figure_to_data_uri,
    sector_figure,
    weights_figure,
)
from finwiz.reporting._compliance import compliance_groups
from finwiz.reporting._exposure import NO_SECTOR, sector_exposure, weights_frame
from finwiz.reporting._format import money, percent
from finwiz.reporting._lookthrough import lookthrough_sections
from finwiz.reporting._risk_section import risk_section_html, risk_summary_html
from finwiz.reporting._tax_section import lot_rows, tax_figures
from finwiz.reporting._templates import TemplateFolders, environment, folders, render
from finwiz.reporting._text import summary_rows
from finwiz.schemas import CASH, RebalancingResult, TradeAction

__all__ = ["HTMLReportGenerator", "ReportSection", "SectionContent", "result_summary_html"]

SectionContent: TypeAlias = str | Callable[[RebalancingResult], str]
"""A custom section's body: a string, or a callable that builds one from the result."""

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_BREACH_EPSILON = 1e-9  # float noise tolerated before a sector counts as over its cap


@dataclass(frozen=True)
class ReportSection:
    """One section of the report: a plain-text ``title``, a trusted ``body_html``, an ``anchor``."""

    title: str
    body_html: str
    anchor: str


@dataclass(frozen=True)
class _TradeRow:
    symbol: str
    sector: str
    side: str
    shares: float  # signed like to_frame()'s trade_shares
    price: float
    value: float  # signed like to_frame()'s trade_value
    cost: float
    current: float
    target: float
    post_trade: float
    why: str = ""  # the trade's reasons, strongest first


@dataclass(frozen=True)
class _TradeGroup:
    label: str | None  # the sector, "No sector", or None when the blotter is not grouped
    trades: list[_TradeRow]
    bought: float
    sold: float


class HTMLReportGenerator:
    """Builds a single self-contained HTML report of a :class:`~finwiz.RebalancingResult`.

    The report holds an executive summary, current vs target vs post-trade weights (chart and
    table), sector exposure against caps, the trade blotter grouped by sector, costs and
    turnover, taxes (a tax-aware rebalance), an optional risk section, the compliance table (breaches highlighted) and
    warnings, followed by any custom sections. Charts are PNGs embedded as ``data:`` URIs, the
    stylesheet and the small table sorter are inline, so the file works offline.

    Customise it by adding sections::

        generator = HTMLReportGenerator()
        generator.add_section("Notes", "Approved by the investment committee.")
        generator.add_section("Trade count", lambda result: str(len(result.trades)))

    by subclassing and overriding :meth:`build_sections` (call ``super()`` to keep the built-in
    sections) or any ``*_section`` method, or without Python: point ``template_dir`` at a folder
    whose templates replace the built-ins of the same name (``report.html.j2``,
    ``sections/trades.html.j2``, ...) or extend them (``{% extends "finwiz/report.html.j2" %}``)
    to override single blocks.

    Parameters
    ----------
    title
        Default page title; :meth:`generate_html` can override it per report.
    include_charts
        Draw and embed the matplotlib charts (turn off for the fastest, text-only report).
    max_chart_assets
        The weights chart draws this many assets, those furthest from target, and sums the rest
        into one "others" bar; tables list every asset.
    dpi
        Resolution of the embedded charts.
    template_dir
        A folder (or several, searched in order) of templates that override the built-ins.
    """

    template_name = "report.html.j2"
    """The page template; a subclass or a template folder can name or provide another."""

    def __init__(
        self,
        *,
        title: str = "Portfolio rebalancing report",
        include_charts: bool = True,
        max_chart_assets: int = DEFAULT_MAX_CHART_ASSETS,
        dpi: int = 96,
        template_dir: TemplateFolders = None,
    ) -> None:
        self.title = title
        self.include_charts = include_charts
        self.max_chart_assets = max_chart_assets
        self.dpi = dpi
        self.template_dirs = folders(template_dir)
        self._custom: list[tuple[str, SectionContent, bool]] = []

    def __repr__(self) -> str:
        dirs = f", template_dir={[str(d) for d in self.template_dirs]!r}" if self.template_dirs else ""
        return (
            f"{type(self).__name__}(title={self.title!r}, include_charts={self.include_charts!r}, "
            f"max_chart_assets={self.max_chart_assets!r}, dpi={self.dpi!r}{dirs})"
        )

    # -- templates ------------------------------------------------------------------------

    @property
    def environment(self) -> jinja2.Environment:
        """The autoescaping Jinja2 environment: ``template_dir`` first, then the built-ins."""
        return environment(self.template_dirs)

    def render(self, template: str, **context: Any) -> str:
        """Render one template of the environment (autoescaped) with ``context``."""
        return str(render(self.environment, template, **context))

    # -- custom sections ------------------------------------------------------------------

    def add_section(self, title: str, content: SectionContent, *, raw_html: bool = False) -> None:
        """Append a custom section after the built-in ones.

        ``content`` is a string or a callable taking the result and returning one. It is shown
        as escaped plain text unless ``raw_html=True``, in which case it is trusted HTML and
        inserted as is (escape any data you put in it, e.g. with :func:`html.escape`, or build
        it with :meth:`render`). The title is always escaped.
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
        ``*_section`` method. The taxes and risk sections are there only when
        :meth:`tax_section` and :meth:`risk_section` give one.
        """
        taxes = self.tax_section(result)
        risk = self.risk_section(result)
        return [
            self.summary_section(result),
            self.weights_section(result),
            self.sectors_section(result),
            *(ReportSection(*part) for part in lookthrough_sections(self.render, result)),
            self.trades_section(result),
            self.costs_section(result),
            *([taxes] if taxes is not None else []),
            *([risk] if risk is not None else []),
            self.compliance_section(result),
            self.warnings_section(result),
            *self.custom_sections(result),
        ]

    def _section(self, anchor: str, title: str, result: RebalancingResult, **context: Any) -> ReportSection:
        body = self.render(f"sections/{anchor}.html.j2", result=result, generator=self, **context)
        return ReportSection(title, body, anchor)

    def _chart(self, figure: Any) -> str:
        return figure_to_data_uri(figure, dpi=self.dpi)

    def summary_section(self, result: RebalancingResult) -> ReportSection:
        """Executive summary: values, cash, costs, turnover, trade count, solver and status."""
        return self._section(
            "summary", "Executive summary", result, kpis=summary_rows(result), compliant=result.is_compliant
        )

    def weights_section(self, result: RebalancingResult) -> ReportSection:
        """Current vs target vs post-trade weights: a bar chart and a (collapsible) sortable table."""
        frame = weights_frame(result)
        chart = self._chart(weights_figure(result, max_assets=self.max_chart_assets)) if self.include_charts else ""
        values = frame.to_numpy(dtype=float)
        rows = [
            {
                "symbol": symbol,
                "sector": "" if symbol == CASH else result.sectors.get(symbol, ""),
                "current": current,
                "target": target,
                "post_trade": after,
            }
            for symbol, (current, target, after) in zip(frame.index, values, strict=True)
        ]
        return self._section("weights", "Current vs target vs post-trade weights", result, chart=chart, rows=rows)

    def sectors_section(self, result: RebalancingResult) -> ReportSection:
        """Sector weights before, targeted and after the trades, against each sector's cap."""
        exposure = sector_exposure(result)
        chart = self._chart(sector_figure(result)) if self.include_charts and not exposure.empty else ""
        values = exposure[["before", "target", "after", "cap"]].to_numpy(dtype=float)
        rows = []
        for sector, (before, target, after, cap) in zip(exposure.index, values, strict=True):
            breach = bool(after > cap + _BREACH_EPSILON)  # NaN cap (uncapped) is never over
            status = "OVER CAP" if breach else ("no cap" if math.isnan(cap) else "ok")
            rows.append(
                {"sector": sector, "before": before, "target": target, "after": after, "cap": cap}
                | {"breach": breach, "status": status}
            )
        return self._section("sectors", "Sector exposure", result, chart=chart, rows=rows)

    def trade_groups(self, result: RebalancingResult) -> list[_TradeGroup]:
        """The blotter's rows for ``sections/trades.html.j2``: one group per sector (alphabetical,
        unclassified last as "No sector"), or one group with ``label`` None when the result has
        no sectors. Each group has ``label``, ``trades``, ``bought`` and ``sold``; each trade row
        ``symbol, sector, side, shares, price, value, cost, current, target, post_trade``, shares
        and value signed, and ``why`` (its reasons). Within a group: sells first, then by descending value."""
        rows = [
            _TradeRow(
                symbol=t.symbol,
                sector=result.sectors.get(t.symbol, ""),
                side=t.action.value.upper(),
                shares=t.signed_shares,
                price=t.price,
                value=t.signed_trade_value,
                cost=t.total_estimated_cost,
                current=result.current_weights.get(t.symbol, 0.0),
                target=result.target_weights.get(t.symbol, 0.0),
                post_trade=result.post_trade_weights.get(t.symbol, 0.0),
                why=t.why,
            )
            for t in sorted(result.trades, key=lambda t: (t.action is not TradeAction.SELL, -t.trade_value, t.symbol))
        ]
        if not rows:
            return []
        keyed: dict[str | None, list[_TradeRow]] = {}
        if not result.sectors:
            keyed[None] = rows
        else:
            by_sector: dict[str, list[_TradeRow]] = {}
            for row in rows:
                by_sector.setdefault(row.sector, []).append(row)  # "" for an unclassified symbol
            for sector in sorted(by_sector, key=lambda k: (k == "", k)):
                keyed[sector or NO_SECTOR] = by_sector[sector]
        return [
            _TradeGroup(
                label=label,
                trades=group,
                bought=sum(r.value for r in group if r.value > 0),
                sold=-sum(r.value for r in group if r.value < 0),
            )
            for label, group in keyed.items()
        ]

    def trades_section(self, result: RebalancingResult) -> ReportSection:
        """The trade blotter grouped by sector: symbol, sector, side, signed shares and value,
        price, cost, and current / target / post-trade weight; sortable and filterable."""
        return self._section(
            "trades",
            "Trades",
            result,
            groups=self.trade_groups(result),
            count=len(result.trades),
            net_value=sum(t.signed_trade_value for t in result.trades),
            total_cost=result.total_cost,
        )

    def costs_section(self, result: RebalancingResult) -> ReportSection:
        """Costs (transaction and market impact) and turnover."""
        bought = sum(t.trade_value for t in result.buys)
        sold = sum(t.trade_value for t in result.sells)
        value = result.portfolio_value_before
        cost_bps = result.total_cost / value * 1e4 if value else 0.0
        rows = [
            ("Transaction costs", money(result.transaction_costs, result.currency)),
            ("Market impact costs", money(result.market_impact_costs, result.currency)),
            ("Total cost", money(result.total_cost, result.currency)),
            ("Total cost (bp of value before)", f"{cost_bps:.2f}"),
            ("Bought", money(bought, result.currency)),
            ("Sold", money(sold, result.currency)),
            ("Net cash used by trades", money(bought - sold, result.currency)),
            ("Turnover (traded value / value before)", percent(result.turnover)),
        ]
        return self._section("costs", "Costs and turnover", result, rows=rows)

    def tax_section(self, result: RebalancingResult) -> ReportSection | None:
        """Taxes, only for a tax-aware result (``result.tax`` set): realised gains and losses by
        term, net gain and budget used, estimated tax and harvested losses; every lot sold
        (symbol, lot, acquired, shares, cost basis per share, realised gain, term) and the assets
        the wash-sale rule restricted."""
        figures = tax_figures(result)
        if figures is None or result.tax is None:
            return None
        blocks = sorted(result.tax.wash_sale_blocks.items())
        return self._section("taxes", "Taxes", result, figures=figures, lots=lot_rows(result), blocks=blocks)

    def risk_context(self, result: RebalancingResult) -> dict[str, Any]:
        """Extra names for the ``risk`` block of ``sections/risk.html.j2`` (none by default)."""
        return {}

    def risk_section(self, result: RebalancingResult) -> ReportSection | None:
        """The risk section, or None: with risk attached, before / after / change, top contributors
        and sector risk; else ``sections/risk.html.j2``, whose ``risk`` block is empty by default
        (an empty body leaves the section out)."""
        if result.risk_after is not None:
            return ReportSection(
                "Risk", risk_section_html(result, include_charts=self.include_charts, dpi=self.dpi), "risk"
            )
        section = self._section("risk", "Risk", result, **self.risk_context(result))
        return section if section.body_html.strip() else None

    def compliance_section(self, result: RebalancingResult) -> ReportSection:
        """Every checked hard constraint in words (``AAPL ≤ 10 % of value: 9.997 %``), one row per
        limit and member, grouped by kind of limit; groups with a breach first, breaches
        highlighted. The check's name (``max_position[AAPL]``) is each row's tooltip."""
        groups = compliance_groups(result)
        count = sum(len(g.rows) for g in groups)
        held = sum(g.held for g in groups)
        return self._section(
            "compliance", "Compliance", result, groups=groups, held=held, count=count, checks=len(result.compliance)
        )

    def warnings_section(self, result: RebalancingResult) -> ReportSection:
        """The warnings the engine attached to the result."""
        return self._section("warnings", "Warnings", result, warnings=result.warnings)

    def custom_sections(self, result: RebalancingResult) -> list[ReportSection]:
        """The sections added with :meth:`add_section`, rendered for ``result``."""
        out = []
        for number, (title, content, raw_html) in enumerate(self._custom, start=1):
            text = content(result) if callable(content) else content
            body = self.render("sections/custom.html.j2", content=str(text), raw_html=raw_html)
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
        return self.render(
            self.template_name,
            result=result,
            generator=self,
            sections=self.build_sections(result),
            title=page_title,
            subtitle=subtitle,
            language=language,
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
    stylesheet is left alone. Shares and values are signed (negative for a sell).
    """
    largest = sorted(result.trades, key=lambda t: -t.trade_value)[:max_trades]
    return str(
        render(
            environment(),
            "notebook.html.j2",
            result=result,
            summary=summary_rows(result),
            largest=largest,
            more=len(result.trades) - len(largest),
            breaches=[c.constraint for c in result.compliance if not c.satisfied],
            risk_html=Markup(risk_summary_html(result)),
        )
    )
