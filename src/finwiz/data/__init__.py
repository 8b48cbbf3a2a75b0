"""Market data: async price providers, the price service, pandas pipelines, the bundled sample."""

from finwiz.data._alpha_vantage import (
    DEFAULT_ALPHA_VANTAGE_URL,
    AlphaVantagePriceProvider,
    RetryPolicy,
)
from finwiz.data._market import MarketDataProvider
from finwiz.data._parsing import parse_price
from finwiz.data._pipelines import (
    CovarianceMethod,
    DataQualityReport,
    MissingDataPolicy,
    ReturnKind,
    StaleRun,
    SuspectedSplit,
    align_prices,
    check_covariance,
    check_price_quality,
    compute_returns,
    estimate_covariance,
    ewma_covariance,
    ledoit_wolf_covariance,
    liquidity_profile,
    pca_factor_model,
)
from finwiz.data._providers import (
    CSVPriceProvider,
    DateLike,
    InMemoryPriceProvider,
    PriceDataProvider,
    SamplePriceProvider,
)
from finwiz.data._service import (
    CachedPrice,
    PortfolioPriceService,
    PriceCache,
    PriceFetchResult,
    PriceState,
    PriceStatus,
    ProgressCallback,
    provider_from_name,
)
from finwiz.data._yahoo import YahooFinancePriceProvider
from finwiz.data.sample import (
    SAMPLE_ATTRIBUTION,
    sample_latest_prices,
    sample_price_history,
    sample_sectors,
)

__all__ = [
    "DEFAULT_ALPHA_VANTAGE_URL",
    "SAMPLE_ATTRIBUTION",
    "AlphaVantagePriceProvider",
    "CSVPriceProvider",
    "CachedPrice",
    "CovarianceMethod",
    "DataQualityReport",
    "DateLike",
    "InMemoryPriceProvider",
    "MarketDataProvider",
    "MissingDataPolicy",
    "PortfolioPriceService",
    "PriceCache",
    "PriceDataProvider",
    "PriceFetchResult",
    "PriceState",
    "PriceStatus",
    "ProgressCallback",
    "RetryPolicy",
    "ReturnKind",
    "SamplePriceProvider",
    "StaleRun",
    "SuspectedSplit",
    "YahooFinancePriceProvider",
    "align_prices",
    "check_covariance",
    "check_price_quality",
    "compute_returns",
    "estimate_covariance",
    "ewma_covariance",
    "ledoit_wolf_covariance",
    "liquidity_profile",
    "parse_price",
    "pca_factor_model",
    "provider_from_name",
    "sample_latest_prices",
    "sample_price_history",
    "sample_sectors",
]
