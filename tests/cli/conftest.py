"""The command line's shared book: three assets, two sectors, a cash balance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

THREE_ASSETS = """\
[holdings]
AAPL = 300
MSFT = 20
JNJ = 100

[target_weights]
AAPL = 0.3
MSFT = 0.3
JNJ = 0.3
"""
"""Holdings and targets (the tables every CLI book here shares)."""


def book_toml(sectors: Mapping[str, str], settings: str = "") -> str:
    """The three-asset book with ``settings`` (TOML lines) and these sector labels."""
    labels = "".join(f"{symbol} = {json.dumps(label)}\n" for symbol, label in sectors.items())
    return f"cash = 10000.0\n{settings}tolerance = 0.0\n\n{THREE_ASSETS}\n[sectors]\n{labels}"


PORTFOLIO_TOML = book_toml(
    {"AAPL": "Information Technology", "MSFT": "Information Technology", "JNJ": "Health Care"},
    "max_sector_weight = 0.6\n",
)


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    """The book as ``acct.toml``."""
    path = tmp_path / "acct.toml"
    path.write_text(PORTFOLIO_TOML, encoding="utf-8")
    return path
