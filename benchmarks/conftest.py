"""Shared benchmark problems: real S&P 500 returns (431 assets) from ``--shared-data``, extended
synthetically above 431 assets, a 10-factor PCA risk model, sector caps, costs, a turnover cap.

Every benchmark builds its problem here, so finwiz, the plain cvxpy formulation and the peers
solve the same numbers in the same run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import Holding, PortfolioConfiguration
from finwiz.risk import FactorModel

REPO_ROOT = Path(__file__).resolve().parent.parent
N_FACTORS = 10
N_SECTORS = 11
SECTOR_CAP = 0.25
TURNOVER_CAP = 0.3
COST_RATE = 0.001
DAYS = 500
VALUE = 10_000_000.0
CASH_TARGET = 0.03


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared-data",
        default=str(REPO_ROOT.parent / "shared" / "data"),
        help="folder with sp500_431_returns.csv.gz (default: ../shared/data beside the checkout)",
    )


@pytest.fixture(scope="session")
def shared_returns(request: pytest.FixtureRequest) -> pd.DataFrame:
    folder = Path(request.config.getoption("--shared-data"))
    path = folder / "sp500_431_returns.csv.gz"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path} (pass --shared-data=FOLDER holding sp500_431_returns.csv.gz)")
    return load_returns(str(path))


@functools.cache
def load_returns(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    return frame.drop(columns=["USDOLLAR"], errors="ignore").astype(float).fillna(0.0)


@dataclass
class Problem:
    """One rebalancing problem, as arrays for the plain/peer formulations and as finwiz input."""

    n: int
    returns: pd.DataFrame  # DAYS x n daily returns (real up to 431 assets, synthetic beyond)
    prices: pd.Series
    factor_model: FactorModel
    sectors: dict[str, str]
    target: np.ndarray  # sums to 1 - CASH_TARGET
    x0: np.ndarray  # current weights (fractions of value), cash is the rest
    shares: np.ndarray
    cash: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.returns.columns)

    @functools.cached_property
    def covariance(self) -> pd.DataFrame:
        """Dense covariance implied by the factor model (what a dense-covariance user would pass)."""
        return self.factor_model.covariance()

    @functools.cached_property
    def sector_matrix(self) -> np.ndarray:
        names = sorted(set(self.sectors.values()))
        m = np.zeros((len(names), self.n))
        for j, s in enumerate(self.symbols):
            m[names.index(self.sectors[s]), j] = 1.0
        return m

    def config(self, *, fractional: bool = True, **overrides: Any) -> PortfolioConfiguration:
        fields: dict[str, Any] = {
            "holdings": [Holding(symbol=s, shares=float(q)) for s, q in zip(self.symbols, self.shares, strict=True)],
            "target_weights": dict(zip(self.symbols, self.target.tolist(), strict=True)),
            "cash": self.cash,
            "method": "risk_aware",
            "tolerance": 0.0,
            "transaction_cost_rate": COST_RATE,
            "min_trade_size": 0.0,
            "allow_fractional_shares": fractional,
            "sectors": self.sectors,
            "max_sector_weight": SECTOR_CAP,
            "max_turnover": TURNOVER_CAP,
        }
        fields.update(overrides)
        return PortfolioConfiguration(**fields)

    def moved_prices(self, seed: int) -> pd.Series:
        """Prices a day later (new data for a cached re-solve)."""
        rng = np.random.default_rng(seed)
        return self.prices * np.exp(rng.normal(0.0, 0.01, self.n))


def _returns_panel(real: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    recent = real.iloc[-DAYS:]
    if n <= recent.shape[1]:
        return recent.iloc[:, :n].copy()
    # Beyond the 431 real assets: mixtures of real assets plus noise, so the panel keeps a
    # realistic factor structure.
    rng = np.random.default_rng(seed)
    extra = n - recent.shape[1]
    mix = rng.dirichlet(np.ones(5), extra)
    picks = rng.integers(0, recent.shape[1], (extra, 5))
    base = recent.to_numpy()
    synthetic = np.einsum("tkj,kj->tk", base[:, picks], mix) + rng.normal(0, 0.01, (len(recent), extra))
    columns = [f"SYN{i:04d}" for i in range(extra)]
    return pd.concat([recent, pd.DataFrame(synthetic, index=recent.index, columns=columns)], axis=1)


def pca_factor_model(returns: pd.DataFrame, k: int = N_FACTORS) -> FactorModel:
    """k principal components of the sample covariance, the rest as idiosyncratic variance."""
    x = returns.to_numpy() - returns.to_numpy().mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    scale = s[:k] / np.sqrt(len(x) - 1)
    loadings = vt[:k].T * scale
    total = x.var(axis=0, ddof=1)
    idio = np.maximum(total - (loadings**2).sum(axis=1), 1e-8)
    names = [f"f{i}" for i in range(k)]
    return FactorModel(
        loadings=pd.DataFrame(loadings, index=returns.columns, columns=names),
        factor_covariance=pd.DataFrame(np.eye(k), index=names, columns=names),
        idiosyncratic_variance=pd.Series(idio, index=returns.columns),
    )


@functools.cache
def _make_problem(path: str, n: int, seed: int) -> Problem:
    real = load_returns(path)
    returns = _returns_panel(real, n, seed)
    rng = np.random.default_rng(seed)
    growth = (1.0 + returns).cumprod()
    prices = (rng.uniform(20, 300, n) * growth.iloc[-1].to_numpy()).clip(1.0, None)
    prices_s = pd.Series(prices, index=returns.columns)
    sectors = {s: f"Sector{i % N_SECTORS:02d}" for i, s in enumerate(returns.columns)}
    target = rng.dirichlet(np.full(n, 5.0)) * (1 - CASH_TARGET)
    drifted = target * np.exp(rng.normal(0, 0.25, n))
    current = drifted / drifted.sum() * (1 - CASH_TARGET)
    shares = np.floor(current * VALUE / prices)
    cash = VALUE - float(shares @ prices)
    value = float(shares @ prices) + cash
    return Problem(
        n=n,
        returns=returns,
        prices=prices_s,
        factor_model=pca_factor_model(returns),
        sectors=sectors,
        target=target,
        x0=shares * prices / value,
        shares=shares,
        cash=cash,
    )


@pytest.fixture(scope="session")
def make_problem(request: pytest.FixtureRequest, shared_returns: pd.DataFrame) -> Any:
    path = str(Path(request.config.getoption("--shared-data")) / "sp500_431_returns.csv.gz")

    def make(n: int, seed: int = 0) -> Problem:
        return _make_problem(path, n, seed)

    return make


def plain_cvxpy(problem: Problem, prices: pd.Series | None = None, solver: str = "CLARABEL") -> np.ndarray:
    """The same continuous problem as finwiz's RISK_AWARE strategy, built and solved with plain cvxpy.

    min ||w - t||^2 + (1'w - 1't)^2 + (||G'(w - t)||^2 + ||d o (w - t)||^2) / s + c
    s.t. w = x0 + b - s_, b, s_ >= 0, s_ <= x0, c >= rate 1'(b + s_), 1'b - 1's_ + c <= cash0,
         M w + cap c <= cap (sectors), 1'(b + s_) <= turnover cap.
    """
    px = problem.prices if prices is None else prices
    value = float(problem.shares @ px.to_numpy()) + problem.cash
    x0 = problem.shares * px.to_numpy() / value
    cash0 = problem.cash / value
    fm = problem.factor_model
    g = fm.exposure_root()
    d = np.sqrt(fm.idiosyncratic_variance.to_numpy())
    scale = float((np.sum(g**2) + np.sum(d**2)) / problem.n)
    t = problem.target
    n = problem.n
    w, b, s, c = cp.Variable(n), cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True), cp.Variable(nonneg=True)
    k = 1 / np.sqrt(scale)
    objective = (
        cp.sum_squares(w - t)
        + cp.square(cp.sum(w) - t.sum())
        + cp.sum_squares(k * g.T @ w - k * g.T @ t)
        + cp.sum_squares(cp.multiply(k * d, w) - k * d * t)
        + c
    )
    constraints = [
        w == x0 + b - s,
        s <= x0,
        c >= COST_RATE * cp.sum(b + s),
        cp.sum(b) - cp.sum(s) + c <= cash0,
        problem.sector_matrix @ w + SECTOR_CAP * c <= SECTOR_CAP,
        cp.sum(b + s) <= TURNOVER_CAP,
    ]
    prob = cp.Problem(cp.Minimize(objective), constraints)
    prob.solve(solver=solver)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"plain cvxpy: {prob.status}")
    return np.asarray(w.value)
