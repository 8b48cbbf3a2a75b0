"""The descent's neighbourhood kept between rounds (``_candidates._LotMoves``): the same moves as
built afresh, with only the assets whose trade changed priced again."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import finwiz.optimizer.discrete._candidates as candidates
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.discrete._candidates import _lot_moves, _LotMoves, _Moves, _Separable, asset_spans, ranges
from finwiz.optimizer.solve._csc import majors
from tests.optimizer.discrete.models import model_of
from tests.optimizer.discrete.reference import Instance


def _setting() -> tuple[ProblemData, _Separable, np.ndarray]:
    """Six assets, a $1,000 minimum trade, a no-sell name, an odd lot; and a candidate table."""
    inst = Instance(
        [f"A{i}" for i in range(6)],
        np.array([50.0, 80.0, 120.0, 200.0, 35.0, 410.0]),
        np.array([200.0, 150.0, 100.0, 60.0, 13.0, 20.0]),
        20_000.0,
        np.array([0.12, 0.16, 0.2, 0.2, 0.05, 0.2]),
        ["S", "S", "T", "T", "U", "U"],
        min_trade=1_000.0,
        no_sell=[2],
        lots={1: 10},
    )
    model = model_of(inst)
    data = model.data
    separable = _Separable.of_model(model)
    table = np.column_stack([np.zeros(data.n), np.array([20.0, -30.0, 10.0, 5.0, -13.0, 3.0])])
    return data, separable, table


def _same(a: _Moves, b: _Moves) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("owner", "shares", "buy", "sell", "scalars"))


@pytest.mark.parametrize("wide", [False, True])
def test_kept_neighbourhood_equals_a_fresh_one_along_a_walk(wide: bool) -> None:
    data, separable, table = _setting()
    kept = _LotMoves(data, separable, table)
    rng = np.random.default_rng(3)
    shares = np.zeros(data.n)
    for _ in range(12):
        moves = kept(shares, wide)
        assert _same(moves, _lot_moves(data, shares, separable, table, wide=wide))
        k = rng.integers(data.n)  # one or two assets move, as a descent round moves them
        shares = shares.copy()
        shares[k] += data.lot[k] * rng.choice([-2, -1, 1, 2])
        if rng.random() < 0.5:
            shares[(k + 1) % data.n] = 0.0


def test_only_the_assets_that_moved_are_priced_again(monkeypatch: pytest.MonkeyPatch) -> None:
    data, separable, table = _setting()
    kept = _LotMoves(data, separable, table)
    priced: list[np.ndarray] = []
    real = candidates._moves

    def spy(data_: ProblemData, owner: np.ndarray, option: np.ndarray) -> _Moves:
        priced.append(owner.copy())
        return real(data_, owner, option)

    monkeypatch.setattr(candidates, "_moves", spy)
    shares = np.zeros(data.n)
    kept(shares, False)
    assert set(np.concatenate(priced).tolist()) == set(range(data.n))
    priced.clear()
    shares[3] += data.lot[3]
    kept(shares, False)
    assert set(np.concatenate(priced).tolist()) == {3}


def test_moves_matrix_is_the_csc_of_its_row_column_pairs() -> None:
    """The moves' buy and sell columns placed at once: the CSC scipy builds from (row, column)
    pairs, explicit zeros (a move that only sells) kept, entry for entry."""
    rng = np.random.default_rng(3)
    n, owner = 7, np.array([0, 0, 2, 3, 3, 3, 6])
    buy = np.where(rng.random(owner.size) < 0.4, 0.0, rng.random(owner.size))
    sell = np.where(buy > 0, 0.0, rng.random(owner.size))
    moves = _Moves(owner, np.zeros(owner.size), buy, sell, np.zeros((owner.size, 5)))
    m = owner.size
    plain = sparse.csc_array(
        (np.concatenate([buy, sell]), (np.concatenate([owner, owner + n]), np.tile(np.arange(m), 2))), shape=(2 * n, m)
    )
    built = moves.matrix(n)
    assert built.shape == plain.shape
    for name in ("indptr", "indices", "data"):
        assert getattr(built, name).tolist() == getattr(plain, name).tolist()


def test_ranges_are_the_concatenated_aranges() -> None:
    rng = np.random.default_rng(3)
    start, size = rng.integers(0, 50, 12), rng.integers(0, 5, 12)
    want = np.concatenate([np.arange(a, a + k) for a, k in zip(start, size, strict=True)])
    assert np.array_equal(ranges(start, size), want)
    assert ranges(np.zeros(0, np.intp), np.zeros(0, np.intp)).size == 0


def test_majors_are_the_coo_rows_of_a_csr() -> None:
    matrix = sparse.random_array((7, 5), density=0.4, format="csr", rng=np.random.default_rng(3))
    assert np.array_equal(majors(matrix.indptr), sparse.coo_array(matrix).row)
    assert np.array_equal(majors(sparse.csc_array(matrix).indptr), sparse.coo_array(sparse.csc_array(matrix)).col)


def test_asset_spans_are_each_rows_least_and_greatest_asset() -> None:
    rng = np.random.default_rng(4)
    row, asset = rng.integers(0, 6, 30), rng.integers(0, 9, 30)
    least, most = asset_spans(row, asset, 8, 9)  # rows 6 and 7 hold no entry
    for r in range(8):
        mine = asset[row == r]
        assert least[r] == (mine.min() if mine.size else 9)
        assert most[r] == (mine.max() if mine.size else -1)
