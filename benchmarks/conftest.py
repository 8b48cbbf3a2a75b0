"""Shared benchmark problems: real S&P 500 returns (431 assets) from ``--shared-data``, extended
synthetically above 431 assets, a 10-factor PCA risk model, sector caps, costs, a turnover cap.

Every benchmark builds its problem here, so finwiz, the plain cvxpy formulation and the peers
solve the same numbers in the same run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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


PEER_WARNINGS = [
    # Peer libraries and SCIP emit their own deprecation, future and user warnings (pandas 3,
    # scikit-learn, PyPortfolioOpt); not ours to fix. Our own code stays under warnings-as-errors.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


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


def plain_cvxpy(
    problem: Problem, prices: pd.Series | None = None, solver: str = "CLARABEL", *, dense: bool = False
) -> np.ndarray:
    """The same continuous problem as finwiz's RISK_AWARE strategy, built and solved with plain cvxpy.

    min ||w - t||^2 + (1'w - 1't)^2 + (||G'(w - t)||^2 + ||d o (w - t)||^2) / s + c
    s.t. w = x0 + b - s_, b, s_ >= 0, s_ <= x0, c >= rate 1'(b + s_), 1'b - 1's_ + c <= cash0,
         M w + cap c <= cap (sectors), 1'(b + s_) <= turnover cap.
    ``dense``: its dense twin, the risk as ``(w - t)' Sigma (w - t) / s`` with the implied
    covariance (what a user with a dense matrix writes).
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
    if dense:
        risk = cp.quad_form(w - t, cp.psd_wrap(problem.covariance.to_numpy() / scale))
    else:
        risk = cp.sum_squares(k * g.T @ w - k * g.T @ t) + cp.sum_squares(cp.multiply(k * d, w) - k * d * t)
    objective = cp.sum_squares(w - t) + cp.square(cp.sum(w) - t.sum()) + risk + c
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


# --------------------------------------------------------------------------- binding limits (issue 11)

BINDING_VALUE = 2_000_000.0
BINDING_POSITION_CAP = 0.02
BINDING_DEPOSIT = 150_000.0
BINDING_MIN_TRADE = 1_000.0
UNCLASSIFIED = "Unclassified"


@functools.cache
def load_sectors(path: str) -> dict[str, str]:
    """The real GICS sectors of the 431 assets (``Unclassified`` where unknown)."""
    frame = pd.read_csv(path)
    return dict(zip(frame["symbol"], frame["sector"], strict=True))


@dataclass
class BindingProblem:
    """A $2M account whose limits bind: two sectors and four assets targeted above their caps, the
    current book drifted around the target, the most overweight names on a no-sell list.

    ``config(**overrides)`` is the whole-share request; the turnover cap (``turnover_cap``) is set
    well below what the request would trade without it (see :func:`binding_problem`).
    """

    base: Problem
    sectors: dict[str, str]
    target: np.ndarray
    shares: np.ndarray
    cash: float
    capped_sectors: tuple[str, ...]  # targeted above SECTOR_CAP
    capped_assets: tuple[str, ...]  # targeted above BINDING_POSITION_CAP
    no_sell: tuple[str, ...]  # overweight, so without the list they would be sold
    turnover_cap: float = 0.0

    @property
    def n(self) -> int:
        return self.base.n

    @property
    def symbols(self) -> list[str]:
        return self.base.symbols

    @property
    def prices(self) -> pd.Series:
        return self.base.prices

    @property
    def factor_model(self) -> FactorModel:
        return self.base.factor_model

    @property
    def value(self) -> float:
        return float(self.shares @ self.prices.to_numpy()) + self.cash

    def config(self, **overrides: Any) -> PortfolioConfiguration:
        fields: dict[str, Any] = {
            "holdings": [Holding(symbol=s, shares=float(q)) for s, q in zip(self.symbols, self.shares, strict=True)],
            "target_weights": dict(zip(self.symbols, self.target.tolist(), strict=True)),
            "cash": self.cash,
            "method": "minimize_trades",
            "tolerance": 0.0,
            "transaction_cost_rate": COST_RATE,
            "min_trade_size": BINDING_MIN_TRADE,
            "allow_fractional_shares": False,
            "sectors": self.sectors,
            "max_sector_weight": SECTOR_CAP,
            "max_position_weight": BINDING_POSITION_CAP,
            "max_turnover": self.turnover_cap,
            "cash_flow": BINDING_DEPOSIT,
            "no_sell": list(self.no_sell),
        }
        fields.update(overrides)
        return PortfolioConfiguration(**fields)

    def limits(self, config: PortfolioConfiguration) -> ContinuousLimits:
        """The limits of ``config`` as arrays for :func:`plain_continuous`."""
        symbols = self.symbols
        sector_names = sorted({s for s in config.sectors.values() if s != UNCLASSIFIED})
        m = np.zeros((len(sector_names), self.n))
        for j, s in enumerate(symbols):
            sec = config.sectors.get(s, UNCLASSIFIED)
            if sec != UNCLASSIFIED:
                m[sector_names.index(sec), j] = 1.0
        held = {h.symbol: h.shares for h in config.holdings}
        return ContinuousLimits(
            prices=self.prices.to_numpy(),
            shares=np.array([held.get(s, 0.0) for s in symbols]),
            cash=config.cash,
            cash_flow=config.cash_flow,
            target=np.array([config.target_weights.get(s, 0.0) for s in symbols]),
            cost_rate=config.transaction_cost_rate,
            position_cap=config.max_position_weight,
            sector_matrix=m if config.max_sector_weight is not None else None,
            sector_cap=config.max_sector_weight,
            turnover_cap=config.max_turnover,
            no_sell=np.isin(symbols, config.no_sell),
        )


@dataclass
class ContinuousLimits:
    """A request as plain arrays (currency, shares), read by the independent continuous model."""

    prices: np.ndarray
    shares: np.ndarray
    cash: float
    cash_flow: float
    target: np.ndarray
    cost_rate: float
    position_cap: float | None
    sector_matrix: np.ndarray | None
    sector_cap: float | None
    turnover_cap: float | None
    no_sell: np.ndarray


@dataclass
class ContinuousOptimum:
    """The optimum of :func:`plain_continuous`: post-trade weights (fractions of V'), cash weight,
    the objective in finwiz's units (fractions of V + cash flow) and the turnover."""

    weights: np.ndarray
    cash_weight: float
    objective: float
    distance2: float  # ||w - t||^2 + (cash - cash*)^2 on post-trade weights
    turnover: float
    value_after: float


def plain_continuous(
    lim: ContinuousLimits, solver: str = "CLARABEL", whole_share_caps: bool = False
) -> ContinuousOptimum:
    """MINIMIZE_COSTS' continuous problem with every limit, built and solved with plain cvxpy.

    ``whole_share_caps`` (zero costs only, where V' = R is fixed): each position cap tightened to the
    largest whole number of shares under it, ``w_i <= floor(cap R / p_i) p_i / R``. Every whole-share
    answer keeps these caps, so the optimum is still a lower bound for them, and a tighter one: a
    capped asset cannot end between its last whole share and the cap.

    Written from the README's definitions, not from finwiz's code. Units: fractions of
    R = V + cash flow (V the value before trading); u = trade values / R, c = costs / R.

    min ||w - t||^2 + (1'w - 1't)^2 + c,  w = x0 + b - s (post-trade weights before costs)
    s.t. b, s >= 0, s <= x0 (long only), c = rate 1'(b + s), cash0 - 1'(b - s) - c >= 0
         (cash0 = (cash + flow) / R), w_i <= cap (1 - c) (position caps on post-trade weights,
         V' = R (1 - c)), M w <= cap_s (1 - c) (sector caps), 1'(b + s) <= turnover cap x V / R,
         s_i = 0 on the no-sell list.
    """
    v = float(lim.shares @ lim.prices) + lim.cash
    r = v + lim.cash_flow
    x0 = lim.shares * lim.prices / r
    cash0 = (lim.cash + lim.cash_flow) / r
    t = lim.target
    n = len(t)
    # buys and sells as two non-negative variables, the cost and the turnover as scalars, so that
    # no row repeats the 1-norm (a norm1 in every cap row made cvxpy's problem n x n).
    b, s = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
    c, tau = cp.Variable(nonneg=True), cp.Variable(nonneg=True)
    w = x0 + b - s
    constraints = [tau == cp.sum(b) + cp.sum(s), c == lim.cost_rate * tau, cash0 - cp.sum(b - s) - c >= 0, s <= x0]
    if lim.position_cap is not None and whole_share_caps:
        if lim.cost_rate != 0:
            raise ValueError("whole-share caps are a bound only with zero costs (V' fixed)")
        constraints.append(w <= np.floor(lim.position_cap * r / lim.prices) * lim.prices / r)
    elif lim.position_cap is not None:
        constraints.append(w <= lim.position_cap * (1 - c))
    if lim.sector_matrix is not None and lim.sector_cap is not None:
        constraints.append(lim.sector_matrix @ w <= lim.sector_cap * (1 - c))
    if lim.turnover_cap is not None:
        constraints.append(tau <= lim.turnover_cap * v / r)
    if lim.no_sell.any():
        constraints.append(s[np.flatnonzero(lim.no_sell)] == 0)
    objective = cp.sum_squares(w - t) + cp.square(cp.sum(w) - t.sum()) + c
    prob = cp.Problem(cp.Minimize(objective), constraints)
    prob.solve(solver=solver)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"plain continuous model: {prob.status}")
    u = b - s
    uu = np.asarray(u.value)
    cost = lim.cost_rate * float(np.abs(uu).sum())
    post = (x0 + uu) / (1 - cost)
    cash_w = 1 - float(post.sum())
    cash_target = 1 - float(t.sum())
    return ContinuousOptimum(
        weights=post,
        cash_weight=cash_w,
        objective=float(prob.value),
        distance2=float(np.sum((post - t) ** 2) + (cash_w - cash_target) ** 2),
        turnover=float(np.abs(uu).sum()) * r / v,
        value_after=r * (1 - cost),
    )


def _binding(path: str, sectors_path: str, n: int, seed: int) -> BindingProblem:
    base = _make_problem(path, n, seed)
    rng = np.random.default_rng(1000 + seed)
    real = load_sectors(sectors_path)
    symbols = base.symbols
    sectors = {s: real.get(s, f"Synthetic{i % N_SECTORS:02d}") for i, s in enumerate(symbols)}
    labels = np.array([sectors[s] for s in symbols])
    classified = [s for s in sorted(set(labels)) if s != UNCLASSIFIED]
    counts = {s: int((labels == s).sum()) for s in classified}
    capped = tuple(sorted(classified, key=lambda s: (-counts[s], s))[:2])
    target = rng.dirichlet(np.full(n, 5.0))
    free = ~np.isin(labels, capped)
    # Four assets outside the capped sectors get 3 % each (cap 2 %), the capped sectors 30 % and
    # 28 % (cap 25 %, so still above it after the deposit); the rest shares the remaining 27 %,
    # 3 % stays in cash.
    big = rng.choice(np.flatnonzero(free), 4, replace=False)
    weights = np.zeros(n)
    weights[big] = 0.03
    for sector, total in zip(capped, (0.30, 0.28), strict=True):
        inside = labels == sector
        weights[inside] = target[inside] / target[inside].sum() * total
    rest = free.copy()
    rest[big] = False
    weights[rest] = target[rest] / target[rest].sum() * (1 - CASH_TARGET - 0.12 - 0.58)
    drifted = weights * np.exp(rng.normal(0, 0.25, n))
    current = drifted / drifted.sum() * (1 - CASH_TARGET)
    prices = base.prices.to_numpy()
    shares = np.floor(current * BINDING_VALUE / prices)
    cash = BINDING_VALUE - float(shares @ prices)
    # No-sell: the five most overweight names among the uncapped ones.
    over = np.where(rest, shares * prices / BINDING_VALUE - weights, -np.inf)
    no_sell = tuple(symbols[i] for i in np.argsort(-over)[:5])
    return BindingProblem(
        base=base,
        sectors=sectors,
        target=weights,
        shares=shares,
        cash=cash,
        capped_sectors=capped,
        capped_assets=tuple(symbols[i] for i in big),
        no_sell=no_sell,
    )


BINDING_TURNOVER_FRACTION = 0.8
"""The turnover cap is this fraction of what the continuous request trades without it."""


@functools.cache
def _binding_problem(path: str, sectors_path: str, n: int, seed: int) -> BindingProblem:
    problem = _binding(path, sectors_path, n, seed)
    free = plain_continuous(problem.limits(problem.config(max_turnover=None)))
    problem.turnover_cap = round(BINDING_TURNOVER_FRACTION * free.turnover, 4)
    return problem


def _real_data_builder(
    request: pytest.FixtureRequest, build: Callable[[str, str, int, int], BindingProblem]
) -> Callable[..., BindingProblem]:
    """``make(n, seed=0)`` calling ``build`` on the shared returns and sectors (skip without them)."""
    folder = Path(request.config.getoption("--shared-data"))
    sectors_path = folder / "sp500_431_sectors.csv"
    if not sectors_path.exists():
        pytest.skip(f"benchmark data not found: {sectors_path} (pass --shared-data=FOLDER)")

    def make(n: int, seed: int = 0) -> BindingProblem:
        return build(str(folder / "sp500_431_returns.csv.gz"), str(sectors_path), n, seed)

    return make


@pytest.fixture(scope="session")
def binding_problem(request: pytest.FixtureRequest, shared_returns: pd.DataFrame) -> Any:
    """``binding_problem(n, seed=0)``: a :class:`BindingProblem` of ``n`` assets (real data up to 431)."""
    return _real_data_builder(request, _binding_problem)


EXACT_VALUE = 250_000.0
EXACT_POSITION_CAP = 0.08
EXACT_MIN_TRADE = 1_500.0
EXACT_DEPOSIT = 10_000.0


@functools.cache
def _exact_instance(path: str, sectors_path: str, n: int, seed: int) -> BindingProblem:
    """A small account for the exact MIQP: ``n`` random real assets, $250k, lots of 5 and 10 on half
    of them, a minimum trade, sector and position caps that bind, a deposit and one no-sell name."""
    full = _make_problem(path, 431, 0)
    rng = np.random.default_rng(2000 + seed)
    pick = np.sort(rng.choice(431, n, replace=False))
    symbols = [full.symbols[i] for i in pick]
    real = load_sectors(sectors_path)
    sectors = {s: real[s] for s in symbols}
    returns = full.returns[symbols]
    base = Problem(
        n=n,
        returns=returns,
        prices=full.prices[symbols],
        factor_model=pca_factor_model(returns, 5),
        sectors=sectors,
        target=np.zeros(n),
        x0=np.zeros(n),
        shares=np.zeros(n),
        cash=0.0,
    )
    labels = np.array([sectors[s] for s in symbols])
    classified = sorted({s for s in labels if s != UNCLASSIFIED}, key=lambda s: (-(labels == s).sum(), s))
    target = rng.dirichlet(np.full(n, 2.0))
    big = labels == classified[0]
    target[big] *= 0.32 / target[big].sum() / (1 - 0.32) * (1 - target[big].sum())  # that sector at 32 %
    target = target / target.sum() * (1 - CASH_TARGET)
    drifted = target * np.exp(rng.normal(0, 0.3, n))
    current = drifted / drifted.sum() * (1 - CASH_TARGET)
    prices = base.prices.to_numpy()
    shares = np.floor(current * EXACT_VALUE / prices)
    weight = shares * prices / EXACT_VALUE
    over = np.argmax(np.where(~big & (weight < 0.8 * EXACT_POSITION_CAP), weight - target, -np.inf))
    return BindingProblem(
        base=base,
        sectors=sectors,
        target=target,
        shares=shares,
        cash=EXACT_VALUE - float(shares @ prices),
        capped_sectors=(classified[0],),
        capped_assets=(),
        no_sell=(symbols[over],),
        turnover_cap=0.0,
    )


def exact_config(problem: BindingProblem, **overrides: Any) -> PortfolioConfiguration:
    """The small instance's whole-share request: lots of 10 on every fourth asset, 5 on the next."""
    lots = {s: 10.0 if i % 4 == 0 else 5.0 for i, s in enumerate(problem.symbols) if i % 4 in (0, 1)}
    fields: dict[str, Any] = {
        "max_position_weight": EXACT_POSITION_CAP,
        "max_turnover": None,
        "min_trade_size": EXACT_MIN_TRADE,
        "cash_flow": EXACT_DEPOSIT,
        "lot_sizes": lots,
    }
    fields.update(overrides)
    return problem.config(**fields)


@pytest.fixture(scope="session")
def exact_instance(request: pytest.FixtureRequest, shared_returns: pd.DataFrame) -> Any:
    """``exact_instance(n, seed)``: a small :class:`BindingProblem` for the exact-MIQP comparison."""
    return _real_data_builder(request, _exact_instance)
