"""Orchestrator and CLI speed. Run: ``pytest benchmarks/test_bench_orchestrator.py``.

Targets: ``finwiz demo`` under 3 s wall time (mostly imports); orchestrator overhead on a
500-asset portfolio with in-memory prices under 10 % of the bare engine, plus the report
(under 1 s).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finwiz.data import InMemoryPriceProvider, PortfolioPriceService
from finwiz.optimizer import PortfolioAnalyzer, RebalancingEngine
from finwiz.orchestrator import PortfolioRebalancingOrchestrator
from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import Holding, PortfolioConfiguration, RebalancingResult

N_ASSETS = 500


@pytest.fixture(scope="module")
def large_portfolio() -> tuple[PortfolioConfiguration, dict[str, float]]:
    """500 assets in 11 sectors, drifted +-50 % from equal targets, 20 % sector caps."""
    rng = np.random.default_rng(42)
    symbols = [f"S{i:03d}" for i in range(N_ASSETS)]
    prices = dict(zip(symbols, rng.uniform(10, 500, N_ASSETS).round(2).tolist(), strict=True))
    target = 0.98 / N_ASSETS
    value = 50_000_000.0
    weights = target * (1 + rng.uniform(-0.5, 0.5, N_ASSETS))
    shares = np.floor(weights * value / np.array(list(prices.values())))
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=float(n)) for s, n in zip(symbols, shares, strict=True)],
        target_weights=dict.fromkeys(symbols, target),
        cash=500_000.0,
        tolerance=0.0,
        max_sector_weight=0.2,
        sectors={s: f"Sector {i % 11}" for i, s in enumerate(symbols)},
    )
    return config, prices


def _orchestrator(prices: dict[str, float], report: bool, tmp: Path) -> PortfolioRebalancingOrchestrator:
    service = PortfolioPriceService(InMemoryPriceProvider(prices), cache_ttl_seconds=0.0)
    generator = HTMLReportGenerator() if report else None
    return PortfolioRebalancingOrchestrator(
        service, PortfolioAnalyzer(), RebalancingEngine(), generator, report_directory=tmp
    )


def test_bench_bare_engine_500(
    benchmark: Any, large_portfolio: tuple[PortfolioConfiguration, dict[str, float]]
) -> None:
    config, prices = large_portfolio
    engine = RebalancingEngine()
    engine.rebalance(config, prices)  # compile once: both benchmarks measure warm solves
    result = benchmark(engine.rebalance, config, prices)
    assert result.trades


def test_bench_orchestrator_500_no_report(
    benchmark: Any, large_portfolio: tuple[PortfolioConfiguration, dict[str, float]], tmp_path: Path
) -> None:
    config, prices = large_portfolio
    orchestrator = _orchestrator(prices, report=False, tmp=tmp_path)
    # One event loop for all rounds, as in a service: a fresh asyncio.run() per call costs
    # ~15 ms on Python 3.11 just to repr the main task (and its 500-holding argument) while
    # installing the SIGINT handler, which is not the orchestrator's overhead.
    with asyncio.Runner() as runner:
        runner.run(orchestrator.rebalance_portfolio(config))

        def run() -> RebalancingResult:
            return runner.run(orchestrator.rebalance_portfolio(config, "bench"))

        assert benchmark(run).trades


def test_bench_report_500(
    benchmark: Any, large_portfolio: tuple[PortfolioConfiguration, dict[str, float]], tmp_path: Path
) -> None:
    config, prices = large_portfolio
    result = RebalancingEngine().rebalance(config, prices)
    generator = HTMLReportGenerator()
    generator.generate_html(result)  # matplotlib import and font cache are one-off costs
    html = benchmark(generator.generate_html, result)
    assert "<section" in html


def test_bench_demo_wall_time(benchmark: Any, tmp_path: Path) -> None:
    env = {**os.environ, "REBALANCING_PRICE_PROVIDER": "sample", "REBALANCING_FALLBACK_PROVIDERS": "[]"}
    command = [sys.executable, "-m", "finwiz", "-q", "demo", "--report", str(tmp_path / "report.html")]

    def run() -> int:
        return subprocess.run(command, env=env, capture_output=True, check=False, timeout=120).returncode

    assert benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1) == 0
