"""The offline demo portfolio: $1M across the 20 bundled S&P 500 stocks, drifted off target."""

from __future__ import annotations

import numpy as np

from finwiz.data import sample_latest_prices, sample_sectors
from finwiz.schemas import Holding, PortfolioConfiguration, RebalancingMethod

__all__ = ["DEMO_SECTOR_CAP", "demo_configuration"]

DEMO_SECTOR_CAP = 0.30
_DEMO_VALUE = 1_000_000.0
_DEMO_CASH = 15_000.0
_HEALTH_CARE_TARGET = 0.055  # six Health Care names at 5.5 % want 33 %: above the cap on purpose


def demo_configuration(method: RebalancingMethod = RebalancingMethod.MINIMIZE_TRADES) -> PortfolioConfiguration:
    """A drifted $1M portfolio of the 20 sample stocks with 30 % sector caps.

    Targets are equal-weight-ish (Health Care tilted up to 33 %, so the 30 % cap binds;
    5 % cash); holdings have drifted by up to +-40 % from their targets, deterministically.
    """
    prices = sample_latest_prices()
    sectors = sample_sectors().reindex(prices.index)
    health_care = (sectors == "Health Care").to_numpy()
    others = (0.95 - _HEALTH_CARE_TARGET * health_care.sum()) / (~health_care).sum()
    targets = np.where(health_care, _HEALTH_CARE_TARGET, others)
    # A fixed permutation of evenly spread drifts: reproducible, and every name is off target.
    drift = np.random.default_rng(7).permutation(np.linspace(-0.4, 0.4, len(targets)))
    drift[health_care] = np.abs(drift[health_care])  # Health Care has run up: over its cap today
    weights = targets * (1.0 + drift)
    weights *= (_DEMO_VALUE - _DEMO_CASH) / _DEMO_VALUE / weights.sum()
    shares = np.floor(weights * _DEMO_VALUE / prices.to_numpy())
    invested = float(shares @ prices.to_numpy())
    return PortfolioConfiguration(
        holdings=[Holding(symbol=str(s), shares=float(n)) for s, n in zip(prices.index, shares, strict=True)],
        target_weights=dict(zip(prices.index.astype(str), targets.round(6).tolist(), strict=True)),
        cash=round(_DEMO_VALUE - invested, 2),
        method=method,
        tolerance=0.01,
        max_sector_weight=DEMO_SECTOR_CAP,
        sectors={str(s): str(v) for s, v in sectors.items()},
    )
