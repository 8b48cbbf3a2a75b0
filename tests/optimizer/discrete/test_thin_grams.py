"""The Gram entries of thin squared rows (at most one entry a column) read off the CSC's entries
(``_thin.thin_gram_entries``): bit for bit those of the dense computation they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete import _pricing
from finwiz.optimizer.discrete._thin import thin_gram_entries


def _thin(seed: int, m: int, n: int, filled: float = 0.8) -> sparse.csc_array:
    """Each buy and sell column one entry (or none), in its asset's own row or any, signs mixed;
    the scalar columns in one row."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((m, 2 * n + SCALARS))
    for j in range(2 * n):
        if rng.random() < filled:
            own = (j % n) % m if rng.random() < 0.7 else int(rng.integers(m))
            dense[own, j] = rng.normal() * 10.0 ** rng.integers(-6, 3)
    dense[int(rng.integers(m)), 2 * n :] = rng.normal(size=SCALARS) * (rng.random(SCALARS) < 0.7)
    s = sparse.csc_array(dense)
    s.data[rng.random(s.nnz) < 0.05] = -0.0  # stored zeros (cancelled duplicates) of either sign
    s.data[rng.random(s.nnz) < 0.05] = 0.0
    return s


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("m", "n"), [(30, 25), (101, 100), (432, 431)])
def test_thin_gram_entries_are_the_dense_ones_bit_for_bit(
    seed: int, m: int, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _thin(seed, m, n)
    thin = thin_gram_entries(s, n)
    assert thin is not None
    monkeypatch.setattr(_pricing, "thin_gram_entries", lambda s, n: None)
    dense = _pricing._gram_entries(s, n)
    for got, want in zip(thin, dense, strict=True):
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()


def test_rows_not_thin_go_the_dense_way() -> None:
    """Two entries in a column (a factor's), or the scalar columns in two rows: None."""
    s = _thin(1, 30, 25).toarray()
    two = s.copy()
    two[:, 3] = 1.0
    assert thin_gram_entries(sparse.csc_array(two), 25) is None
    spread = s.copy()
    spread[:, 50:] = 0.0
    spread[[0, 1], 50] = 1.0
    assert thin_gram_entries(sparse.csc_array(spread), 25) is None
    assert thin_gram_entries(sparse.csc_array(s), 25) is not None
