"""The limits a request sets, against the plain computations they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz import Holding, PortfolioConfiguration
from finwiz.optimizer.describe._limits import _members
from finwiz.optimizer.describe._request_limits import _sectors


def _plain_sectors(config: PortfolioConfiguration, symbols: list[str]) -> tuple[tuple[str, ...], list[int]]:
    names = tuple(sorted({config.sectors[s] for s in symbols if s in config.sectors}))
    return names, [names.index(config.sectors[s]) if s in config.sectors else -1 for s in symbols]


@pytest.mark.parametrize("unclassified", [0, 1, 5, 7])
def test_the_sectors_are_each_symbols_sector(unclassified: int) -> None:
    """Sector names (sorted), each asset's sector (-1: none) and the note naming up to five
    unclassified assets, against the per-symbol reading."""
    classified = {f"S{i}": ("Tech", "Energy", "Banks")[i % 3] for i in range(6)}
    loose = [f"U{i}" for i in range(unclassified)]
    targets = {s: 0.9 / (len(classified) + len(loose)) for s in [*loose[:2], *classified, *loose[2:]]}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="S1", shares=5.0)],
        target_weights=targets,
        cash=10_000.0,
        sectors=classified,
        max_sector_weight=0.6,
    )
    symbols = config.symbols
    notes: list[str] = []
    names, sector_of, cap = _sectors(config, {}, notes, symbols)
    assert (names, sector_of.tolist()) == _plain_sectors(config, symbols)
    assert sector_of.dtype == np.int64
    assert cap is not None
    assert cap.tolist() == [0.6] * len(names)
    plain = [s for s in symbols if s not in classified]
    if not plain:
        assert notes == []
    else:
        shown = ", ".join(plain[:5]) + (", ..." if len(plain) > 5 else "")
        assert notes == [
            f"{len(plain)} asset{'s' if len(plain) != 1 else ''} without a sector ({shown}): unclassified, "
            f"in no sector, so no sector cap applies to them"
        ]


@pytest.mark.parametrize("idx", [[], [2], [0, 3], [4, 1, 1], list(range(5))])
def test_members_are_the_symbols_of_the_indices(idx: list[int]) -> None:
    symbols = ("A", "B", "C", "D", "E")
    got = _members(symbols, np.array(idx, dtype=np.int64))
    assert type(got) is tuple
    assert got == tuple(symbols[i] for i in idx)
