"""Charts and the tabular views behind them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from matplotlib.figure import Figure

from finwiz.reporting import (
    figure_to_png,
    sector_exposure,
    sector_figure,
    weights_figure,
    weights_frame,
)
from finwiz.schemas import RebalancingResult, TradeAction, TradeRecommendation


def test_weights_frame_has_cash_last(result: RebalancingResult) -> None:
    frame = weights_frame(result)
    assert list(frame.columns) == ["current", "target", "post_trade"]
    assert list(frame.index) == ["AAA", "BBB", "CCC", "CASH"]
    assert frame["current"].sum() == pytest.approx(1.0)
    assert frame["post_trade"].sum() == pytest.approx(1.0)
    assert frame.loc["CASH", "target"] == pytest.approx(0.05)


def test_sector_exposure_sums_weights_and_reads_caps(result: RebalancingResult) -> None:
    exposure = sector_exposure(result)
    assert list(exposure.columns) == ["before", "after", "cap"]
    assert exposure.loc["Technology", "before"] == pytest.approx(0.7)
    assert exposure.loc["Health Care", "before"] == pytest.approx(0.2)
    expected_after = result.post_trade_weights["AAA"] + result.post_trade_weights["CCC"]
    assert exposure.loc["Technology", "after"] == pytest.approx(expected_after)
    assert exposure["cap"].tolist() == [0.6, 0.5]


def test_sector_exposure_without_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    assert sector_exposure(make_result(sectors=False)).empty


def test_weights_figure(result: RebalancingResult) -> None:
    figure = result.plot()
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["AAA", "BBB", "CCC", "CASH"]
    assert len(axes.patches) == 3 * 4
    assert figure_to_png(figure).startswith(b"\x89PNG")


def test_weights_figure_keeps_the_largest_assets(result: RebalancingResult) -> None:
    figure = weights_figure(result, max_assets=1)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["AAA", "CASH"]
    assert "largest 1 of 3" in figure.axes[0].get_title()


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
