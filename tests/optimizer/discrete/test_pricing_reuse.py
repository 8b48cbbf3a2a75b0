"""A re-solve at new prices keeps its coupled rows' matrices and its pricer's Gram entries
(``optimizer/_kept``): the pieces it gets are those a fresh build gives, entry for entry; the
table of kept builds stays bounded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import sparse

from finwiz import PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine, _kept, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete._pricing import Pieces, _gram_entries, _Grams, _Rows, _summed
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


@pytest.mark.parametrize("seed", range(6))
def test_shared_rows_placed_as_scipy_slices_them(seed: int) -> None:
    """The shared rows placed from the CSC's entries equal scipy's row slice and ``toarray``,
    entry for entry (with repeated entries too, which ``toarray`` sums)."""
    rng = np.random.default_rng(seed)
    m, cols, nnz = 12, 21, 40
    r, c = rng.integers(0, m, nnz), rng.integers(0, cols, nnz)
    canonical = sparse.csc_array((rng.normal(size=nnz), (r, c)), shape=(m, cols))
    repeated = sparse.csc_array((rng.normal(size=nnz), r, np.searchsorted(np.sort(c), np.arange(cols + 1))), (m, cols))
    assert canonical.has_canonical_format
    for s in (canonical, repeated):
        grams = object.__new__(_Grams)
        shared = np.sort(rng.choice(m, int(rng.integers(0, m)), replace=False))
        grams.__dict__.update(s=s, shared=shared)
        assert np.array_equal(grams.shared_dense(), s[shared, :].toarray())


def test_few_shared_rows_kept_with_the_grams() -> None:
    first = _fresh(_model(1.0))
    again = Pieces.of(_model(1.1))
    assert again.pricer.shared_rows is first.pricer.shared_rows
    s = first.pricer.grams.s
    assert np.array_equal(first.pricer.shared_rows, s[first.pricer.grams.shared, :].toarray())


def _shared_by_unique(s: sparse.csc_array) -> np.ndarray:
    """The shared rows by the plain count: the distinct (row, asset) pairs, per row."""
    n = (s.shape[1] - SCALARS) // 2
    coo = s.tocoo()
    on = coo.col < 2 * n
    pairs = np.unique(np.stack([coo.row[on], coo.col[on] % max(n, 1)]), axis=1)
    scalar = np.zeros(s.shape[0], dtype=bool)
    scalar[coo.row[~on]] = True
    return np.flatnonzero((np.bincount(pairs[0], minlength=s.shape[0]) > 1) | scalar)


@pytest.mark.parametrize("seed", range(8))
def test_shared_rows_found_as_the_distinct_assets_count_them(seed: int) -> None:
    """Rows with entries of two assets (buy or sell) or of a scalar column, found by each row's
    least and greatest asset, are those the distinct (row, asset) pairs give; empty rows too."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 9)), int(rng.integers(1, 15))
    nnz = int(rng.integers(0, 3 * m))
    r, c = rng.integers(0, m, nnz), rng.integers(0, 2 * n + SCALARS, nnz)
    s = sparse.csc_array((rng.normal(size=nnz), (r, c)), shape=(m, 2 * n + SCALARS))
    grams = object.__new__(_Grams)
    grams.__dict__["s"] = s
    assert np.array_equal(grams.shared, _shared_by_unique(s))


@pytest.mark.parametrize("seed", range(6))
def test_gram_entries_of_one_scalar_row_as_the_plain_products(seed: int) -> None:
    """With the scalar columns in one row (a cash row), the buy and sell columns' products with
    them as outer products equal the dense matrix products, entry for entry."""
    rng = np.random.default_rng(seed)
    m, n = 40, 25
    dense = sparse.random(m, 2 * n, density=0.2, random_state=seed).toarray()
    scalars = np.zeros((m, SCALARS))
    scalars[rng.integers(m)] = rng.normal(size=SCALARS) * (rng.random(SCALARS) < 0.7)
    s = sparse.csc_array(np.hstack([dense, scalars]))
    _, _, g_bx, g_sx, _ = _gram_entries(s, n)
    assert np.array_equal(g_bx, dense[:, :n].T @ scalars)
    assert np.array_equal(g_sx, dense[:, n:].T @ scalars)


def test_summed_in_place_as_the_plain_expression() -> None:
    """The moves' changes summed in place equal the expression they replace, bit for bit."""
    rng = np.random.default_rng(5)
    buy, sell, rest = rng.normal(size=(3, 20, 900)) * rng.choice([0.0, 1e-9, 1.0, 1e6], size=(3, 20, 900))
    d_buy, d_sell = rng.normal(size=(2, 900))
    want = buy * d_buy + sell * d_sell + rest
    assert np.array_equal(_summed(buy.copy(), d_buy, sell.copy(), d_sell, rest), want)


def test_row_labels_built_on_demand_as_each_groups_members_in_row_order() -> None:
    """The coupled rows' labels (only a conflict names them): (group, member) per row, in order."""
    empty = sparse.csc_array((3, 4))
    named = (("cash", ("CASH",)), ("sector", ("Energy", "Tech")))
    rows = _Rows(empty, np.zeros((3, SCALARS)), np.zeros(3), -np.ones(3), np.ones(3), empty.tocsr(), named)
    assert rows.labels == (("cash", "CASH"), ("sector", "Energy"), ("sector", "Tech"))
    assert replace(rows, lower=np.zeros(3)).labels == rows.labels
