"""MarketDataProvider: sectors and ESG scores from CSV files."""

from __future__ import annotations

from pathlib import Path

import pytest

from finwiz.data import MarketDataProvider, sample_sectors
from finwiz.errors import ConfigurationError, InvalidPortfolioError


def test_bundled_sectors_by_default() -> None:
    market = MarketDataProvider()
    assert market.get_sectors(["aapl", "XOM"]) == {
        "AAPL": "Information Technology",
        "XOM": "Energy",
    }
    assert market.get_sectors() == dict(sample_sectors())


def test_unclassified_is_in_no_sector_and_unlisted_is_named(tmp_path: Path) -> None:
    # One rule with the optimizer: a symbol labelled Unclassified (or empty, N/A) is in no sector,
    # so it is left out of the mapping instead of refused; one the file does not list is named.
    path = tmp_path / "sectors.csv"
    path.write_text("symbol,sector\nAAA,Energy\nBBB,Unclassified\nCCC,\nDDD,n/a\n")
    market = MarketDataProvider(path)
    assert market.get_sectors(["AAA", "BBB", "CCC", "DDD"]) == {"AAA": "Energy"}
    with pytest.raises(InvalidPortfolioError, match="EEE, FFF") as info:
        market.get_sectors(["AAA", "BBB", "EEE", "FFF"])
    assert info.value.field == "sectors"
    assert info.value.symbol == "EEE"
    assert market.get_sectors(["AAA", "BBB", "EEE"], required=False) == {"AAA": "Energy"}


def test_esg_scores_are_parsed_and_bad_ones_refused(tmp_path: Path) -> None:
    good = tmp_path / "esg.csv"
    good.write_text("symbol,esg_score\naaa,71.5\nBBB,40\n")
    assert MarketDataProvider(esg_path=good).get_esg_scores(["AAA"]) == {"AAA": 71.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,esg_score\nAAA,N/A\n")
    with pytest.raises(InvalidPortfolioError, match="AAA"):
        MarketDataProvider(esg_path=bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("symbol,esg_score\nAAA,1\naaa,2\n")
    with pytest.raises(InvalidPortfolioError, match="twice"):
        MarketDataProvider(esg_path=dup)
    with pytest.raises(ConfigurationError, match="esg_score"):
        MarketDataProvider(esg_path=tmp_path / "esg.csv", sectors_path=good)
