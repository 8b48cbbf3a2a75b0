"""A dense covariance's root as rows: evaluated through a kept sparse matrix, to the same values."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer.describe._model import COST, SCALARS, Affine, trade_vector


def test_large_dense_rows_evaluate_to_the_matrix_product() -> None:
    rng = np.random.default_rng(2)
    n = 800  # 2 x 800 x 800 entries: past the size from which a kept sparse matrix is used
    matrix = rng.normal(size=(n, n))
    x0, base = rng.uniform(0, 0.01, n), rng.uniform(0, 0.01, n)
    rows = Affine.weights_dense(matrix, x0, base)
    assert rows.vals.size >= 1_000_000
    for seed in range(3):
        step = np.random.default_rng(seed)
        buy, sell = step.uniform(0, 1e-3, n), step.uniform(0, 1e-3, n)
        z = trade_vector(buy, sell, cost=1e-4)
        assert len(z) == 2 * n + SCALARS
        expected = matrix @ (x0 + buy - sell - base)
        np.testing.assert_allclose(rows.evaluate(z), expected, rtol=1e-10, atol=1e-14)
    assert "_rest" in rows.__dict__  # split once (the matrix, the other triplets), kept for the next evaluation


def test_small_rows_evaluate_alike() -> None:
    rng = np.random.default_rng(3)
    n = 30
    matrix = rng.normal(size=(4, n))
    x0 = rng.uniform(0, 0.01, n)
    rows = Affine.weights_dense(matrix, x0)
    buy, sell = rng.uniform(0, 1e-3, n), rng.uniform(0, 1e-3, n)
    np.testing.assert_allclose(rows.evaluate(trade_vector(buy, sell, 0.0)), matrix @ (x0 + buy - sell), rtol=1e-12)
    assert "_csr" not in rows.__dict__


def test_kept_column_places_follow_the_asset_count() -> None:
    """Rows on a scalar column read it after the buys and sells of however many assets ``z`` has."""
    rows = Affine(np.array([0, 0]), np.array([0, COST]), np.array([1.0, 2.0]), np.zeros(1))
    for n in (3, 5, 3):
        buy, sell = np.arange(1.0, n + 1), np.full(n, 7.0)
        assert rows.evaluate(trade_vector(buy, sell, cost=0.5))[0] == 1.0 + 2.0 * 0.5


def test_a_dense_root_squares_to_the_same_weight_rows_as_its_triplets() -> None:
    """The QP's weight block read from the kept matrix is the one rebuilt from the triplets."""
    from finwiz.optimizer.solve._qp_rows import _weight_rows

    rng = np.random.default_rng(4)
    n = 40
    x0, base = rng.uniform(0, 0.02, n), rng.uniform(0, 0.02, n)
    rows = Affine.weights_dense(rng.normal(size=(n, n)), x0, base)
    assert rows.dense is not None
    bare = Affine(rows.rows, rows.cols, rows.vals, rows.offset)  # the same rows without the matrix
    assert bare.dense is None
    got, from_triplets = _weight_rows([rows], x0), _weight_rows([bare], x0)
    assert got is not None
    assert from_triplets is not None
    np.testing.assert_array_equal(got[0], from_triplets[0])
    np.testing.assert_array_equal(got[1], from_triplets[1])


def test_the_gram_entries_of_a_dense_root_are_those_of_its_triplets() -> None:
    """The whole-share pricer's Gram entries with a dense root read from its matrix, against the
    same rows as bare triplets (a scalar row and a diagonal beside them)."""
    from finwiz.optimizer.discrete._pricing import _Grams

    rng = np.random.default_rng(6)
    n = 400  # past the size from which the Gram entries are taken sparse
    x0 = rng.uniform(0, 0.01, n)
    dense = Affine.weights_dense(rng.normal(size=(n, n)), x0)
    bare = Affine(dense.rows, dense.cols, dense.vals, dense.offset)
    others = [Affine.weights_diag(rng.uniform(0.1, 1, n), x0), Affine.scalar(COST, 2.0, 0.1)]
    with_matrix, from_triplets = Affine.stack([*others, dense]), Affine.stack([*others, bare])
    assert with_matrix.dense_rows
    assert not from_triplets.dense_rows
    got, expected = _Grams.of(with_matrix, n), _Grams.of(from_triplets, n)
    for name in ("col_norm", "g_bs", "g_bx", "g_sx", "g_xx"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12, atol=1e-12)
    assert np.abs(got.g_bs).max() > 1.0  # the root's buy-sell products are in it
    assert "s" not in got.__dict__  # the n^2 triplets not made a sparse matrix for the entries
    rows = rng.normal(size=with_matrix.m)
    np.testing.assert_allclose(got.transposed(rows), expected.s_t @ rows, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.transposed(rows), expected.transposed(rows), rtol=1e-12, atol=1e-12)
    assert (got.s != expected.s).nnz == 0  # built where a caller asks for it


def test_stacked_dense_rows_evaluate_to_their_triplets() -> None:
    """A dense block stacked after other rows: evaluated by blocks, the values of its triplets."""
    rng = np.random.default_rng(7)
    n = 800
    x0 = rng.uniform(0, 0.01, n)
    dense = Affine.weights_dense(rng.normal(size=(n, n)), x0)
    others = [Affine.weights_diag(rng.uniform(0.1, 1, n), x0), Affine.scalar(COST, 2.0, 0.1)]
    stacked = Affine.stack([*others, dense])
    bare = Affine(stacked.rows, stacked.cols, stacked.vals, stacked.offset)
    z = trade_vector(rng.uniform(0, 1e-3, n), rng.uniform(0, 1e-3, n), cost=1e-4)
    np.testing.assert_allclose(stacked.evaluate(z), bare.evaluate(z), rtol=1e-12, atol=1e-15)
    assert "_rest" in stacked.__dict__
    assert "_csr" in bare.__dict__


def test_a_roots_triplets_are_written_only_where_read() -> None:
    """``weights_dense`` and a stack holding it defer their n^2 triplets: the count, the rows
    outside the block and the values need none; read (or pickled), they are the explicit ones."""
    import pickle

    rng = np.random.default_rng(8)
    n = 40
    matrix, x0 = rng.normal(size=(n, n)), rng.uniform(0, 0.01, n)
    others = [Affine.weights_diag(rng.uniform(0.1, 1, n), x0), Affine.scalar(COST, 2.0, 0.1)]
    stacked = Affine.stack([others[0], Affine.weights_dense(matrix, x0), others[1]])
    assert stacked.nnz == 2 * n + 2 * n * n + 1
    z = trade_vector(rng.uniform(0, 1e-3, n), rng.uniform(0, 1e-3, n), cost=1e-4)
    rest = stacked.rest(n)
    assert "_deferred" in stacked.__dict__  # nothing above wrote the triplets
    explicit = Affine.stack([others[0], Affine(*_written(matrix), matrix @ x0), others[1]])
    np.testing.assert_array_equal(rest[0], np.concatenate([np.arange(n), np.arange(n), [2 * n]]))
    copy = pickle.loads(pickle.dumps(stacked))
    for got in (stacked, copy):
        for name in ("rows", "cols", "vals", "offset"):
            np.testing.assert_array_equal(getattr(got, name), getattr(explicit, name))
        np.testing.assert_allclose(got.evaluate(z), explicit.evaluate(z), rtol=1e-12, atol=1e-15)
    assert "_deferred" not in stacked.__dict__
    assert stacked.dense_rows[0][1] is matrix


def _written(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, n = matrix.shape
    rows = np.concatenate([np.repeat(np.arange(m), n), np.repeat(np.arange(m), n)])
    cols = np.concatenate([np.tile(np.arange(n), m), np.tile(np.arange(n, 2 * n), m)])
    return rows, cols, np.concatenate([matrix.ravel(), -matrix.ravel()])


def test_a_thread_reaching_the_deferred_read_after_another_wrote_the_triplets_gets_them() -> None:
    """Two threads may both miss ``rows`` and enter ``__getattr__``; the one that arrives after the
    other wrote the triplets (and dropped the deferral) reads them instead of failing."""
    rng = np.random.default_rng(3)
    matrix, x0 = rng.normal(size=(5, 5)), rng.uniform(0, 0.01, 5)
    rows = Affine.weights_dense(matrix, x0)
    written = rows.rows  # the first thread's read writes the triplets
    late = rows.__getattr__("rows")  # the second thread, already past the normal lookup
    np.testing.assert_array_equal(late, written)
    with pytest.raises(AttributeError):
        rows.__getattr__("unknown")
