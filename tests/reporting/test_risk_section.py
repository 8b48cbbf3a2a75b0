"""The risk section: before / after / change in the report and the notebook view, escaped."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from finwiz.reporting import HTMLReportGenerator, result_summary_html
from finwiz.reporting._risk_section import (
    risk_rows,
    risk_section_html,
    sector_risk_figure,
    top_risk_contributors,
)
from finwiz.risk import attach_risk
from finwiz.schemas import RebalancingResult

from .conftest import EVIL_SECTOR, EVIL_SYMBOL, parse_html

BUILT_IN_WITH_RISK = ["summary", "weights", "sectors", "trades", "costs", "risk", "compliance", "warnings"]


def with_risk(result: RebalancingResult) -> RebalancingResult:
    names = list(result.post_trade_weights)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.01, (len(names), len(names)))
    covariance = pd.DataFrame(a @ a.T + np.eye(len(names)) * 1e-5, index=names, columns=names)
    return attach_risk(result, covariance=covariance)


@pytest.fixture
def risky(make_result: Callable[..., RebalancingResult]) -> RebalancingResult:
    return with_risk(make_result())


def test_report_gets_a_risk_section_only_with_risk(risky: RebalancingResult, result: RebalancingResult) -> None:
    page = parse_html(HTMLReportGenerator().generate_html(risky))
    assert page.section_ids == BUILT_IN_WITH_RISK
    assert "risk" not in parse_html(HTMLReportGenerator().generate_html(result)).section_ids
    assert risk_rows(result) == []
    assert result_summary_html(result).count("Volatility") == 0


def test_risk_table_shows_before_after_and_change(risky: RebalancingResult) -> None:
    before, after = risky.risk_before, risky.risk_after
    assert before is not None
    assert after is not None
    rows = {label: (b, a, change) for label, b, a, change in risk_rows(risky)}
    vol = rows["Volatility (annualised)"]
    assert vol[0] == f"{before.volatility * 100:.2f}%"
    assert vol[1] == f"{after.volatility * 100:.2f}%"
    assert vol[2] == f"{(after.volatility - before.volatility) * 100:+.2f} pp"
    assert before.tracking_error is not None
    assert after.tracking_error is not None
    assert rows["Tracking error to target (annualised)"][1] == f"{after.tracking_error * 100:.2f}%"
    for level in (95, 99):
        assert rows[f"VaR {level}% (one period, parametric)"][1] == f"{after.var[level / 100] * 100:.2f}%"
        assert rows[f"CVaR {level}% (one period, parametric)"][0] == f"{before.cvar[level / 100] * 100:.2f}%"
    text = parse_html(HTMLReportGenerator(include_charts=False).generate_html(risky)).text
    for label, (b, a, change) in rows.items():
        assert label in text
        assert b in text
        assert a in text
        assert change in text


def test_top_contributors_are_the_largest(risky: RebalancingResult) -> None:
    before, after = risky.risk_before, risky.risk_after
    assert before is not None
    assert after is not None
    size = {
        s: max(abs(after.risk_contributions[s]), abs(before.risk_contributions[s])) for s in after.risk_contributions
    }
    top = top_risk_contributors(risky, 2)
    assert [symbol for symbol, _, _ in top] == sorted(size, key=lambda s: -size[s])[:2]
    assert top[0][1:] == (before.risk_contributions[top[0][0]], after.risk_contributions[top[0][0]])


def test_section_escapes_symbols_and_sectors(make_result: Callable[..., RebalancingResult]) -> None:
    evil = with_risk(make_result(evil=True))
    body = risk_section_html(evil, include_charts=False)
    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    assert "<b>" not in body
    assert parse_html(body).text.count(EVIL_SECTOR) >= 1
    assert EVIL_SYMBOL in parse_html(body).text
    notebook = result_summary_html(evil)
    assert "<script>" not in notebook
    assert "Volatility (annualised)" in notebook


def test_sector_bars_and_chart_embedded(risky: RebalancingResult) -> None:
    before, after = risky.risk_before, risky.risk_after
    assert before is not None
    assert after is not None
    figure = sector_risk_figure(risky)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    assert len(axes.patches) == 2 * len(after.sector_risk_contributions)
    widths = sorted(round(p.get_width(), 10) for p in axes.patches)
    values = [*before.sector_risk_contributions.values(), *after.sector_risk_contributions.values()]
    assert widths == sorted(round(v * 100, 10) for v in values)
    page = parse_html(HTMLReportGenerator().generate_html(risky))
    assert any("sector risk" in (image.get("alt") or "") for image in page.images)


def test_repr_html_carries_the_risk_table(risky: RebalancingResult) -> None:
    snippet = risky._repr_html_()
    assert snippet == result_summary_html(risky)
    assert "Tracking error to target" in snippet
    assert "CVaR 99%" in snippet
