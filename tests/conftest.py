"""Shared fixtures: the bundled S&P sample and random portfolios (no network, no ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from finwiz import Holding, PortfolioConfiguration
from finwiz.data import sample_latest_prices, sample_sectors
from finwiz.settings import RebalancingSettings

settings.register_profile(
    "finwiz", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], derandomize=True
)
settings.load_profile("finwiz")


@pytest.fixture(scope="session")
def sample_prices() -> pd.Series:
    """Last close of the 20 sample stocks."""
    return sample_latest_prices()


@pytest.fixture(scope="session")
def sample_sector_map() -> dict[str, str]:
    """GICS sector of each sample stock."""
    return {str(k): str(v) for k, v in sample_sectors().items()}


def drifted_config(
    prices: pd.Series, *, value: float = 1_000_000.0, seed: int = 0, **overrides: object
) -> PortfolioConfiguration:
    """A $1M portfolio over ``prices``' symbols drifted away from an equal-weight 98 % target."""
    rng = np.random.default_rng(seed)
    symbols = [str(s) for s in prices.index]
    drift = rng.dirichlet(np.ones(len(symbols)) * 2.0)
    holdings = [
        Holding(symbol=s, shares=float(np.floor(drift[i] * value * 0.97 / prices[s]))) for i, s in enumerate(symbols)
    ]
    invested = sum(h.shares * prices[h.symbol] for h in holdings)
    fields: dict[str, object] = {
        "holdings": holdings,
        "target_weights": dict.fromkeys(symbols, 0.98 / len(symbols)),
        "cash": value - invested,
        "tolerance": 0.0,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sample_config(sample_prices: pd.Series, sample_sector_map: dict[str, str]) -> PortfolioConfiguration:
    """The sample drifted portfolio with sectors attached."""
    return drifted_config(sample_prices, sectors=sample_sector_map)


@pytest.fixture(scope="session")
def make_config():  # type: ignore[no-untyped-def]
    """Factory for drifted sample-style portfolios: ``make_config(prices, **overrides)``."""
    return drifted_config


@pytest.fixture
def demo_config() -> PortfolioConfiguration:
    """The drifted 20-stock demo portfolio of ``finwiz demo``, with 30 % sector caps."""
    from finwiz.cli._demo import demo_configuration

    return demo_configuration()


@pytest.fixture
def sample_settings(tmp_path: Path) -> RebalancingSettings:
    """Settings that price from the bundled sample only and write reports to a temp dir."""
    return RebalancingSettings().model_copy(
        update={"price_provider": "sample", "fallback_providers": [], "report_directory": str(tmp_path)}
    )


@pytest.fixture
def cli_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI's tests: bundled sample prices only (never the network, whatever the developer's
    environment says), run in a fresh folder."""
    monkeypatch.setenv("REBALANCING_PRICE_PROVIDER", "sample")
    monkeypatch.setenv("REBALANCING_FALLBACK_PROVIDERS", "[]")
    monkeypatch.chdir(tmp_path)
