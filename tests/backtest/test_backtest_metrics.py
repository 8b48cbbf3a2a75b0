"""Volatility, maximum drawdown and Sharpe ratio of a backtest, against a hand computation."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from finwiz import Holding, PortfolioConfiguration
from finwiz.backtest import Backtest, NeverRebalance
from finwiz.errors import ConfigurationError

PRICES = [100.0, 110.0, 99.0, 104.5, 95.0, 114.0]


def _backtest(index: pd.DatetimeIndex, **options: object) -> Backtest:
    prices = pd.DataFrame({"A": PRICES}, index=index)
    config = PortfolioConfiguration(holdings=[Holding(symbol="A", shares=10)], target_weights={"A": 1.0}, cash=0.0)
    return Backtest(prices, initial=config, **options)  # type: ignore[arg-type]


DAYS = pd.bdate_range("2024-01-01", periods=6)
# 10 shares, no cash: the returns are the price's, worked out by hand.
RETURNS = [0.1, -0.1, 104.5 / 99 - 1, 95 / 104.5 - 1, 0.2]


def test_volatility_drawdown_and_sharpe_match_the_hand_figures() -> None:
    metrics = _backtest(DAYS, periods_per_year=252, risk_free_rate=0.05).run(NeverRebalance()).metrics
    sd = statistics.stdev(RETURNS)
    assert metrics["volatility"] == pytest.approx(sd * math.sqrt(252))
    # Peak 110 (day 2), trough 95 (day 5): 1 - 95/110.
    assert metrics["max_drawdown"] == pytest.approx(1 - 95 / 110)
    assert metrics["sharpe"] == pytest.approx((statistics.mean(RETURNS) - 0.05 / 252) / sd * math.sqrt(252))


def test_a_deposit_is_not_a_return() -> None:
    flows = pd.Series([500.0], index=[DAYS[3]])
    result = _backtest(DAYS, periods_per_year=252, cash_flows=flows).run(NeverRebalance())
    # Values 1000, 1100, 990, 1045 + 500, 950 + 500, 1140 + 500.
    assert list(result.values) == pytest.approx([1000, 1100, 990, 1545, 1450, 1640])
    returns = [0.1, -0.1, (1545 - 500) / 990 - 1, 1450 / 1545 - 1, 1640 / 1450 - 1]
    assert result.metrics["volatility"] == pytest.approx(statistics.stdev(returns) * math.sqrt(252))
    assert result.metrics["max_drawdown"] == pytest.approx(1 - (1 + returns[2]) * (1 + returns[3]) * 0.99 / 1.1)


def test_periods_per_year_come_from_the_price_index() -> None:
    months = pd.date_range("2024-01-31", periods=6, freq="ME")
    monthly = _backtest(months).run(NeverRebalance()).metrics
    per_year = 5 / ((months[-1] - months[0]).days / 365.25)  # ~12
    assert per_year == pytest.approx(12, rel=0.02)
    assert monthly["volatility"] == pytest.approx(statistics.stdev(RETURNS) * math.sqrt(per_year))
    # Every annualised figure counts years the same way: the index's own span, not days / 252.
    assert monthly["years"] == pytest.approx((months[-1] - months[0]).days / 365.25)
    assert monthly["annual_return"] == pytest.approx((114 / 100) ** (1 / monthly["years"]) - 1)
    daily = _backtest(DAYS).run(NeverRebalance()).metrics
    assert daily["volatility"] > 4 * monthly["volatility"]  # ~sqrt(365/12 x 5/7) times


def test_a_flat_book_has_no_sharpe_and_no_drawdown() -> None:
    prices = pd.DataFrame({"A": [100.0] * 5}, index=DAYS[:5])
    config = PortfolioConfiguration(holdings=[Holding(symbol="A", shares=10)], target_weights={"A": 1.0})
    metrics = Backtest(prices, initial=config).run(NeverRebalance()).metrics
    assert metrics["volatility"] == 0.0
    assert metrics["max_drawdown"] == 0.0
    assert math.isnan(metrics["sharpe"])


@pytest.mark.parametrize(("option", "value"), [("periods_per_year", 0.0), ("risk_free_rate", math.nan)])
def test_bad_parameters_are_refused_by_name(option: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=option):
        _backtest(DAYS, **{option: value})
