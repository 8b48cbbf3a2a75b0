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


def test_unclassified_counts_as_missing_and_missing_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sectors.csv"
    path.write_text("symbol,sector\nAAA,Energy\nBBB,Unclassified\nCCC,\n")
    market = MarketDataProvider(path)
    with pytest.raises(InvalidPortfolioError, match="BBB, CCC") as info:
        market.get_sectors(["AAA", "BBB", "CCC"])
    assert info.value.field == "sectors" and info.value.symbol == "BBB"
    assert market.get_sectors(["AAA", "BBB"], required=False) == {"AAA": "Energy"}


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
