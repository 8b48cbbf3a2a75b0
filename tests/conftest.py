"""Shared fixtures: the bundled demo portfolio and a sample-priced service factory (offline)."""

from __future__ import annotations

import pytest

from finwiz._demo import demo_configuration
from finwiz.schemas import PortfolioConfiguration
from finwiz.settings import RebalancingSettings


@pytest.fixture
def demo_config() -> PortfolioConfiguration:
    """The drifted 20-stock demo portfolio with 30 % sector caps."""
    return demo_configuration()


@pytest.fixture
def sample_settings(tmp_path: object) -> RebalancingSettings:
    """Settings that price from the bundled sample only and write reports to a temp dir."""
    return RebalancingSettings().model_copy(
        update={"price_provider": "sample", "fallback_providers": [], "report_directory": str(tmp_path)}
    )
