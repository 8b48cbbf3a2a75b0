"""Charts and the self-contained HTML report of backtests (a comparison of rebalancing policies).

It reads plain pandas objects (values, daily frames, a metrics table), never the optimizer or the
backtest machinery. The page is a Jinja2 template with autoescaping on: every policy name,
description and failure message is HTML-escaped; charts are embedded PNGs; the CSS is inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from finwiz.reporting._charts import figure_to_data_uri

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["backtest_report_html", "comparison_figure", "cost_figure", "drift_figure", "result_figure"]

_ROLLING = 63  # trading days in the rolling tracking-error window (a quarter)
_PERCENT = {
    "total_return",
    "annual_return",
    "tracking_error",
    "mean_drift",
    "max_drift",
    "turnover_per_year",
    "volatility",
    "max_drawdown",
}
_COUNTS = {"trades", "rebalances", "failed_rebalances"}
_MONEY = {"final_value", "costs", "costs_per_year"}

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2733;
background:#f5f7fa;line-height:1.4}
header{background:#1f3b57;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:1.6em}header p{margin:4px 0 0;opacity:.85}
main{padding:8px 32px 32px;max-width:1400px}
section{background:#fff;border:1px solid #d8dee6;border-radius:6px;padding:12px 20px;margin:16px 0}
h2{margin:4px 0 10px;font-size:1.25em;color:#1f3b57}
table{border-collapse:collapse;font-size:.9em;margin:6px 0}
th,td{border-bottom:1px solid #e1e6ec;padding:4px 10px;text-align:left}
th{background:#eef2f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
img.chart{max-width:100%;height:auto;display:block;margin:8px 0}
.muted{color:#5b6b7c;font-size:.9em}ul.failures li{color:#b3261e}
.wide{overflow-x:auto}#metrics table{font-size:.8em}
</style>
</head>
<body>
<header><h1>{{ title }}</h1><p>{{ subtitle }}</p></header>
<main>
<section id="metrics"><h2>Metrics</h2>
<div class="wide"><table>
<tr><th>Policy</th>{% for column in columns %}<th class="num">{{ column }}</th>{% endfor %}</tr>
{% for row in rows %}<tr><td>{{ row.name }}</td>
{%- for cell in row.cells %}<td class="num">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
<p class="muted">Tracking error: annualised, against the target weights rebalanced daily at no cost.
Drift: half the sum of |weight - target| over assets and cash. Costs include market impact when volumes were given.</p>
</section>
{% if failures %}<section id="failures"><h2>Failures</h2><ul class="failures">
{% for name, message in failures %}<li><b>{{ name }}</b>: {{ message }}</li>{% endfor %}
</ul></section>{% endif %}
{% for chart in charts %}<section><h2>{{ chart.title }}</h2>
<img class="chart" alt="{{ chart.title }}" src="{{ chart.uri }}"></section>
{% endfor %}
<section id="policies"><h2>Policies</h2><table>
{% for name, description in policies %}<tr><td>{{ name }}</td><td><code>{{ description }}</code></td></tr>{% endfor %}
</table></section>
</main>
</body>
</html>
"""


def _new_figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, [ax for line in axes for ax in line]


def _plain(label: object) -> str:
    return str(label).replace("$", r"\$")  # a "$" would start matplotlib's mathtext


def _rolling_te(active: pd.Series) -> np.ndarray:
    return np.asarray(active.rolling(_ROLLING, min_periods=2).std().to_numpy() * np.sqrt(252))


def result_figure(name: str, frame: pd.DataFrame) -> Figure:
    """One policy: value (with cash flows marked), drift and rolling tracking error, cumulative cost."""
    figure, (value, drift, cost) = _new_figure(9, 8, 3, 1)
    value.plot(frame.index, frame["value"], color="#2f6fb0")
    flows = frame["cash_flow"] != 0
    if flows.any():
        value.scatter(frame.index[flows], frame["value"][flows], color="#e07b24", s=12, label="cash flow", zorder=3)
        value.legend(fontsize=8)
    value.set_title(f"{_plain(name)}: portfolio value")
    drift.plot(frame.index, frame["drift"] * 100, color="#e07b24", label="drift")
    drift.plot(frame.index, _rolling_te(frame["active_return"]) * 100, color="#2f6fb0", label="tracking error (63 d)")
    drift.set_ylabel("%")
    drift.legend(fontsize=8)
    drift.set_title("Drift from target and rolling tracking error")
    cost.plot(frame.index, frame["cumulative_cost"], color="#c0392b")
    cost.set_title("Cumulative costs (currency)")
    for ax in (value, drift, cost):
        ax.grid(alpha=0.3)
    return figure


def comparison_figure(values: Mapping[str, pd.Series], metrics: pd.DataFrame) -> Figure:
    """The policies' values on common axes, and costs (bp per year) against tracking error."""
    figure, (lines, scatter) = _new_figure(12, 4.5, 1, 2)
    _policy_lines(lines, values, "Portfolio value")
    te = metrics["tracking_error"].astype(float) * 100
    bp = metrics["costs_bp_per_year"].astype(float)
    scatter.scatter(te, bp, color="#2f6fb0", zorder=3)
    if len(metrics) <= 40:
        for name, x, y in zip(metrics.index, te, bp, strict=True):
            scatter.annotate(_plain(name), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    scatter.set_xlabel("Tracking error (% per year)")
    scatter.set_ylabel("Costs (bp per year)")
    scatter.set_title("Costs against tracking error")
    scatter.grid(alpha=0.3)
    return figure


def _policy_lines(ax: Axes, series: Mapping[str, pd.Series], title: str, ylabel: str | None = None) -> None:
    """One line per policy on common axes (a legend while there are few)."""
    for name, line in series.items():
        ax.plot(line.index, line.to_numpy(), label=_plain(name), linewidth=1)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) <= 12:
        ax.legend(fontsize=7)


def drift_figure(frames: Mapping[str, pd.DataFrame]) -> Figure:
    """Each policy's drift from target over time, on common axes."""
    figure, (ax,) = _new_figure(12, 3.5)
    _policy_lines(ax, {name: frame["drift"] * 100 for name, frame in frames.items()}, "Drift from target", "drift (%)")
    return figure


def cost_figure(frames: Mapping[str, pd.DataFrame]) -> Figure:
    """Each policy's cumulative costs over time, on common axes."""
    figure, (ax,) = _new_figure(12, 3.5)
    costs = {name: frame["cumulative_cost"] for name, frame in frames.items()}
    _policy_lines(ax, costs, "Cumulative costs", "currency")
    return figure


def _cell(column: str, value: object) -> str:
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        return str(value)
    number = float(value)
    if not np.isfinite(number):
        return "-"
    if column in _PERCENT:
        return f"{number:.2%}"
    if column in _COUNTS:
        return f"{int(number):,}"
    if column in _MONEY:
        return f"{number:,.2f}"
    return f"{number:,.2f}"


def backtest_report_html(
    title: str,
    metrics: pd.DataFrame,
    values: Mapping[str, pd.Series],
    frames: Mapping[str, pd.DataFrame],
    policies: Mapping[str, str],
    failures: Mapping[str, str],
) -> str:
    """The comparison page: metrics table, failures, charts (values, scatter, drift, costs), policies."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(_TEMPLATE)
    columns = [str(c) for c in metrics.columns]
    headers = [c.replace("_", " ") for c in columns]
    rows = [{"name": str(name), "cells": [_cell(c, metrics.at[name, c]) for c in columns]} for name in metrics.index]
    charts = []
    if len(metrics):
        charts = [
            {
                "title": "Value and costs against tracking error",
                "uri": figure_to_data_uri(comparison_figure(values, metrics)),
            },
            {"title": "Drift from target", "uri": figure_to_data_uri(drift_figure(frames))},
            {"title": "Cumulative costs", "uri": figure_to_data_uri(cost_figure(frames))},
        ]
    first = min((s.index[0] for s in values.values()), default=None)
    last = max((s.index[-1] for s in values.values()), default=None)
    span = f"{first.date()} to {last.date()}, " if first is not None and last is not None else ""
    subtitle = f"{len(metrics)} policies, {span}generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return template.render(
        title=title,
        subtitle=subtitle,
        columns=headers,
        rows=rows,
        charts=charts,
        failures=sorted(failures.items()),
        policies=list(policies.items()),
    )
