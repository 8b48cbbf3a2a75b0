"""The README's custom-analyzer example (examples/enhanced_analyzer.py) runs and its figures hold."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from finwiz import PortfolioAnalyzer, PortfolioConfiguration
from finwiz.data import compute_returns, sample_price_history

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "enhanced_analyzer.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("enhanced_analyzer_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_runs(example: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = example.main()
    printed = capsys.readouterr().out
    assert f"VaR 95% {metrics['var_95']:.2%}" in printed
    assert issubclass(example.EnhancedPortfolioAnalyzer, PortfolioAnalyzer)


def test_enhanced_metrics_match_numpy(
    example: ModuleType, sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    returns = compute_returns(sample_price_history().iloc[-400:])
    analyzer = example.EnhancedPortfolioAnalyzer()
    metrics = analyzer.calculate_enhanced_metrics(sample_config, sample_prices, returns, confidence=(0.95, 0.975))
    weights = analyzer.calculate_current_weightings(sample_config, sample_prices)
    names = [s for s in weights if s != "CASH"]
    w = np.array([weights[s] for s in names])
    # sector allocation: current weights summed by sector
    expected_sectors: dict[str, float] = {}
    for s in names:
        expected_sectors[sample_config.sectors[s]] = expected_sectors.get(sample_config.sectors[s], 0.0) + weights[s]
    assert metrics["sector_allocation"].keys() == expected_sectors.keys()
    for sector, value in expected_sectors.items():
        assert metrics["sector_allocation"][sector] == pytest.approx(value, abs=1e-12)
    # correlation: numpy's
    values = returns[names].to_numpy()
    np.testing.assert_allclose(metrics["correlation_matrix"].loc[names, names].to_numpy(), np.corrcoef(values.T))
    # historical VaR/CVaR: the worst floor(T (1 - a)) one-day losses
    losses = np.sort(-(values @ w))[::-1]
    for key, level in (("95", "0.95"), ("97.5", "0.975")):
        k = math.floor(len(losses) * (1 - Fraction(level)))
        assert metrics[f"var_{key}"] == pytest.approx(losses[k - 1], rel=1e-10)
        assert metrics[f"cvar_{key}"] == pytest.approx(losses[:k].mean(), rel=1e-10)
    assert metrics["volatility"] == pytest.approx(math.sqrt(252 * w @ np.cov(values.T) @ w), rel=1e-10)
    assert metrics["total_value"] == pytest.approx(
        analyzer.calculate_portfolio_metrics(sample_config, sample_prices)["total_value"]
    )
    # bare weights work too (no base metrics, no tracking error)
    bare = analyzer.calculate_enhanced_metrics(weights, sample_prices, returns)
    assert bare["tracking_error"] is None
    assert bare["var_95"] == pytest.approx(metrics["var_95"], rel=1e-12)
