"""A full-rank covariance's eigendecomposition is kept with its root, once per covariance object
(the dense solver's basis); a covariance that splits into factors keeps none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz.risk import FactorModel, _model


def _frame(matrix: np.ndarray) -> pd.DataFrame:
    names = [f"A{i}" for i in range(len(matrix))]
    return pd.DataFrame(matrix, index=names, columns=names)


def test_a_full_rank_covariance_keeps_its_eigendecomposition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_model, "EIGEN_ASSETS", 10)
    rng = np.random.default_rng(3)
    b = rng.normal(size=(30, 30))
    sigma = b @ b.T / 30
    model = FactorModel.from_covariance(_frame(sigma))
    root = model.exposure_root()
    kept = _model.root_eigen(root)
    assert kept is not None
    values, vectors, gram = kept
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, sigma, atol=1e-12)
    np.testing.assert_array_equal(gram, sigma)
    np.testing.assert_allclose(root @ root.T, sigma, atol=1e-12)
    assert _model.root_eigen(root.copy()) is None  # by identity: another array is not this root


def test_small_or_split_covariances_keep_none(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    b = rng.normal(size=(30, 30))
    small = FactorModel.from_covariance(_frame(b @ b.T / 30))  # below EIGEN_ASSETS
    assert _model.root_eigen(small.exposure_root()) is None
    monkeypatch.setattr(_model, "EIGEN_ASSETS", 10)
    loadings = rng.normal(size=(30, 3))
    split = FactorModel.from_covariance(_frame(loadings @ loadings.T + np.diag(rng.uniform(0.1, 0.2, 30))))
    assert split.n_factors == 3
    assert _model.root_eigen(split.exposure_root()) is None


def test_one_decomposition_gives_the_root_and_the_basis(monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``EIGEN_ASSETS`` the kept eigendecomposition is also the root: no Cholesky beside it."""
    monkeypatch.setattr(_model, "EIGEN_ASSETS", 10)
    b = np.random.default_rng(5).normal(size=(30, 45))
    sigma = b @ b.T / 45
    calls: list[tuple[str, bool]] = []
    cholesky, eigh = np.linalg.cholesky, np.linalg.eigh
    monkeypatch.setattr(np.linalg, "cholesky", lambda a: calls.append(("cholesky", True)) or cholesky(a))
    monkeypatch.setattr(np.linalg, "eigh", lambda a: calls.append(("eigh", np.allclose(a, sigma))) or eigh(a))
    root = FactorModel.from_covariance(_frame(sigma)).exposure_root()
    assert calls.count(("cholesky", True)) == 0
    assert calls.count(("eigh", True)) == 1  # of the covariance itself (the split's samples are other matrices)
    kept = _model.root_eigen(root)
    assert kept is not None
    values, vectors, _ = kept
    np.testing.assert_allclose(root, vectors * np.sqrt(values), rtol=0, atol=0)
    np.testing.assert_allclose(root @ root.T, sigma, atol=1e-12)
