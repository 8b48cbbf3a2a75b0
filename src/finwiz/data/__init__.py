"""Market data: async price providers, the price service, pandas pipelines, the bundled sample."""

from finwiz.data._alpha_vantage import (
    DEFAULT_ALPHA_VANTAGE_URL,
    AlphaVantagePriceProvider,
    RetryPolicy,
)
from finwiz.data._parsing import parse_price
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
    "DateLike",
    "InMemoryPriceProvider",
    "PortfolioPriceService",
    "PriceCache",
    "PriceDataProvider",
    "PriceFetchResult",
    "PriceState",
    "PriceStatus",
    "ProgressCallback",
    "RetryPolicy",
    "SamplePriceProvider",
    "YahooFinancePriceProvider",
    "parse_price",
    "provider_from_name",
    "sample_latest_prices",
    "sample_price_history",
    "sample_sectors",
]
