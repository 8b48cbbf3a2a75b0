"""Market data: async price providers, the price service, pandas pipelines, the bundled sample."""

from finwiz.data.sample import (
    SAMPLE_ATTRIBUTION,
    sample_latest_prices,
    sample_price_history,
    sample_sectors,
)

__all__ = ["SAMPLE_ATTRIBUTION", "sample_latest_prices", "sample_price_history", "sample_sectors"]
