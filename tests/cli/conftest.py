"""The command line's shared book: three assets, two sectors, a cash balance."""

from __future__ import annotations

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

PORTFOLIO_TOML = f"""\
cash = 10000.0
max_sector_weight = 0.6
tolerance = 0.0

{THREE_ASSETS}
[sectors]
AAPL = "Information Technology"
MSFT = "Information Technology"
JNJ = "Health Care"
"""


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    """The book as ``acct.toml``."""
    path = tmp_path / "acct.toml"
    path.write_text(PORTFOLIO_TOML, encoding="utf-8")
    return path
