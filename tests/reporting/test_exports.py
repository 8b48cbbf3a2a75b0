"""One sign convention for trade values: to_frame, the CLI's CSV and JSON, the report, the terminal."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from finwiz.cli import _result_json
from finwiz.reporting import HTMLReportGenerator, trades_table
from finwiz.schemas import RebalancingResult, TradeAction

from .conftest import parse_html


def _signed(result: RebalancingResult) -> dict[str, tuple[float, float]]:
    """Signed (shares, value) per traded symbol, computed from the trades alone."""
    sign = {TradeAction.BUY: 1.0, TradeAction.SELL: -1.0}
    return {t.symbol: (sign[t.action] * t.shares, sign[t.action] * t.trade_value) for t in result.trades}


def test_to_frame_has_sector_signed_values_and_the_cash_change(result: RebalancingResult) -> None:
    frame = result.to_frame()
    assert list(frame.columns[:2]) == ["sector", "action"]
    assert frame["sector"].tolist() == ["Technology", "Health Care", "Technology", ""]
    assert frame.loc["AAA", ["trade_shares", "trade_value"]].tolist() == [-150.0, -15_000.0]
    assert frame.loc["BBB", ["trade_shares", "trade_value"]].tolist() == [280.0, 14_000.0]
    assert frame.loc["CCC", ["trade_shares", "trade_value"]].tolist() == [0.0, 0.0]
    # Cash is a position of price 1: before, change and after in money.
    cash = frame.loc["CASH"]
    assert cash["shares_before"] == result.cash_before
    assert cash["shares_after"] == result.cash_after
    assert cash["trade_value"] == pytest.approx(15_000.0 - 14_000.0 - 29.0)  # sold - bought - costs
    assert cash["trade_shares"] == cash["trade_value"]


def test_to_frame_values_are_shares_times_price_and_sum_to_flow_minus_costs(
    large_result: RebalancingResult,
) -> None:
    frame = large_result.to_frame()
    assert np.allclose(frame["trade_value"], frame["trade_shares"] * frame["price"], rtol=1e-12, atol=1e-6)
    assert np.array_equal(np.sign(frame["trade_value"]), np.sign(frame["trade_shares"]))
    assert frame["trade_value"].sum() == pytest.approx(large_result.cash_flow - large_result.total_cost, abs=1e-4)
    unclassified = [s for s in large_result.current_holdings if s not in large_result.sectors]
    assert unclassified
    assert (frame.loc[unclassified, "sector"] == "").all()
    assert frame.loc["CASH", "trade_value"] == pytest.approx(large_result.cash_after - large_result.cash_before)


def test_csv_export_round_trips_the_convention(large_result: RebalancingResult) -> None:
    back = pd.read_csv(io.StringIO(large_result.to_frame().to_csv()), index_col="symbol", keep_default_na=False)
    for symbol, (shares, value) in _signed(large_result).items():
        assert back.loc[symbol, "trade_shares"] == pytest.approx(shares)
        assert back.loc[symbol, "trade_value"] == pytest.approx(value)
        assert back.loc[symbol, "sector"] == large_result.sectors.get(symbol, "")


def test_json_export_signs_trade_values_like_the_frame(make_result: Callable[..., RebalancingResult]) -> None:
    result = make_result()
    data = json.loads(_result_json(result))
    assert data["method"] == result.method  # still the whole result
    frame = result.to_frame()
    for trade in data["trades"]:
        assert trade["shares"] > 0  # a TradeRecommendation's shares stay positive, action gives the side
        assert trade["trade_shares"] == frame.loc[trade["symbol"], "trade_shares"]
        assert trade["trade_value"] == frame.loc[trade["symbol"], "trade_value"]
    assert {t["symbol"]: t["trade_value"] for t in data["trades"]} == {"AAA": -15_000.0, "BBB": 14_000.0}


def test_report_and_terminal_use_the_same_signs(result: RebalancingResult) -> None:
    rows = parse_html(HTMLReportGenerator(include_charts=False).generate_html(result)).tables["trades-table"]
    shown = {row[0]: (row[3], row[5]) for row in rows if len(row) == 11 and row[0] in _signed(result)}
    expected = {s: (f"{sh:,.0f}", f"{v:,.2f}") for s, (sh, v) in _signed(result).items()}
    assert shown == expected
    text = trades_table(result)
    for shares, value in expected.values():
        assert shares in text
        assert value in text
    assert "-15,000.00" in result._repr_html_()
