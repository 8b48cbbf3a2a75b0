"""finwiz against its peers on the same problem in the same run (install with ``finwiz[bench]``).

The problem (from ``conftest``): 500 or 2000 assets, a 10-factor risk model, sector caps 25 %,
transaction costs 10 bp, turnover cap 30 %, long only, cash allowed; objective: distance to the
target weights plus active risk against the target plus costs. What each peer can express:

* finwiz ``rebalance()``: all of it, end to end with a cold cache (fractional shares, so it is
  the same continuous problem as the others; whole shares are timed in ``test_bench_engine``).
* skfolio ``MeanRisk``: all of it. The prior is a ``TimeSeriesFactorModel`` fitted in each ``fit`` from the
  returns and the model's principal-component factor returns (OLS loadings, which reproduce the model
  exactly); ``target_weights`` centre the variance on the target (active risk); a utility with zero
  expected return carries the native costs; ``add_objective`` adds the L2 distance; long only, sector caps
  as ``groups``/``linear_constraints``; the total turnover cap and the cost-inclusive budget are custom
  constraints (its ``max_turnover`` caps each asset). Its sector caps see weights before costs (finwiz's
  include the cost: not binding here). At 2000 assets most of its time is the prior building and checking
  the dense covariance (``cov_nearest``: two eigendecompositions), which the optimisation never uses.
* cvxportfolio ``SinglePeriodOptimization``: the same factor model (F, d given), active risk
  against the target as benchmark, linear costs, turnover and sector limits, solved by Clarabel;
  it cannot add the plain L2 distance to the target, and it estimates nothing else.
* PyPortfolioOpt ``EfficientFrontier``: dense covariance only (no factor form), custom convex
  objective (active risk + L2 distance + costs, one dense quadratic form), sector caps (before costs, as
  skfolio's) and turnover constraints, solved by Clarabel; most of its time is Clarabel on that dense matrix.
* raw OSQP: the QP written by hand in sparse form (factor exposures as extra variables), scaled so the
  weights are O(1), tolerances 1e-7 and polishing, its point checked against every constraint: the floor.

skfolio, PyPortfolioOpt and raw OSQP must match ``plain_cvxpy`` to 1e-4 in every weight (asserted).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from conftest import COST_RATE, N_FACTORS, PEER_WARNINGS, SECTOR_CAP, TURNOVER_CAP, Problem, plain_cvxpy
from finwiz.optimizer import clear_cache, rebalance

SIZES = [500, 2000]

pytestmark = [*PEER_WARNINGS, pytest.mark.filterwarnings("ignore:.*deprecated.*")]


def _rounds(n: int) -> int:
    return 5 if n <= 500 else 2


def _group(benchmark: Any, n: int, kind: str) -> None:
    benchmark.group = f"peers-{n}"
    benchmark.extra_info.update(kind=kind, n=n)


@pytest.mark.parametrize("n", SIZES)
def test_finwiz(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    config = problem.config()
    _group(benchmark, n, "finwiz")
    result = benchmark.pedantic(
        rebalance,
        args=(config, problem.prices),
        kwargs={"factor_model": problem.factor_model},
        setup=clear_cache,
        rounds=_rounds(n),
        warmup_rounds=1,
    )
    assert result.max_constraint_residual <= 1e-6


@pytest.mark.parametrize("n", SIZES)
def test_finwiz_cached(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    config = problem.config()
    rebalance(config, problem.prices, factor_model=problem.factor_model)
    _group(benchmark, n, "finwiz_cached")
    benchmark.pedantic(
        rebalance,
        args=(config, problem.moved_prices(1)),
        kwargs={"factor_model": problem.factor_model},
        rounds=2 * _rounds(n),
        warmup_rounds=1,
    )


def _factor_returns(problem: Problem) -> pd.DataFrame:
    """The returns of the model's principal-component portfolios: regressing on them gives back its loadings."""
    x = problem.returns.to_numpy() - problem.returns.to_numpy().mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return pd.DataFrame(problem.returns.to_numpy() @ vt[:N_FACTORS].T, index=problem.returns.index)


def _skfolio_ols_loadings() -> Any:
    """A skfolio loading-matrix estimator: plain OLS betas (with intercepts) for all assets in one least squares.

    The same betas as skfolio's ``LoadingMatrixRegression(linear_regressor=LinearRegression())``, which fits one
    scikit-learn regressor per asset (about 1 ms of input validation each: 0.5 s at 500 assets); its default,
    ``LassoCV`` per asset, is a different (shrunk) model and took 21 s at 500 assets.
    """
    from skfolio.prior import BaseLoadingMatrix

    class OLSLoadings(BaseLoadingMatrix):
        def __init__(self) -> None:
            pass

        def fit(self, X: Any, y: Any, **fit_params: Any) -> OLSLoadings:
            factors = np.asarray(y, dtype=float)
            design = np.column_stack([np.ones(len(factors)), factors])
            coef = np.linalg.lstsq(design, np.asarray(X, dtype=float), rcond=None)[0]
            self.intercepts_ = coef[0]
            self.loading_matrix_ = coef[1:].T
            return self

    return OLSLoadings()


@pytest.mark.parametrize("n", SIZES)
def test_skfolio_mean_risk(benchmark: Any, make_problem: Any, n: int) -> None:
    pytest.importorskip("skfolio", reason="skfolio is not installed (pip install finwiz[bench])")
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import TimeSeriesFactorModel

    problem = make_problem(n)
    factors = _factor_returns(problem)
    fm = problem.factor_model
    scale = float(fm.idiosyncratic_variance.sum() + np.sum(fm.exposure_root() ** 2)) / n
    target, x0 = problem.target, problem.x0
    groups = [[problem.sectors[s] for s in problem.symbols]]
    sectors = sorted(set(groups[0]))

    def turnover_and_budget(w: cp.Variable) -> list[Any]:
        # skfolio's max_turnover caps each asset's trade and its budget ignores costs: the total turnover
        # cap and finwiz's cost-inclusive budget go in as custom constraints.
        traded = cp.norm1(w - x0)
        return [traded <= TURNOVER_CAP, cp.sum(w) + COST_RATE * traded <= 1.0]

    def solve() -> np.ndarray:
        model = MeanRisk(
            # No expected returns: utility = -costs - risk_aversion * active variance + the custom L2 term.
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_measure=RiskMeasure.VARIANCE,
            risk_aversion=1.0 / scale,
            overwrite_expected_return=lambda w: cp.Constant(0.0),
            prior_estimator=TimeSeriesFactorModel(loading_matrix_estimator=_skfolio_ols_loadings()),
            target_weights=target,  # variance of w - target: active risk
            min_weights=0.0,
            budget=None,
            transaction_costs=COST_RATE,
            previous_weights=x0,
            add_objective=lambda w: -cp.sum_squares(w - target) - cp.square(cp.sum(w) - target.sum()),
            groups=groups,
            linear_constraints=[f"{s} <= {SECTOR_CAP}" for s in sectors],
            add_constraints=turnover_and_budget,
            solver="CLARABEL",
        )
        model.fit(problem.returns, factors=factors)
        return np.asarray(model.weights_)

    _group(benchmark, n, "skfolio")
    w = benchmark.pedantic(solve, rounds=_rounds(n), warmup_rounds=1)
    assert np.max(np.abs(w - plain_cvxpy(problem))) < 1e-4  # it is the same problem


@pytest.mark.parametrize("n", SIZES)
def test_cvxportfolio_spo(benchmark: Any, make_problem: Any, n: int) -> None:
    pytest.importorskip("cvxportfolio", reason="cvxportfolio is not installed (pip install finwiz[bench])")
    import cvxportfolio as cvx

    problem = make_problem(n)
    fm = problem.factor_model
    symbols = problem.symbols
    returns = problem.returns.copy()
    returns["USDOLLAR"] = 0.0
    market = cvx.UserProvidedMarketData(returns=returns, min_history=pd.Timedelta(0), cash_key="USDOLLAR")
    t = returns.index[-1]
    value = float(problem.shares @ problem.prices.to_numpy()) + problem.cash
    h = pd.Series(np.append(problem.shares * problem.prices.to_numpy(), problem.cash), index=[*symbols, "USDOLLAR"])
    bench_w = pd.Series(np.append(problem.target, 1 - problem.target.sum()), index=h.index)
    exposure = pd.DataFrame(problem.sector_matrix.T, index=symbols)
    g = pd.DataFrame(fm.exposure_root().T, columns=symbols)
    d = pd.Series(fm.idiosyncratic_variance.to_numpy(), index=symbols)
    scale = float((np.sum(g.to_numpy() ** 2) + d.sum()) / problem.n)

    def solve() -> pd.Series:
        policy = cvx.SinglePeriodOptimization(
            objective=-(1.0 / scale) * cvx.FactorModelCovariance(F=g, d=d, Sigma_F=None)
            - cvx.TransactionCost(a=COST_RATE, b=None),
            constraints=[
                cvx.LongOnly(applies_to_cash=True),
                cvx.TurnoverLimit(TURNOVER_CAP / 2),  # cvxportfolio's turnover is half the sum of |trades|
                cvx.FactorMaxLimit(exposure, SECTOR_CAP),
            ],
            benchmark=cvx.FixedWeights(bench_w) if hasattr(cvx, "FixedWeights") else bench_w,
            include_cash_return=False,
            solver="CLARABEL",
        )
        u, _, _ = policy.execute(h=h, market_data=market, t=t)
        return pd.Series(u)

    _group(benchmark, n, "cvxportfolio")
    try:
        solve()
    except Exception as exc:  # report what it could not express instead of failing the suite
        benchmark.extra_info["skipped"] = str(exc)
        benchmark.pedantic(lambda: None, rounds=1)
        pytest.skip(f"cvxportfolio could not express the problem: {type(exc).__name__}: {exc}")
    trades = benchmark.pedantic(solve, rounds=_rounds(n), warmup_rounds=0)
    assert np.isfinite(trades.to_numpy(float)).all()
    assert value > 0


@pytest.mark.parametrize("n", SIZES)
def test_pypfopt_efficient_frontier(benchmark: Any, make_problem: Any, n: int) -> None:
    pytest.importorskip("pypfopt", reason="PyPortfolioOpt is not installed (pip install finwiz[bench])")
    from pypfopt import EfficientFrontier

    problem = make_problem(n)
    cov = problem.covariance
    sigma = cov.to_numpy()
    scale = float(np.trace(sigma) / problem.n)
    sector_of = {s: problem.sectors[s] for s in problem.symbols}
    upper = dict.fromkeys(set(sector_of.values()), SECTOR_CAP)
    target, x0 = problem.target, problem.x0
    # The whole quadratic as one dense matrix: active risk, L2 distance, and the cash weight's distance
    # (1'(w - t))^2; three separate terms made cvxpy's canonicalisation 40 % slower.
    quadratic = sigma / scale + np.eye(problem.n) + np.ones((problem.n, problem.n))

    def solve() -> Any:
        # Clarabel as for the other peers: cvxpy's default for this QP (OSQP, on a dense P) took 1.5 s at
        # 500 assets instead of 0.25 s, and was accurate only to 2e-5.
        ef = EfficientFrontier(None, cov, weight_bounds=(0, 1), solver="CLARABEL")
        ef.add_sector_constraints(sector_of, {}, upper)
        ef.add_constraint(lambda w: cp.sum(cp.abs(w - x0)) <= TURNOVER_CAP)
        ef.add_constraint(lambda w: cp.sum(w) + COST_RATE * cp.sum(cp.abs(w - x0)) <= 1)

        def objective(w: Any) -> Any:
            return cp.quad_form(w - target, quadratic, assume_PSD=True) + COST_RATE * cp.sum(cp.abs(w - x0))

        return ef.convex_objective(objective, weights_sum_to_one=False)

    _group(benchmark, n, "pypfopt")
    weights = benchmark.pedantic(solve, rounds=2 if n <= 500 else 1, warmup_rounds=0)
    w = np.array([weights[s] for s in problem.symbols])
    assert np.max(np.abs(w - plain_cvxpy(problem))) < 1e-4  # it is the same problem


class RawSolution(NamedTuple):
    """OSQP's point in the variables of ``plain_cvxpy``, and the iterations it took."""

    w: np.ndarray
    b: np.ndarray
    s: np.ndarray
    c: float
    iterations: int


def _coo(shape: tuple[int, int], parts: list[tuple[Any, Any, Any]]) -> sparse.csc_matrix:
    """A sparse matrix from (rows, columns, values) triplets, each broadcast to a common shape."""
    triplets = [np.broadcast_arrays(np.asarray(r), np.asarray(c), np.asarray(v, dtype=float)) for r, c, v in parts]
    rows, cols, vals = (np.concatenate([t[i].ravel() for t in triplets]) for i in range(3))
    return sparse.csc_matrix((vals, (rows, cols)), shape=shape)


def raw_osqp(problem: Problem) -> RawSolution:
    """The continuous problem of ``plain_cvxpy`` as a sparse QP handed straight to OSQP.

    Variables z = (b, s, y, e, c): buys, sells, active factor exposures y = G'(w - t) / sqrt(scale), the
    cash-weight gap e = 1'(w - t), the cost c; w = x0 + b - s is not a variable. All are O(1/n), so the
    solver sees z * n (weights O(1)); OSQP's own cost scaling handles the objective (a further factor on it
    only added iterations). The turnover cap is the box 0 <= c / rate <= cap on the cost, not a second dense
    row over (b, s) nearly parallel to the cost's, and both rows are in turnover units: with such a row ADMM
    took thousands of iterations (the former formulation 3600 at 500 assets, 6400 at 2000), now 100-200,
    after which polishing lands on the exact active set.
    """
    import osqp

    n = problem.n
    fm = problem.factor_model
    g = fm.exposure_root()
    idio = fm.idiosyncratic_variance.to_numpy()
    scale = float((np.sum(g**2) + np.sum(idio)) / n)
    gk = g / np.sqrt(scale)
    h = 1.0 + idio / scale  # the diagonal of the quadratic in w: ||w - t||^2 + idiosyncratic risk
    k = g.shape[1]
    t, x0 = problem.target, problem.x0
    r0 = x0 - t
    value = float(problem.shares @ problem.prices.to_numpy()) + problem.cash
    cash0 = problem.cash / value
    sector, asset = np.nonzero(problem.sector_matrix)
    ns = problem.sector_matrix.shape[0]
    i, f = np.arange(n), np.arange(k)
    ib, is_, iy, ie, ic = 0, n, 2 * n, 2 * n + k, 2 * n + k + 1
    nz = 2 * n + k + 2
    # min (r0 + b - s)' H (r0 + b - s) + ||y||^2 + e^2 + c, constant r0' H r0 dropped (upper triangle of P)
    p = _coo(
        (nz, nz),
        [
            (ib + i, ib + i, 2 * h),
            (is_ + i, is_ + i, 2 * h),
            (ib + i, is_ + i, -2 * h),
            (iy + f, iy + f, 2.0),
            (ie, ie, 2.0),
        ],
    )
    q = np.concatenate([2 * h * r0, -2 * h * r0, np.zeros(k + 1), [1.0]])
    # constraint rows: y, e (equalities), b, s (bounds), cost, cash, sectors, turnover
    r_y, r_e, r_b, r_s = 0, k, k + 1, k + 1 + n
    r_cost = r_s + n
    r_cash, r_sec = r_cost + 1, r_cost + 2
    r_turn = r_sec + ns
    a = _coo(
        (r_turn + 1, nz),
        [
            (r_y + f[:, None], ib + i[None, :], -gk.T),  # y - G'(b - s) = G' r0
            (r_y + f[:, None], is_ + i[None, :], gk.T),
            (r_y + f, iy + f, 1.0),
            (r_e, ib + i, -1.0),  # e - 1'(b - s) = 1' r0
            (r_e, is_ + i, 1.0),
            (r_e, ie, 1.0),
            (r_b + i, ib + i, 1.0),  # b >= 0
            (r_s + i, is_ + i, 1.0),  # 0 <= s <= x0 (long only)
            (r_cost, ib + i, 1.0),  # 1'(b + s) <= c / rate: the cost
            (r_cost, is_ + i, 1.0),
            (r_cost, ic, -1.0 / COST_RATE),
            (r_cash, ib + i, 1.0),  # 1'(b - s) + c <= cash0
            (r_cash, is_ + i, -1.0),
            (r_cash, ic, 1.0),
            (r_sec + sector, ib + asset, 1.0),  # M (x0 + b - s) + cap c <= cap
            (r_sec + sector, is_ + asset, -1.0),
            (r_sec + np.arange(ns), ic, SECTOR_CAP),
            (r_turn, ic, 1.0 / COST_RATE),  # 0 <= c / rate <= turnover cap, so 1'(b + s) <= turnover cap
        ],
    )
    gr0 = gk.T @ r0
    lo = np.concatenate([gr0, [r0.sum()], np.zeros(2 * n), np.full(2 + ns, -np.inf), [0.0]])
    hi = np.concatenate(
        [
            gr0,
            [r0.sum()],
            np.full(n, np.inf),
            x0,
            [0.0, cash0],
            SECTOR_CAP - problem.sector_matrix @ x0,
            [TURNOVER_CAP],
        ]
    )
    sigma = 1.0 / n  # z = sigma * z_hat
    solver = osqp.OSQP()
    solver.setup(
        sigma * sigma * p,
        sigma * q,
        sigma * a,
        lo,
        hi,
        eps_abs=1e-7,
        eps_rel=1e-7,
        polishing=True,
        max_iter=20_000,
        verbose=False,
    )
    res = solver.solve(raise_error=False)
    if res.info.status != "solved":
        raise RuntimeError(f"OSQP: {res.info.status}")
    z = sigma * np.asarray(res.x)
    b, s = z[ib : ib + n], z[is_ : is_ + n]
    return RawSolution(w=x0 + b - s, b=b, s=s, c=float(z[ic]), iterations=int(res.info.iter))


def _constraint_residual(problem: Problem, sol: RawSolution) -> float:
    """Largest violation of plain_cvxpy's constraints at the point, recomputed in numpy (0 if feasible)."""
    value = float(problem.shares @ problem.prices.to_numpy()) + problem.cash
    cash0 = problem.cash / value
    w, b, s, c, x0 = sol.w, sol.b, sol.s, sol.c, problem.x0
    violations = [
        np.abs(w - (x0 + b - s)),
        -b,
        -s,
        s - x0,
        [COST_RATE * np.sum(b + s) - c, np.sum(b) - np.sum(s) + c - cash0, np.sum(b + s) - TURNOVER_CAP, -c],
        problem.sector_matrix @ w + SECTOR_CAP * c - SECTOR_CAP,
    ]
    return max(0.0, *(float(np.max(v)) for v in violations))


@pytest.mark.parametrize("n", SIZES)
def test_raw_osqp_floor(benchmark: Any, make_problem: Any, n: int) -> None:
    pytest.importorskip("osqp")

    problem = make_problem(n)
    _group(benchmark, n, "raw_osqp")
    sol = benchmark.pedantic(raw_osqp, args=(problem,), rounds=_rounds(n), warmup_rounds=1)
    benchmark.extra_info["iterations"] = sol.iterations
    assert np.max(np.abs(sol.w - plain_cvxpy(problem))) < 1e-4  # it is the same problem
    assert _constraint_residual(problem, sol) <= 1e-6
