"""Risk models as the optimizer takes them: a factor model ``Sigma = B F B' + diag(d)``.

A dense covariance is the special case with one factor per asset. Estimation (returns,
shrinkage, PCA) lives in :mod:`finwiz.data`; this module only holds and validates the result, so
that the estimator and the optimizer share one frozen object and neither imports the other.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finwiz._blas import one_thread
from finwiz.errors import InvalidPortfolioError
from finwiz.risk._split import low_rank_split

__all__ = ["FactorModel", "validate_covariance"]

_PSD_TOLERANCE = 1e-10


def validate_covariance(covariance: pd.DataFrame, name: str = "covariance") -> pd.DataFrame:
    """Return ``covariance`` after checking it is square, labelled alike, finite, symmetric, PSD."""
    values = _symmetric_values(covariance, name)
    if np.count_nonzero(values - np.diag(np.diag(values))) == 0:  # diagonal: PSD iff its entries are
        smallest = float(np.diag(values).min(initial=0.0))
    else:
        try:  # positive definite: Cholesky says so in a fraction of the eigenvalues' time
            np.linalg.cholesky(values)
            return covariance
        except np.linalg.LinAlgError:
            smallest = float(np.linalg.eigvalsh(values)[0])
    _check_psd(smallest, values, name)
    return covariance


def _check_psd(smallest: float, values: np.ndarray, name: str) -> None:
    scale = max(1.0, float(np.abs(values).max(initial=0.0)))
    if smallest < -_PSD_TOLERANCE * scale:
        raise InvalidPortfolioError(
            f"{name} is not positive semidefinite (smallest eigenvalue {smallest:.3g})", field=name
        )


def _unique(labels: pd.Index, name: str, what: str) -> None:
    """Refuse a label given twice (a symbol, a factor), naming it."""
    if labels.has_duplicates:
        label = str(labels[labels.duplicated()][0])
        raise InvalidPortfolioError(
            f"{name} lists {what} {label} twice",
            field=name.split(":")[0].replace(" ", "_"),
            symbol=label if what == "symbol" else None,
        )


def _symmetric_values(covariance: pd.DataFrame, name: str) -> np.ndarray:
    """``covariance`` as an array after the checks that need no eigenvalues (square, labelled
    alike, finite, symmetric)."""
    if not isinstance(covariance, pd.DataFrame):
        raise InvalidPortfolioError(f"{name} must be a pandas DataFrame labelled by symbol", field=name)
    _unique(covariance.index, name, "symbol" if name == "covariance" else "factor")
    if covariance.shape[0] != covariance.shape[1] or not covariance.index.equals(covariance.columns):
        raise InvalidPortfolioError(f"{name} must be square with the same symbols on both axes", field=name)
    values = covariance.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        symbol = str(covariance.index[row])
        raise InvalidPortfolioError(f"{name} has a non-finite entry for {symbol}", field=name, symbol=symbol)
    scale = max(1.0, float(np.abs(values).max(initial=0.0)))
    if not _symmetric(values, atol=1e-12 * scale):
        raise InvalidPortfolioError(f"{name} is not symmetric", field=name)
    return values


def _symmetric(values: np.ndarray, atol: float, tile: int = 256) -> bool:
    """``np.allclose(values, values.T, atol=atol)`` (each pair of mirror entries held to both of
    its tests), by square tiles of the upper triangle against their mirror: a quarter of the time
    at 2,000 assets, the transpose read in cache."""
    n = len(values)
    for i in range(0, n, tile):
        for j in range(i, n, tile):
            upper, mirror = values[i : i + tile, j : j + tile], values[j : j + tile, i : i + tile].T
            if not (np.abs(upper - mirror) <= atol + 1e-5 * np.minimum(np.abs(upper), np.abs(mirror))).all():
                return False
    return True


@dataclass(frozen=True)
class FactorModel:
    """``Sigma = loadings @ factor_covariance @ loadings.T + diag(idiosyncratic_variance)``.

    ``loadings`` is assets x factors (index: symbols), ``factor_covariance`` factors x factors,
    ``idiosyncratic_variance`` one non-negative variance per asset. Units are those of the
    returns it was estimated from (e.g. daily).
    """

    loadings: pd.DataFrame
    factor_covariance: pd.DataFrame
    idiosyncratic_variance: pd.Series

    def __post_init__(self) -> None:
        b, f, d = self.loadings, self.factor_covariance, self.idiosyncratic_variance
        for label, value, kind in (
            ("loadings", b, pd.DataFrame),
            ("factor_covariance", f, pd.DataFrame),
            ("idiosyncratic_variance", d, pd.Series),
        ):
            if not isinstance(value, kind):
                raise InvalidPortfolioError(
                    f"factor model: {label} must be a pandas {kind.__name__}, not {type(value).__name__}",
                    field="factor_model",
                )
        _unique(b.index, "factor model: loadings", "symbol")
        _unique(b.columns, "factor model: loadings", "factor")
        if not b.index.equals(d.index):
            raise InvalidPortfolioError(
                "factor model: loadings and idiosyncratic_variance must cover the same symbols in the same order",
                field="factor_model",
            )
        if f.shape != (b.shape[1], b.shape[1]):
            raise InvalidPortfolioError(
                f"factor model: factor_covariance is {f.shape}, expected {(b.shape[1], b.shape[1])}",
                field="factor_model",
            )
        for label, values in (
            ("loadings", b.to_numpy(float)),
            ("idiosyncratic_variance", d.to_numpy(float)),
        ):
            if not np.isfinite(values).all():
                raise InvalidPortfolioError(f"factor model: {label} has non-finite entries", field="factor_model")
        if (d.to_numpy(float) < 0).any():
            symbol = str(d.index[int(np.argmax(d.to_numpy(float) < 0))])
            raise InvalidPortfolioError(
                f"factor model: negative idiosyncratic variance for {symbol}",
                field="factor_model",
                symbol=symbol,
            )
        validate_covariance(f, "factor model: factor_covariance")

    @classmethod
    def from_covariance(cls, covariance: pd.DataFrame) -> FactorModel:
        """Exact factor form of a dense covariance, computed once per covariance object (kept by
        identity and a checksum of its values, so an edit in place is seen): the accounts of one
        book share one decomposition.

        A low-rank part plus a diagonal (every covariance estimated from fewer days than assets,
        or implied by a factor model) becomes its few factors and the diagonal as idiosyncratic
        variance, kept only where it reproduces every entry to ``SPLIT_TOLERANCE`` of the largest
        variance (``_split``); any other covariance a square root with no idiosyncratic part
        (``_square_root``: the Cholesky factor or the root of its eigendecomposition, which also
        checks PSD)."""
        values = covariance.to_numpy(dtype=float) if isinstance(covariance, pd.DataFrame) else None
        key = None if values is None else (id(covariance), zlib.crc32(np.ascontiguousarray(values).data))
        with _roots_lock:
            kept = _roots.get(key) if key is not None else None
        if kept is not None and kept[0] is covariance and kept[1].loadings.index.equals(covariance.index):
            return kept[1]
        matrix = _symmetric_values(covariance, "covariance")
        with one_thread():  # LAPACK on n x n: OpenBLAS's threads on a loaded machine took 10x longer
            split = low_rank_split(matrix)
            root, idio = (_square_root(matrix), np.zeros(len(matrix))) if split is None else split
        names = [f"pc{i}" for i in range(root.shape[1])]
        model = cls(
            loadings=pd.DataFrame(root, index=covariance.index, columns=names),
            factor_covariance=pd.DataFrame(np.eye(len(names)), index=names, columns=names),
            idiosyncratic_variance=pd.Series(idio, index=covariance.index),
        )
        root.setflags(write=False)
        model.__dict__["_exposure_root"] = root  # the identity factor covariance: the root is its own
        if key is not None:
            with _roots_lock:
                _roots[key] = (covariance, model)
                while len(_roots) > _ROOTS_SIZE:
                    _roots.popitem(last=False)
        return model

    @property
    def symbols(self) -> list[str]:
        """Symbols covered, in order (a fresh list; the model is frozen, so it is built once)."""
        cached = self.__dict__.get("_symbols")
        if cached is None:
            cached = [str(s) for s in self.loadings.index.tolist()]
            self.__dict__["_symbols"] = cached  # frozen dataclass: cache beside the fields
        return list(cached)

    @property
    def n_factors(self) -> int:
        """Number of factors."""
        return int(self.loadings.shape[1])

    def reindex(self, symbols: Sequence[str]) -> FactorModel:
        """The model restricted and ordered to ``symbols``; refuses symbols it does not cover."""
        missing = [s for s in symbols if s not in self.loadings.index]
        if missing:
            raise InvalidPortfolioError(
                f"factor model has no data for {', '.join(missing)}",
                field="factor_model",
                symbol=missing[0],
            )
        return FactorModel(
            self.loadings.loc[list(symbols)],
            self.factor_covariance,
            self.idiosyncratic_variance.loc[list(symbols)],
        )

    def exposure_root(self) -> np.ndarray:
        """Matrix ``G`` (assets x factors) with ``G @ G.T = B F B'``: risk is ``||G' w||^2 + sum d w^2``.

        Computed once per model and cached (the model is frozen); treat the array as read-only.
        """
        cached = self.__dict__.get("_exposure_root")
        if cached is not None:
            return np.asarray(cached)
        f = self.factor_covariance.to_numpy(float)
        loadings = self.loadings.to_numpy(float)
        if np.count_nonzero(f - np.diag(np.diag(f))) == 0:  # diagonal (a covariance's root: the identity)
            result = np.asarray(loadings * np.sqrt(np.clip(np.diag(f), 0.0, None)))
        else:
            values, vectors = np.linalg.eigh(f)
            result = np.asarray(loadings @ (vectors * np.sqrt(np.clip(values, 0.0, None))))
        result.setflags(write=False)
        self.__dict__["_exposure_root"] = result  # frozen dataclass: cache beside the fields
        return result

    def covariance(self) -> pd.DataFrame:
        """The dense covariance this model implies."""
        b = self.loadings.to_numpy(float)
        sigma = b @ self.factor_covariance.to_numpy(float) @ b.T + np.diag(self.idiosyncratic_variance.to_numpy(float))
        return pd.DataFrame(sigma, index=self.loadings.index, columns=self.loadings.index)


def _square_root(matrix: np.ndarray) -> np.ndarray:
    """``G`` with ``G G' = matrix`` (PSD checked): below ``EIGEN_ASSETS`` the Cholesky factor where
    it succeeds (a fraction of an eigendecomposition's time), else the eigendecomposition's root
    without its null space; from ``EIGEN_ASSETS`` that root always, and where it has full rank its
    eigendecomposition kept for the dense solver (one decomposition serves both)."""
    if len(matrix) < EIGEN_ASSETS:
        try:
            return np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            pass
    matrix = 0.5 * (matrix + matrix.T)  # exactly symmetric (P takes one triangle), and not the caller's frame
    values, vectors = np.linalg.eigh(matrix)
    _check_psd(float(values[0]) if len(values) else 0.0, matrix, "covariance")
    keep = values > _PSD_TOLERANCE * max(1.0, float(values.max(initial=0.0)))
    root = np.asarray(vectors[:, keep] * np.sqrt(values[keep]))
    if len(matrix) >= EIGEN_ASSETS and keep.all():
        _keep_eigen(root, values, vectors, matrix)
    return root


EIGEN_ASSETS = 500
"""Assets from which a full-rank covariance's eigendecomposition is kept with its root: the
optimizer's dense solver works in its basis (``optimizer/solve/_dense.py``)."""
_EIGEN_SIZE = 2  # each three n x n arrays, beside the root
_eigen: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()


def _keep_eigen(root: np.ndarray, values: np.ndarray, vectors: np.ndarray, matrix: np.ndarray) -> None:
    for array in (values, vectors, matrix):
        array.setflags(write=False)
    with _roots_lock:
        _eigen[id(root)] = (root, values, vectors, matrix)
        while len(_eigen) > _EIGEN_SIZE:
            _eigen.popitem(last=False)


def root_eigen(root: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(values, vectors, root @ root.T)`` -- the covariance's eigendecomposition and the
    covariance itself -- where :meth:`FactorModel.from_covariance` kept them for this root object
    (a full-rank covariance of ``EIGEN_ASSETS`` or more), else None."""
    with _roots_lock:
        kept = _eigen.get(id(root))
    return kept[1:] if kept is not None and kept[0] is root else None


_ROOTS_SIZE = 4
"""Covariances whose root is kept (each n x n: 32 MB at 2,000 assets)."""
_roots: OrderedDict[tuple[int, int], tuple[pd.DataFrame, FactorModel]] = OrderedDict()
_roots_lock = threading.Lock()
