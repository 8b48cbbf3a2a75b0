"""A dense covariance's low-rank-plus-diagonal split: found where it exists, checked, refused where not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz.errors import InvalidPortfolioError
from finwiz.risk import FactorModel
from finwiz.risk._model import _symmetric
from finwiz.risk._split import SPLIT_TOLERANCE, low_rank_split


def _factor_form(n: int, k: int, seed: int = 0, floor: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0, 0.01, (n, k)) * np.geomspace(1.0, 0.05, k)
    idio = rng.uniform(floor, 4 * floor, n)
    return loadings @ loadings.T + np.diag(idio), loadings, idio


def _frame(values: np.ndarray) -> pd.DataFrame:
    symbols = [f"S{i:03d}" for i in range(len(values))]
    return pd.DataFrame(values, index=symbols, columns=symbols)


def _assert_reproduces(matrix: np.ndarray, root: np.ndarray, d: np.ndarray) -> None:
    assert (d >= 0).all()
    gap = np.abs(matrix - root @ root.T - np.diag(d)).max()
    assert gap <= SPLIT_TOLERANCE * np.diag(matrix).max()


@pytest.mark.parametrize(("n", "k"), [(40, 3), (200, 10), (301, 40)])
def test_a_factor_covariance_splits_into_its_factors_and_idiosyncratic_variances(n: int, k: int) -> None:
    matrix, loadings, idio = _factor_form(n, k)
    split = low_rank_split(matrix)
    assert split is not None
    root, d = split
    assert root.shape == (n, k)
    np.testing.assert_allclose(d, idio, rtol=1e-8)
    np.testing.assert_allclose(root @ root.T, loadings @ loadings.T, atol=1e-14)
    _assert_reproduces(matrix, root, d)


def test_a_shrunk_sample_covariance_splits() -> None:
    """Ledoit-Wolf towards a multiple of the identity on fewer days than assets: Gram + c I."""
    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.01, (30, 160))
    centred = returns - returns.mean(axis=0)
    sample = centred.T @ centred / 29
    matrix = 0.7 * sample + 0.3 * np.trace(sample) / 160 * np.eye(160)
    split = low_rank_split(matrix)
    assert split is not None
    root, d = split
    assert root.shape[1] == 29  # 30 days, centred
    np.testing.assert_allclose(d, 0.3 * np.trace(sample) / 160, rtol=1e-6)
    _assert_reproduces(matrix, root, d)


def test_a_full_rank_covariance_has_no_split_and_keeps_its_exact_root() -> None:
    rng = np.random.default_rng(4)
    b = rng.normal(size=(120, 120))
    matrix = b @ b.T / 120
    assert low_rank_split(matrix) is None
    model = FactorModel.from_covariance(_frame(matrix))
    assert model.n_factors == 120
    np.testing.assert_allclose(model.covariance().to_numpy(), matrix, atol=1e-12)


def test_a_factor_on_one_group_is_refused_or_exact() -> None:
    """A factor that loads on two assets only (not seen across the three groups): whatever the
    split says, it is never a wrong covariance."""
    matrix, _, _ = _factor_form(90, 4, seed=5)
    pair = np.zeros(90)
    pair[[0, 3]] = 0.02  # assets 0 and 3 share group 0
    matrix = matrix + np.outer(pair, pair)
    split = low_rank_split(matrix)
    if split is not None:
        _assert_reproduces(matrix, *split)
    model = FactorModel.from_covariance(_frame(matrix))
    np.testing.assert_allclose(model.covariance().to_numpy(), matrix, atol=1e-12)


def test_a_diagonal_covariance_is_its_idiosyncratic_variances() -> None:
    variances = np.linspace(1e-4, 4e-4, 50)
    split = low_rank_split(np.diag(variances))
    assert split is not None
    root, d = split
    assert root.shape == (50, 0)
    np.testing.assert_allclose(d, variances)


def test_a_negative_diagonal_is_not_split_and_is_refused() -> None:
    """Low rank minus a diagonal: the shape of a split but not PSD."""
    _, loadings, _ = _factor_form(80, 3)
    bad = loadings @ loadings.T - 1e-4 * np.eye(80)
    assert low_rank_split(bad) is None
    with pytest.raises(InvalidPortfolioError, match="positive semidefinite"):
        FactorModel.from_covariance(_frame(bad))


def test_from_covariance_keeps_the_split_as_a_factor_model() -> None:
    matrix, _, idio = _factor_form(120, 6, seed=8)
    model = FactorModel.from_covariance(_frame(matrix))
    assert model.n_factors == 6
    np.testing.assert_allclose(model.idiosyncratic_variance.to_numpy(), idio, rtol=1e-8)
    np.testing.assert_allclose(model.covariance().to_numpy(), matrix, atol=SPLIT_TOLERANCE * matrix.max())
    root = model.exposure_root()
    assert root.shape == (120, 6)


@pytest.mark.parametrize("n", [5, 300, 600])
def test_the_symmetry_check_is_numpy_allclose(n: int) -> None:
    rng = np.random.default_rng(n)
    base = rng.normal(size=(n, n))
    base = base + base.T
    for size in (0.0, 1e-13, 5e-6, 2e-5, 1e-3):  # around allclose's rtol of 1e-5
        for i, j in ((0, n - 1), (n - 1, 0), (n // 2, n // 3)):
            edited = base.copy()
            edited[i, j] *= 1 + size
            assert _symmetric(edited, atol=1e-12) == np.allclose(edited, edited.T, atol=1e-12)


def test_an_asymmetric_covariance_is_refused() -> None:
    matrix, _, _ = _factor_form(300, 3)
    matrix[250, 7] *= 1.001
    with pytest.raises(InvalidPortfolioError, match="not symmetric"):
        FactorModel.from_covariance(_frame(matrix))


def test_a_covariance_near_but_not_of_the_form_keeps_its_exact_root() -> None:
    """Factors plus a diagonal plus a full-rank part of 1e-6 of the largest variance: beyond
    the tolerance, so no split; the model is the exact root."""
    matrix, _, _ = _factor_form(150, 5, seed=9)
    rng = np.random.default_rng(10)
    noise = rng.normal(size=(150, 150))
    matrix = matrix + 1e-6 * np.diag(matrix).max() * noise @ noise.T / 150
    assert low_rank_split(matrix) is None
    model = FactorModel.from_covariance(_frame(matrix))
    assert model.n_factors == 150
    np.testing.assert_allclose(model.covariance().to_numpy(), matrix, atol=1e-15)


def test_a_full_rank_covariance_is_refused_before_a_whole_cross_block_is_sampled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More days than assets: one square block of one more asset than a split may have factors
    already has full rank, so no randomised range as wide as that is drawn and decomposed."""
    widths: list[int] = []
    eigh = np.linalg.eigh

    def spy(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        widths.append(len(matrix))
        return eigh(matrix)

    monkeypatch.setattr(np.linalg, "eigh", spy)
    rng = np.random.default_rng(8)
    returns = rng.normal(0, 0.01, (900, 600))
    assert low_rank_split(returns.T @ returns / 900) is None
    assert widths  # the small samples ran
    assert max(widths) <= 128  # not the one of 600 // 4 = 150 columns


def test_a_split_with_as_many_factors_as_allowed_is_still_found() -> None:
    """The early refusal looks at a block of one more asset than a split may have factors: a
    covariance with the most factors allowed still splits."""
    n = 124  # n // 4 - 1 = 30 factors at most
    matrix, _, idio = _factor_form(n, 30, seed=9)
    split = low_rank_split(matrix)
    assert split is not None
    assert split[0].shape == (n, 30)
    np.testing.assert_allclose(split[1], idio, rtol=1e-6)
