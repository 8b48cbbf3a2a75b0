"""Charts and the tabular views behind them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from finwiz.reporting import (
    DEFAULT_MAX_CHART_ASSETS,
    figure_to_png,
    sector_exposure,
    sector_figure,
    weights_figure,
    weights_frame,
)
from finwiz.schemas import RebalancingResult, TradeAction, TradeRecommendation

from .conftest import build_large_result


def test_weights_frame_has_cash_last(result: RebalancingResult) -> None:
    frame = weights_frame(result)
    assert list(frame.columns) == ["current", "target", "post_trade"]
    assert list(frame.index) == ["AAA", "BBB", "CCC", "CASH"]
    assert frame["current"].sum() == pytest.approx(1.0)
    assert frame["post_trade"].sum() == pytest.approx(1.0)
    assert frame.loc["CASH", "target"] == pytest.approx(0.05)


def test_sector_exposure_sums_weights_and_reads_caps(result: RebalancingResult) -> None:
    exposure = sector_exposure(result)
    assert list(exposure.columns) == ["before", "target", "after", "cap"]
    assert exposure.loc["Technology", "before"] == pytest.approx(0.7)
    assert exposure.loc["Health Care", "before"] == pytest.approx(0.2)
    assert exposure.loc["Technology", "target"] == pytest.approx(0.4 + 0.2)  # AAA and CCC
    assert exposure.loc["Health Care", "target"] == pytest.approx(0.35)
    expected_after = result.post_trade_weights["AAA"] + result.post_trade_weights["CCC"]
    assert exposure.loc["Technology", "after"] == pytest.approx(expected_after)
    assert exposure["cap"].tolist() == [0.6, 0.5]


def test_sector_exposure_without_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    assert sector_exposure(make_result(sectors=False)).empty


def _labels(axes: Any) -> list[str]:
    """The y tick labels as read on the chart, top to bottom."""
    pairs = zip(axes.get_yticks(), axes.get_yticklabels(), strict=True)
    return [label.get_text() for _, label in sorted(pairs, key=lambda pair: -pair[0])]


def _bar_widths(axes: Any) -> list[float]:
    return [patch.get_width() for patch in axes.patches]


def test_weights_figure(result: RebalancingResult) -> None:
    figure = result.plot()
    assert isinstance(figure, Figure)
    top, bottom = figure.axes
    # Furthest from target first: |0.6 - 0.4| > |0.2 - 0.35| > |0.1 - 0.2|.
    assert _labels(top) == ["AAA", "BBB", "CCC"]  # y ticks run bottom-up
    assert _labels(bottom) == ["Cash"]
    assert len(top.patches) == 3 * 3
    assert len(bottom.patches) == 3
    assert figure_to_png(figure).startswith(b"\x89PNG")


def test_weights_figure_sums_the_rest_into_others(result: RebalancingResult) -> None:
    figure = weights_figure(result, max_assets=1)
    top, bottom = figure.axes
    assert _labels(top) == ["AAA"]
    assert _labels(bottom) == ["Others (2 assets)", "Cash"]
    assert "the 1 of 3 assets furthest from target" in top.get_title()
    # Bars are added per series (current, target, post-trade), each over the rows top-down.
    widths = np.array(_bar_widths(bottom)).reshape(3, 2)
    expected_others = [
        100 * (result.current_weights["BBB"] + result.current_weights["CCC"]),
        100 * (result.target_weights["BBB"] + result.target_weights["CCC"]),
        100 * (result.post_trade_weights["BBB"] + result.post_trade_weights["CCC"]),
    ]
    assert widths[:, 0] == pytest.approx(expected_others)
    assert widths[:, 1] == pytest.approx(
        [100 * result.current_weights["CASH"], 100 * result.target_cash_weight, 100 * result.cash_weight_after]
    )


def test_weights_chart_ranks_by_drift_on_a_large_book(large_result: RebalancingResult) -> None:
    figure = weights_figure(large_result)
    top, bottom = figure.axes
    symbols = list(large_result.current_holdings)
    drift = np.array([abs(large_result.current_weights[s] - large_result.target_weights[s]) for s in symbols])
    expected = [symbols[i] for i in np.lexsort((symbols, -drift))[:DEFAULT_MAX_CHART_ASSETS]]
    assert _labels(top) == expected
    assert _labels(bottom)[0] == f"Others ({len(symbols) - DEFAULT_MAX_CHART_ASSETS} assets)"


@pytest.mark.parametrize("n_assets", [3, 20, 431])
def test_weight_chart_labels_stay_legible(n_assets: int) -> None:
    figure = weights_figure(build_large_result(n_assets, min(n_assets, 145)))
    dpi = 96
    figure.set_dpi(dpi)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw_without_rendering()  # lays out the labels where the embedded PNG has them
    width_px, height_px = figure.get_size_inches() * dpi
    assert width_px <= 1100  # drawn unscaled in a 1280 px window
    assert height_px <= 1400  # however many assets: the rest are summed
    for axes in figure.axes:
        labels = [*axes.get_yticklabels(), *axes.get_xticklabels()]
        assert labels
        assert min(label.get_fontsize() for label in labels) >= 9.0
        boxes = [label.get_window_extent(renderer) for label in axes.get_yticklabels()]
        for upper, lower in itertools.pairwise(sorted(boxes, key=lambda b: b.y0)):
            assert upper.y1 <= lower.y0 + 0.5, "y tick labels overlap"
    assert sum(len(axes.get_yticklabels()) for axes in figure.axes) <= DEFAULT_MAX_CHART_ASSETS + 2


def test_sector_figure_draws_caps(result: RebalancingResult) -> None:
    figure = sector_figure(result)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["Health Care", "Technology"]
    assert len(axes.collections) == 1  # the cap markers
    caps = axes.collections[0].get_offsets()
    assert np.asarray(caps)[:, 0].tolist() == pytest.approx([50.0, 60.0])


def test_sector_figure_without_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    figure = sector_figure(make_result(sectors=False))
    assert "No sector data" in [t.get_text() for t in figure.axes[0].texts]


def test_dollar_signs_do_not_break_mathtext(result: RebalancingResult) -> None:
    data = result.model_dump()
    data["trades"] = [TradeRecommendation(**t) for t in data["trades"]]
    data["sectors"] = dict.fromkeys(data["sectors"], "$weird$ sector $")
    data["compliance"] = []
    odd = RebalancingResult(**data)
    assert figure_to_png(sector_figure(odd)).startswith(b"\x89PNG")
    assert all(t.action in (TradeAction.BUY, TradeAction.SELL) for t in odd.trades)
