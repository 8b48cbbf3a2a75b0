"""Matplotlib charts of a result, built with the object API (no pyplot: thread-safe, no GUI).

matplotlib is imported inside the functions so that ``import finwiz`` stays fast for code that
never draws.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

from finwiz.reporting._exposure import sector_exposure, weights_frame
from finwiz.schemas import CASH, RebalancingResult

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_MAX_CHART_ASSETS",
    "figure_to_data_uri",
    "figure_to_png",
    "sector_figure",
    "weights_figure",
]

DEFAULT_MAX_CHART_ASSETS = 40
"""Beyond this many assets a bar chart is unreadable; the chart keeps the largest positions."""

_COLOURS = {"current": "#9aa5b1", "target": "#2f6fb0", "post_trade": "#e07b24", "cap": "#c0392b"}
_LABELS = {"current": "Current", "target": "Target", "post_trade": "Post-trade"}


def _plain(label: object) -> str:
    # Labels are user data: a "$" would start matplotlib's mathtext and could fail to parse.
    return str(label).replace("$", r"\$")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def weights_figure(result: RebalancingResult, *, max_assets: int = DEFAULT_MAX_CHART_ASSETS) -> Figure:
    """Grouped bars of current, target and post-trade weight per asset, cash last.

    With more than ``max_assets`` assets, only the ``max_assets`` largest (by the largest of
    their three weights) are drawn, and the title says so; cash is always drawn.
    """
    frame = weights_frame(result)
    assets = frame.drop(index=CASH)
    if len(assets) > max_assets:
        keep = assets.max(axis=1).nlargest(max_assets).index
        assets = assets.loc[assets.index.isin(keep)]
    shown = len(assets)
    frame = frame.loc[[*assets.index, CASH]]

    figure = _new_figure(max(6.0, 0.45 * len(frame) + 2.0), 4.5)
    axes = figure.add_subplot()
    positions = np.arange(len(frame))
    width = 0.27
    for offset, column in zip((-width, 0.0, width), ("current", "target", "post_trade"), strict=True):
        axes.bar(
            positions + offset,
            frame[column].to_numpy() * 100.0,
            width,
            label=_LABELS[column],
            color=_COLOURS[column],
        )
    axes.set_xticks(positions, [_plain(s) for s in frame.index], rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("Weight (% of portfolio value)")
    total = len(result.current_holdings)
    note = f" (largest {shown} of {total} assets)" if shown < total else ""
    axes.set_title(f"Current vs target vs post-trade weights{note}")
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return figure


def sector_figure(result: RebalancingResult) -> Figure:
    """Horizontal bars of sector weight before and after the trades, with each sector's cap.

    Caps come from the result's ``sector_cap[...]`` compliance entries; a sector without one has
    no cap marker. A result without sector data gives a figure saying so.
    """
    exposure = sector_exposure(result).iloc[::-1]  # largest at the top of a barh chart
    figure = _new_figure(8.0, max(2.5, 0.45 * len(exposure) + 1.5))
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
    axes.set_yticks(positions, [_plain(s) for s in exposure.index], fontsize=8)
    axes.set_xlabel("Weight (% of portfolio value)")
    axes.set_title("Sector exposure before and after, against caps")
    axes.legend(loc="lower right", fontsize=8)
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
