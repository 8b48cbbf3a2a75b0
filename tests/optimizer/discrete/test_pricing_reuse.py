"""A re-solve at new prices keeps its coupled rows' matrices and its pricer's Gram entries
(``optimizer/_kept``): the pieces it gets are those a fresh build gives, entry for entry; the
table of kept builds stays bounded."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz import PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine, _kept, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.discrete._pricing import Pieces
from finwiz.optimizer.solve._assembler import Model

SYMBOLS = [f"A{i}" for i in range(8)]


def _model(scale: float, sector_cap: float = 0.4) -> Model:
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": 40 + 13 * i} for i, s in enumerate(SYMBOLS)],
        target_weights={s: 0.95 / len(SYMBOLS) for s in SYMBOLS},
        cash=500.0,
        sectors={s: f"S{i % 3}" for i, s in enumerate(SYMBOLS)},
        max_sector_weight=sector_cap,
        max_turnover=0.2,
        transaction_cost_rate=0.001,
        method="minimize_trades",
    )
    prices = {s: scale * (10.0 + 7 * i) + i * (scale - 1.0) ** 2 for i, s in enumerate(SYMBOLS)}
    data = build_problem_data(config, prices)
    terms = [*RebalancingEngine().strategies[config.method].terms(data), *constraint_terms()]
    return Model.of([t for t in terms if t.applies(data)], data)


_GRAMS = ("s", "s_t", "col_norm", "g_bs", "g_bx", "g_sx", "g_xx")
_ROWS = ("a_trade", "by_row", "a_scalar", "offset", "lower", "upper")


def _equal(a: object, b: object) -> bool:
    if hasattr(a, "toarray"):
        return (a != b).nnz == 0  # type: ignore[operator, union-attr]
    return np.array_equal(a, b)  # type: ignore[arg-type]


def _fresh(model: Model) -> Pieces:
    _kept.clear_kept()
    return Pieces.of(model)


def test_new_prices_reuse_the_rows_and_grams() -> None:
    first = _fresh(_model(1.0))
    again = Pieces.of(_model(1.1))
    for name in _GRAMS:
        assert getattr(again.pricer, name) is getattr(first.pricer, name), name
    assert again.rows.a_trade is first.rows.a_trade
    assert not np.array_equal(again.rows.offset, first.rows.offset)  # the prices did move the rows
    fresh = _fresh(_model(1.1))
    for name in _GRAMS:
        assert _equal(getattr(again.pricer, name), getattr(fresh.pricer, name)), name
    for name in _ROWS:
        assert _equal(getattr(again.rows, name), getattr(fresh.rows, name)), name
    assert again.pricer.unit == fresh.pricer.unit
    assert again.rows.labels == fresh.rows.labels


def test_other_rows_are_rebuilt() -> None:
    first = _fresh(_model(1.0))
    other = Pieces.of(_model(1.0, sector_cap=0.35))  # the sector rows' coefficients move with the cap
    assert other.rows.a_trade is not first.rows.a_trade
    assert _equal(other.rows.a_trade, _fresh(_model(1.0, sector_cap=0.35)).rows.a_trade)


def test_large_rows_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kept, "_KEPT_ENTRIES", 10)
    _kept.clear_kept()
    Pieces.of(_model(1.0))
    assert not _kept._table


def test_the_kept_builds_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many structures (each sector cap moves the rows) keep at most ``_SIZE`` builds, the latest
    ones: the last structure is found again, the first is built anew."""
    monkeypatch.setattr(_kept, "_SIZE", 3)
    _kept.clear_kept()
    first = Pieces.of(_model(1.0, sector_cap=0.30))
    for cap in (0.31, 0.32, 0.33, 0.34):
        last = Pieces.of(_model(1.0, sector_cap=cap))
        assert len(_kept._table) <= 3
    assert Pieces.of(_model(1.1, sector_cap=0.34)).rows.a_trade is last.rows.a_trade
    again = Pieces.of(_model(1.0, sector_cap=0.30))
    assert again.rows.a_trade is not first.rows.a_trade
    assert _equal(again.rows.a_trade, first.rows.a_trade)


def test_new_prices_reuse_the_shared_rows_found() -> None:
    first = _fresh(_model(1.0))
    found = first.pricer.grams.shared
    again = Pieces.of(_model(1.1))
    assert again.pricer.grams.shared is found  # not searched for again
    assert np.array_equal(again.pricer.shared_rows, _fresh(_model(1.1)).pricer.shared_rows)
