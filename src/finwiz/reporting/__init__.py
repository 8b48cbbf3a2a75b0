"""Reporting: a self-contained HTML report, matplotlib charts and terminal tables of a result.

This package reads :class:`~finwiz.RebalancingResult` objects only; it never imports the
optimizer or the data layer.
"""

from finwiz.reporting._charts import (
    DEFAULT_MAX_CHART_ASSETS,
    LABEL_FONT_SIZE,
    chart_assets,
    figure_to_data_uri,
    figure_to_png,
    sector_figure,
    weights_figure,
)
from finwiz.reporting._exposure import sector_exposure, weights_frame
from finwiz.reporting._household import household_report_html
from finwiz.reporting._html import (
    HTMLReportGenerator,
    ReportSection,
    SectionContent,
    result_summary_html,
)
from finwiz.reporting._text import lots_table, summary_text, trades_table

__all__ = [
    "DEFAULT_MAX_CHART_ASSETS",
    "LABEL_FONT_SIZE",
    "HTMLReportGenerator",
    "ReportSection",
    "SectionContent",
    "chart_assets",
    "figure_to_data_uri",
    "figure_to_png",
    "household_report_html",
    "lots_table",
    "result_summary_html",
    "sector_exposure",
    "sector_figure",
    "summary_text",
    "trades_table",
    "weights_figure",
    "weights_frame",
]
