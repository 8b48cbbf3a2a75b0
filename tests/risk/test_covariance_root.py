"""A dense covariance's root: exact, PSD checked, decomposed once per covariance object."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz.errors import InvalidPortfolioError
from finwiz.risk import FactorModel


def _frame(values: np.ndarray) -> pd.DataFrame:
    symbols = [f"S{i}" for i in range(len(values))]
    return pd.DataFrame(values, index=symbols, columns=symbols)


def _covariance(n: int, rank: int | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, rank or n))
    return _frame(b @ b.T / n + (0.0 if rank else 0.1) * np.eye(n))


@pytest.mark.parametrize("rank", [None, 3])
def test_root_reproduces_the_covariance(rank: int | None) -> None:
    covariance = _covariance(12, rank)
    model = FactorModel.from_covariance(covariance)
    root = model.exposure_root()
    np.testing.assert_allclose(root @ root.T, covariance.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(model.covariance().to_numpy(), covariance.to_numpy(), atol=1e-12)
    if rank is not None:  # a singular covariance keeps only its range: a low-rank model
        assert model.n_factors == rank


def test_not_psd_is_refused() -> None:
    values = _covariance(6).to_numpy().copy()
    values[0, 1] = values[1, 0] = 10.0
    with pytest.raises(InvalidPortfolioError, match="positive semidefinite"):
        FactorModel.from_covariance(_frame(values))


def test_one_decomposition_per_covariance_object(monkeypatch: pytest.MonkeyPatch) -> None:
    covariance = _covariance(8, seed=1)
    calls = []
    real = np.linalg.cholesky
    monkeypatch.setattr(np.linalg, "cholesky", lambda a: calls.append(1) or real(a))
    first = FactorModel.from_covariance(covariance)
    assert FactorModel.from_covariance(covariance) is first
    assert len(calls) == 1
    # An equal copy is another object; an edit in place is another matrix: both decomposed anew.
    assert FactorModel.from_covariance(covariance.copy()) is not first
    covariance.iloc[0, 0] += 1.0
    edited = FactorModel.from_covariance(covariance)
    assert edited is not first
    assert edited.covariance().iloc[0, 0] == pytest.approx(covariance.iloc[0, 0])
    assert len(calls) == 3
