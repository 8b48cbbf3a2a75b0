"""Matplotlib charts of a result, built with the object API (no pyplot: thread-safe, no GUI).

matplotlib is imported inside the functions so that ``import finwiz`` stays fast for code that
never draws.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finwiz.reporting._exposure import sector_exposure, weights_frame
from finwiz.schemas import CASH, RebalancingResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_MAX_CHART_ASSETS",
    "LABEL_FONT_SIZE",
    "chart_assets",
    "figure_to_data_uri",
    "figure_to_png",
    "sector_figure",
    "weights_figure",
]

DEFAULT_MAX_CHART_ASSETS = 25
"""The weights chart draws this many assets (those furthest from target) and sums the rest."""

LABEL_FONT_SIZE = 10.0
"""Points for every tick label; with the chart drawn at its natural size (96 dpi) that is 13 px,
whatever the number of assets, because the figure grows with the rows it draws."""

_ROW_INCHES = 0.34  # height of one asset's three bars
_CHART_WIDTH = 10.0  # inches: 960 px at 96 dpi, drawn unscaled in a 1280 px browser window

_COLOURS = {"current": "#9aa5b1", "target": "#2f6fb0", "post_trade": "#e07b24", "cap": "#c0392b"}
_LABELS = {"current": "Current", "target": "Target", "post_trade": "Post-trade"}
_COLUMNS = ("current", "target", "post_trade")


def _plain(label: object) -> str:
    # Labels are user data: a "$" would start matplotlib's mathtext and could fail to parse.
    return str(label).replace("$", r"\$")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def chart_assets(result: RebalancingResult, max_assets: int = DEFAULT_MAX_CHART_ASSETS) -> list[str]:
    """The assets the weights chart draws: the ``max_assets`` with the largest
    |current - target| weight, furthest first (ties by symbol)."""
    assets = weights_frame(result).drop(index=CASH)
    drift = (assets["current"] - assets["target"]).abs()
    ranked = sorted(drift.index, key=lambda s: (-float(drift[s]), str(s)))
    return ranked[: max(max_assets, 0)]


def _grouped_barh(axes: Any, frame: pd.DataFrame, labels: list[str]) -> None:
    positions = np.arange(len(frame))[::-1]  # first row at the top
    height = 0.27
    for offset, column in zip((height, 0.0, -height), _COLUMNS, strict=True):
        axes.barh(
            positions + offset,
            frame[column].to_numpy() * 100.0,
            height,
            label=_LABELS[column],
            color=_COLOURS[column],
        )
    axes.set_yticks(positions, labels, fontsize=LABEL_FONT_SIZE)
    axes.tick_params(axis="x", labelsize=LABEL_FONT_SIZE)
    axes.set_ylim(-0.6, len(frame) - 0.4)
    axes.grid(axis="x", alpha=0.3)


def weights_figure(result: RebalancingResult, *, max_assets: int = DEFAULT_MAX_CHART_ASSETS) -> Figure:
    """Horizontal bars of current, target and post-trade weight of the assets furthest from
    target, and below them, on their own scale, cash and the sum of every other asset.

    The ``max_assets`` assets with the largest |current - target| are drawn, furthest first (see
    :func:`chart_assets`); the others are summed into one "Others (k assets)" row, so a 431-asset
    book gives a chart as legible as a 20-asset one: labels are always
    :data:`LABEL_FONT_SIZE` points and the figure is as tall as its rows need.
    """
    frame = weights_frame(result)
    shown = chart_assets(result, max_assets)
    rest = frame.drop(index=[*shown, CASH])
    totals = frame.loc[[CASH]]
    total_labels = ["Cash"]
    if len(rest):
        totals = pd.concat([pd.DataFrame([rest.sum()], index=["__others__"]), totals])
        total_labels.insert(0, f"Others ({len(rest)} asset{'' if len(rest) == 1 else 's'})")

    rows_top, rows_bottom = max(len(shown), 1), len(totals)
    height = _ROW_INCHES * (rows_top + rows_bottom) + 2.2
    figure = _new_figure(_CHART_WIDTH, height)
    grid = figure.add_gridspec(2, 1, height_ratios=[rows_top + 0.8, rows_bottom + 0.8])
    top = figure.add_subplot(grid[0])
    if shown:
        _grouped_barh(top, frame.loc[shown], [_plain(s) for s in shown])
    else:
        top.text(0.5, 0.5, "No assets", ha="center", va="center", transform=top.transAxes)
        top.set_yticks([])
    total = len(frame) - 1
    note = f"the {len(shown)} of {total} assets furthest from target" if len(shown) < total else "every asset"
    top.set_title(f"Current vs target vs post-trade weights: {note}", fontsize=LABEL_FONT_SIZE + 1)
    top.legend(loc="lower right", fontsize=LABEL_FONT_SIZE)
    bottom = figure.add_subplot(grid[1])
    _grouped_barh(bottom, totals, total_labels)
    bottom.set_xlabel("Weight (% of portfolio value)", fontsize=LABEL_FONT_SIZE)
    return figure


def sector_figure(result: RebalancingResult) -> Figure:
    """Horizontal bars of sector weight before and after the trades, with each sector's cap.

    Caps come from the result's ``sector_cap[...]`` compliance entries; a sector without one has
    no cap marker. A result without sector data gives a figure saying so.
    """
    exposure = sector_exposure(result).iloc[::-1]  # largest at the top of a barh chart
    figure = _new_figure(_CHART_WIDTH, max(2.5, 0.45 * len(exposure) + 1.5))
    axes = figure.add_subplot()
    if exposure.empty:
        axes.text(0.5, 0.5, "No sector data", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    positions = np.arange(len(exposure))
    height = 0.38
    axes.barh(
        positions + height / 2,
        exposure["before"].to_numpy() * 100.0,
        height,
        label="Before",
        color=_COLOURS["current"],
    )
    axes.barh(
        positions - height / 2,
        exposure["after"].to_numpy() * 100.0,
        height,
        label="After",
        color=_COLOURS["post_trade"],
    )
    capped = exposure["cap"].notna().to_numpy()
    if capped.any():
        axes.scatter(
            exposure["cap"].to_numpy()[capped] * 100.0,
            positions[capped],
            marker="|",
            s=400,
            linewidths=2.5,
            color=_COLOURS["cap"],
            label="Cap",
            zorder=3,
        )
    axes.set_yticks(positions, [_plain(s) for s in exposure.index], fontsize=LABEL_FONT_SIZE)
    axes.tick_params(axis="x", labelsize=LABEL_FONT_SIZE)
    axes.set_xlabel("Weight (% of portfolio value)", fontsize=LABEL_FONT_SIZE)
    axes.set_title("Sector exposure before and after, against caps", fontsize=LABEL_FONT_SIZE + 1)
    axes.legend(loc="lower right", fontsize=LABEL_FONT_SIZE)
    axes.grid(axis="x", alpha=0.3)
    return figure


def figure_to_png(figure: Figure, *, dpi: int = 96) -> bytes:
    """Render ``figure`` to PNG bytes with the Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_to_data_uri(figure: Figure, *, dpi: int = 96) -> str:
    """``data:image/png;base64,...`` for embedding ``figure`` in a self-contained HTML file."""
    return "data:image/png;base64," + base64.b64encode(figure_to_png(figure, dpi=dpi)).decode("ascii")
