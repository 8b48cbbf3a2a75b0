"""Process-wide defaults, read from the environment (prefix ``REBALANCING_``) or a ``.env`` file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RebalancingSettings"]

ProviderName = Literal["yahoo", "alpha_vantage", "csv", "sample"]
"""The keys of :data:`finwiz.data.PRICE_PROVIDERS` (a test holds them equal; settings cannot
import the data layer, which imports settings)."""


class RebalancingSettings(BaseSettings):
    """Defaults for configurations, providers, the price cache and the solver.

    Every field can be set as ``REBALANCING_<FIELD>`` in the environment or in ``.env``,
    e.g. ``REBALANCING_DEFAULT_TOLERANCE=0.02``. The configuration defaults
    (tolerance 0.05, cost rate 0.001, minimum trade 100) are the ones
    :class:`~finwiz.PortfolioConfiguration` uses. ``max_assets`` (5,000) and ``max_lots``
    (200,000) are the size ceilings a service relies on (``REBALANCING_MAX_ASSETS=20000`` raises one).
    """

    model_config = SettingsConfigDict(
        env_prefix="REBALANCING_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    default_tolerance: float = Field(0.05, ge=0.0, le=1.0)
    default_transaction_cost_rate: float = Field(0.001, ge=0.0, lt=1.0)
    default_min_trade_size: float = Field(100.0, ge=0.0)

    price_provider: ProviderName = "sample"
    fallback_providers: list[ProviderName] = Field(default_factory=list)
    alpha_vantage_api_key: str | None = Field(default=None, repr=False)
    alpha_vantage_base_url: str = "https://www.alphavantage.co/query"
    csv_price_path: str | None = None
    price_cache_ttl_seconds: float = Field(300.0, ge=0.0)
    max_concurrent_requests: int = Field(10, ge=1)
    request_timeout_seconds: float = Field(10.0, gt=0.0)
    max_retries: int = Field(3, ge=0)
    provider_timeout_seconds: float = Field(60.0, gt=0.0)
    """Deadline for one call to a price provider, retries included, so a hanging source fails."""

    solver: Literal["auto", "CLARABEL", "OSQP"] = "auto"
    solver_time_limit_seconds: float = Field(30.0, gt=0.0)
    mip_time_limit_seconds: float = Field(10.0, gt=0.0)

    report_directory: str = "."

    max_assets: int = Field(5_000, ge=1)
    """Most assets (held or targeted) one rebalance accepts; a larger book is refused with an
    :class:`~finwiz.InvalidPortfolioError` before any work (10,000 assets take ~3.4 s and ~230 MB)."""
    max_lots: int = Field(200_000, ge=0)
    """Most tax lots one rebalance (or one lots CSV) accepts; more are refused before any work
    (2 million lots take ~76 s and ~2.2 GB)."""
