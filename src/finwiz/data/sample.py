"""The bundled sample: 20 S&P 500 stocks, daily adjusted closes 1990-2022, and their GICS sectors.

Source: the S&P 500 sample dataset bundled with skfolio (BSD-3-Clause, "for testing and example
purposes" only); sectors from the public GICS classification. See ``_bundled/ATTRIBUTION.md``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import pandas as pd

__all__ = ["SAMPLE_ATTRIBUTION", "sample_latest_prices", "sample_price_history", "sample_sectors"]

SAMPLE_ATTRIBUTION = (
    "Sample prices: S&P 500 sample dataset bundled with skfolio (BSD-3-Clause), for testing and "
    "example purposes only; sectors: public GICS classification."
)


def _bundled(name: str) -> Traversable:
    return resources.files("finwiz.data").joinpath("_bundled", name)


@cache
def _history() -> pd.DataFrame:
    with resources.files("finwiz.data").joinpath("_bundled/sp500_20_prices.csv.gz").open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip", index_col="Date", parse_dates=["Date"])
    frame.index.name = "date"
    frame.columns.name = "symbol"
    return frame.astype(float)


def sample_price_history() -> pd.DataFrame:
    """Daily adjusted closes (index: date, columns: the 20 symbols). A fresh copy each call."""
    return _history().copy()


def sample_latest_prices() -> pd.Series:
    """The last close of each sample symbol (2022-12-28)."""
    history = _history()
    return history.iloc[-1].rename("price")


def sample_sectors() -> pd.Series:
    """GICS sector of each sample symbol (index: symbol)."""
    with _bundled("sp500_20_sectors.csv").open("r") as handle:
        frame = pd.read_csv(handle)
    return pd.Series(frame["sector"].to_numpy(), index=pd.Index(frame["symbol"], name="symbol"), name="sector")
