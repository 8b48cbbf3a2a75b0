"""Table providers (memory, CSV, sample): strict per symbol, partial failures named."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from finwiz.data import (
    CSVPriceProvider,
    InMemoryPriceProvider,
    PriceDataProvider,
    SamplePriceProvider,
    sample_latest_prices,
)
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from tests.data.conftest import make_prices


async def test_in_memory_prices_and_per_symbol_refusals() -> None:
    when = datetime(2024, 1, 5, tzinfo=UTC)
    provider = InMemoryPriceProvider({"aapl": 190.5, "BAD": float("nan"), "NEG": -3, "TXT": "N/A"}, timestamp=when)
    price = await provider.get_current_price(" aapl ")
    assert (price.symbol, price.price, price.timestamp, price.source) == (
        "AAPL",
        190.5,
        when,
        "memory",
    )
    for symbol in ("BAD", "NEG", "TXT", "NOPE"):
        with pytest.raises(PriceDataError) as info:
            await provider.get_current_price(symbol)
        assert info.value.symbol == symbol
        assert info.value.provider == "memory"
    with pytest.raises(InsufficientPriceDataError) as many:
        await provider.get_multiple_prices(["AAPL", "BAD", "NOPE", "aapl"])
    assert many.value.symbols == ["BAD", "NOPE"]


async def test_in_memory_history_slices_inclusive_range() -> None:
    history = make_prices(10, 2)
    provider = InMemoryPriceProvider(history=history)
    frame = await provider.get_historical_prices(["S1", "S0"], "2020-01-02", "2020-01-06")
    assert list(frame.columns) == ["S1", "S0"]
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06"]
    assert (await provider.get_current_price("S0")).price == pytest.approx(history["S0"].iloc[-1])
    with pytest.raises(InsufficientPriceDataError, match="S9"):
        await provider.get_historical_prices(["S0", "S9"])


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


async def test_csv_wide_gz_with_every_kind_of_bad_cell(tmp_path: Path) -> None:
    text = (
        "Date,GOOD,COMMA,NA,ZERO,NEG,DUP,DUP,GAP\n"
        "2024-01-03,11,1,1,1,1,1,1,\n"
        '2024-01-02,10,"1,234.5",N/A,0,-2,1,1,5\n'
        "2024-01-04,12,1,1,1,1,1,1,6\n"
    )
    provider = CSVPriceProvider(_write(tmp_path / "wide.csv.gz", text))
    good = await provider.get_current_price("GOOD")
    assert good.price == 12.0
    assert good.timestamp == datetime(2024, 1, 4, tzinfo=UTC)
    gap = await provider.get_current_price("GAP")
    assert gap.price == 6.0
    outcomes = await provider.fetch_prices(["COMMA", "NA", "ZERO", "NEG", "DUP"])
    reasons = {s: o.reason for s, o in outcomes.items() if isinstance(o, PriceDataError)}
    assert set(reasons) == {"COMMA", "NA", "ZERO", "NEG", "DUP"}
    assert "not positive" in reasons["ZERO"]
    assert "not positive" in reasons["NEG"]
    assert "listed twice" in reasons["DUP"]
    history = await provider.get_historical_prices(["GOOD", "GAP"])
    assert history.index.is_monotonic_increasing
    assert history["GOOD"].tolist() == [10.0, 11.0, 12.0]
    assert pd.isna(history.loc["2024-01-03", "GAP"])


async def test_csv_long_layout_with_duplicates(tmp_path: Path) -> None:
    text = (
        "symbol,date,price\n"
        "aaa,2024-01-02,10\nAAA,2024-01-01,9\nAAA,2024-01-02,10\n"
        "CCC,2024-01-01,5\nCCC,2024-01-01,6\n"
    )
    provider = CSVPriceProvider(_write(tmp_path / "long.csv", text))
    assert (await provider.get_current_price("AAA")).price == 10.0
    with pytest.raises(PriceDataError, match="different prices"):
        await provider.get_current_price("CCC")
    assert provider.symbols == ["AAA"]


def test_csv_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        CSVPriceProvider(tmp_path / "missing.csv")
    with pytest.raises(ConfigurationError, match="two columns"):
        CSVPriceProvider(_write(tmp_path / "one.csv", "Date\n2024-01-02\n"))


async def test_sample_provider_matches_bundled_sample() -> None:
    async with SamplePriceProvider() as provider:
        assert isinstance(provider, PriceDataProvider)
        prices = await provider.get_multiple_prices(list(sample_latest_prices().index))
    assert len(prices) == 20
    latest = sample_latest_prices()
    assert all(prices[s].price == pytest.approx(latest[s]) for s in latest.index)
    assert prices["AAPL"].timestamp == datetime(2022, 12, 28, tzinfo=UTC)
