"""How good finwiz's whole-share answers are (issue 11), each figure computed independently of finwiz.

(a) ``distance``: 431 real assets (``conftest.binding_problem``), zero costs, ``minimize_costs``,
    whole shares, tolerance 0, no minimum trade, sector caps 25 % and position caps 2 % that bind,
    in five variants: a $150k deposit, a $150k withdrawal, a no-sell list, a 15 % turnover cap, and
    all of the deposit, the no-sell list and the 80 % turnover cap together. The whole-share
    distance^2 (||w - w*||^2 + cash gap^2, post-trade weights) above the continuous optimum of the
    same limits (``conftest.plain_continuous``, zero costs: a lower bound of any whole-share
    answer) in units of sum_i (p_i / V')^2; and above the tighter bound with each position cap at
    its last whole share (``whole_share_caps``: no whole-share answer can use the room between it
    and the cap, and with the caps' duals large -- a capped asset that must be sold spends
    turnover and adds to cash -- that room alone is worth up to 18 allowances). Target: <= 0.25
    above the tighter bound.
(b) ``exact``: 30-60 random real assets ($250k, lots of 5 and 10, $1,500 minimum trade, sector and
    position caps, a deposit, a no-sell name), two seeds each: finwiz's ``objective_value`` against
    ``rebalance(..., exact=True)`` (SCIP MIQP, 3 s time limit): relative gap, target <= 1 % where
    SCIP proved optimality. For ``minimize_costs`` the objective (tracking distance^2 + cost) and
    every limit are recomputed here from the shares and the prices, and no single asset moved by
    one share or lot may lower the objective of finwiz's answer while keeping every limit.
(c) ``pypfopt``: start from cash, 20 real stocks, max-Sharpe or random target weights, zero costs,
    $10k to $1M: L2 distance over assets and cash of finwiz (``minimize_costs``, tolerance 0,
    minimum trade 0) against the better of PyPortfolioOpt's ``DiscreteAllocation.greedy_portfolio``
    and ``lp_portfolio``. Target: finwiz never farther.

A target missed by the current code is recorded (``extra_info``, printed with ``-s``) and the
test is marked xfail (not strict) so the run stays green.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import BINDING_DEPOSIT, PEER_WARNINGS, BindingProblem, exact_config, plain_continuous
from finwiz import Holding, PortfolioConfiguration, RebalancingEngine, RebalancingSettings
from finwiz.optimizer import rebalance

pytestmark = PEER_WARNINGS

DISTANCE_TARGET = 0.25
EXACT_TARGET = 0.01
EXACT_TIME_LIMIT = 3.0


def _xfail_if(misses: list[str], benchmark: Any) -> None:
    if misses:
        benchmark.extra_info["missed"] = "; ".join(misses)
        pytest.xfail("; ".join(misses))


# --------------------------------------------------------------------------- (a) distance above the bound


def distance2(problem: BindingProblem, result: Any) -> float:
    """||w - w*||^2 + (cash - cash*)^2 on the post-trade weights of ``result``."""
    w = np.array([result.post_trade_weights[s] for s in problem.symbols])
    cash_gap = result.cash_weight_after - (1 - problem.target.sum())
    return float(np.sum((w - problem.target) ** 2) + cash_gap**2)


VARIANTS: dict[str, dict[str, Any]] = {
    "deposit": {"cash_flow": BINDING_DEPOSIT},
    "withdrawal": {"cash_flow": -BINDING_DEPOSIT},
    "no_sell": {},  # the problem's no-sell list, no cash flow
    "turnover15": {"max_turnover": 0.15},
    "all": {"cash_flow": BINDING_DEPOSIT, "max_turnover": "problem"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_distance_above_bound(benchmark: Any, binding_problem: Any, variant: str) -> None:
    problem = binding_problem(431)
    overrides = {"cash_flow": 0.0, "max_turnover": None, "no_sell": []} | VARIANTS[variant]
    if variant in ("no_sell", "all"):
        overrides["no_sell"] = list(problem.no_sell)
    if overrides["max_turnover"] == "problem":
        overrides["max_turnover"] = problem.turnover_cap
    config = problem.config(method="minimize_costs", transaction_cost_rate=0.0, min_trade_size=0.0, **overrides)
    benchmark.group = "quality-distance"
    benchmark.extra_info.update(kind=f"whole_{variant}", n=problem.n)
    result = benchmark.pedantic(rebalance, args=(config, problem.prices), rounds=1, warmup_rounds=0)
    assert result.is_compliant
    bound = plain_continuous(problem.limits(config))
    tight = plain_continuous(problem.limits(config), whole_share_caps=True)
    prices = problem.prices.to_numpy()
    allowance = float(np.sum((prices / result.portfolio_value_after) ** 2))
    d2 = distance2(problem, result)
    excess = (d2 - bound.distance2) / allowance
    excess_tight = (d2 - tight.distance2) / allowance
    benchmark.extra_info.update(
        distance2=d2,
        bound_distance2=bound.distance2,
        whole_caps_bound_distance2=tight.distance2,
        allowance=allowance,
        excess_allowances=excess,
        excess_over_whole_caps=excess_tight,
        costs="zero",
    )
    print(
        f"\ndistance {variant:>10}: whole {d2:.6g}, bound {bound.distance2:.6g} (whole-share caps "
        f"{tight.distance2:.6g}), excess {excess:.3f} ({excess_tight:.3f}) x sum (p/V')^2 "
        f"(target <= {DISTANCE_TARGET} over the whole-share-caps bound)"
    )
    # Both continuous optima bound every whole-share answer (the second keeps the caps in shares).
    assert d2 >= tight.distance2 - 1e-9 >= bound.distance2 - 2e-9
    missed = excess_tight > DISTANCE_TARGET
    _xfail_if([f"excess {excess_tight:.3f} > {DISTANCE_TARGET} allowances"] if missed else [], benchmark)


# --------------------------------------------------------------------------- (b) against the exact MIQP

EXACT_CASES = [(30, 0), (30, 1), (45, 0), (45, 1), (60, 0), (60, 1)]


class Recomputed:
    """MINIMIZE_COSTS' objective and every limit of a small instance, from shares and prices alone."""

    def __init__(self, problem: BindingProblem, config: PortfolioConfiguration) -> None:
        self.p = problem.prices.to_numpy()
        self.q0 = problem.shares
        self.cash = config.cash
        self.flow = config.cash_flow
        self.value = float(self.q0 @ self.p) + self.cash
        self.ref = self.value + self.flow
        self.t = problem.target
        self.rate = config.transaction_cost_rate
        self.cap = config.max_position_weight
        self.sector_cap = config.max_sector_weight
        labels = np.array([problem.sectors[s] for s in problem.symbols])
        self.sectors = [labels == s for s in sorted(set(labels)) if s != "Unclassified"]
        self.no_sell = np.isin(problem.symbols, config.no_sell)
        self.lot = np.array([config.lot_sizes.get(s, 1.0) for s in problem.symbols])
        self.min_trade = config.min_trade_size
        self.turnover_cap = config.max_turnover

    def objective(self, q: np.ndarray) -> float:
        """||w - t||^2 + (1'w - 1't)^2 + c in fractions of V + cash flow (w before costs)."""
        w = q * self.p / self.ref
        c = self.rate * float(np.abs((q - self.q0) * self.p).sum()) / self.ref
        return float(np.sum((w - self.t) ** 2) + (w.sum() - self.t.sum()) ** 2 + c)

    def feasible(self, q: np.ndarray, tol: float = 1e-9) -> bool:
        trade = q - self.q0
        value = trade * self.p
        cost = self.rate * float(np.abs(value).sum())
        after = self.ref - cost
        w = q * self.p / after
        traded = trade != 0
        sold_out = q == 0
        lots = np.abs(trade / self.lot - np.round(trade / self.lot)) < 1e-9
        checks = [
            bool((q >= 0).all()),
            self.cash + self.flow - float(value.sum()) - cost >= -tol * self.ref,
            self.cap is None or bool((w <= self.cap + tol).all()),
            self.sector_cap is None or all(float(w[m].sum()) <= self.sector_cap + tol for m in self.sectors),
            self.turnover_cap is None or float(np.abs(value).sum()) / self.value <= self.turnover_cap + tol,
            bool((trade[self.no_sell] >= 0).all()),
            bool(((np.abs(value) >= self.min_trade - 1e-6) | ~traded | sold_out).all()),
            bool((lots | sold_out).all()),
        ]
        return all(checks)

    def best_single_move(self, q: np.ndarray) -> tuple[float, str]:
        """The largest relative fall of the objective from moving one asset by one lot (0: none)."""
        base = self.objective(q)
        best, where = 0.0, ""
        for i in range(len(q)):
            for step in (self.lot[i], -self.lot[i]):
                moved = q.copy()
                moved[i] += step
                if self.feasible(moved):
                    gain = (base - self.objective(moved)) / base
                    if gain > best:
                        best, where = gain, f"asset {i} {step:+g}"
        return best, where


def _shares(problem: BindingProblem, result: Any) -> np.ndarray:
    return np.array([result.post_trade_holdings[s] for s in problem.symbols])


@pytest.mark.parametrize("method", ["minimize_costs", "minimize_trades"])
def test_against_exact(benchmark: Any, exact_instance: Any, method: str) -> None:
    pytest.importorskip("pyscipopt", reason="exact mode needs pyscipopt (pip install finwiz[exact])")
    engine = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=EXACT_TIME_LIMIT))
    cases = [(n, seed, exact_instance(n, seed)) for n, seed in EXACT_CASES]
    configs = [exact_config(problem, method=method) for _, _, problem in cases]

    def solve_all() -> list[Any]:
        return [
            engine.rebalance(config, problem.prices) for config, (_, _, problem) in zip(configs, cases, strict=True)
        ]

    benchmark.group = "quality-exact"
    benchmark.extra_info.update(kind=f"finwiz_{method}", instances=len(cases))
    results = benchmark.pedantic(solve_all, rounds=1, warmup_rounds=0)
    misses: list[str] = []
    print(f"\nexact {method}: n seed | finwiz objective | exact objective (status, gap) | rel gap | best 1-lot move")
    for (n, seed, problem), config, result in zip(cases, configs, results, strict=True):
        exact = engine.rebalance(config, problem.prices, exact=True)
        assert result.is_compliant
        assert exact.is_compliant
        assert result.objective_value is not None
        assert exact.objective_value is not None
        gap = (result.objective_value - exact.objective_value) / exact.objective_value
        key = f"n{n}_s{seed}"
        benchmark.extra_info[f"{key}_gap"] = gap
        benchmark.extra_info[f"{key}_exact_status"] = exact.status
        move = ""
        if method == "minimize_costs":
            check = Recomputed(problem, config)
            q = _shares(problem, result)
            assert check.feasible(q), f"{key}: finwiz's answer breaks a limit recomputed here"
            assert check.feasible(_shares(problem, exact)), f"{key}: the exact answer breaks a limit"
            ours = check.objective(q)
            assert abs(ours - result.objective_value) <= 1e-7 * ours, (ours, result.objective_value)
            gain, where = check.best_single_move(q)
            benchmark.extra_info[f"{key}_single_move_gain"] = gain
            if gain > 1e-9:
                misses.append(f"{key}: one lot ({where}) lowers finwiz's objective by {gain:.3%}")
            move = f"{gain:.3%} {where}"
        if exact.status == "optimal" and gap > EXACT_TARGET:
            misses.append(f"{key}: {gap:.2%} above the exact optimum")
        mip_gap = "" if exact.mip_gap is None else f"{exact.mip_gap:.3g}"
        print(
            f"  {n:3d} {seed} | {result.objective_value:.6g} | {exact.objective_value:.6g} ({exact.status}, {mip_gap})"
            f" | {gap:+.3%} | {move}"
        )
    _xfail_if(misses, benchmark)


# --------------------------------------------------------------------------- (c) against PyPortfolioOpt

VALUES = [10_000.0, 30_000.0, 100_000.0, 300_000.0, 1_000_000.0]


@pytest.fixture(scope="module")
def sample_prices(request: pytest.FixtureRequest) -> pd.DataFrame:
    path = Path(request.config.getoption("--shared-data")) / "sp500_20_prices.csv.gz"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path} (pass --shared-data=FOLDER)")
    return pd.read_csv(path, index_col=0, parse_dates=True).astype(float).iloc[-1260:]  # five years


def _targets(prices: pd.DataFrame, kind: str) -> dict[str, float]:
    if kind == "max_sharpe":
        from pypfopt import EfficientFrontier, expected_returns, risk_models

        ef = EfficientFrontier(expected_returns.mean_historical_return(prices), risk_models.sample_cov(prices))
        ef.max_sharpe(risk_free_rate=0.0)
        raw = pd.Series(ef.clean_weights())
    else:
        rng = np.random.default_rng(int(kind.rsplit("_", 1)[1]))
        raw = pd.Series(rng.dirichlet(np.full(prices.shape[1], 0.7)), index=prices.columns)
    weights = np.floor(raw / raw.sum() * 1e9) / 1e9  # sums to at most 1: the cash target is ~0
    return {s: float(w) for s, w in weights.items() if w > 0}


def l2(shares: dict[str, float], weights: dict[str, float], latest: pd.Series, value: float) -> float:
    """L2 distance over assets and cash of a start-from-cash allocation to ``weights``."""
    symbols = sorted(set(weights) | set(shares))
    held = np.array([shares.get(s, 0.0) * latest[s] for s in symbols])
    w = np.array([weights.get(s, 0.0) for s in symbols])
    cash_gap = (value - held.sum()) / value - (1 - w.sum())
    return float(np.sqrt(np.sum((held / value - w) ** 2) + cash_gap**2))


def _finwiz(weights: dict[str, float], latest: pd.Series, value: float) -> dict[str, float]:
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=0.0) for s in weights],
        target_weights=weights,
        cash=value,
        method="minimize_costs",
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=False,
    )
    result = rebalance(config, latest[list(weights)])
    assert result.is_compliant
    return dict(result.post_trade_holdings)


@pytest.mark.parametrize("kind", ["max_sharpe", "random_1", "random_2"])
def test_against_pypfopt(benchmark: Any, sample_prices: pd.DataFrame, kind: str) -> None:
    pytest.importorskip("pypfopt", reason="PyPortfolioOpt is not installed (pip install finwiz[bench])")
    import cvxpy as cp
    from pypfopt.discrete_allocation import DiscreteAllocation

    weights = _targets(sample_prices, kind)
    latest = sample_prices.iloc[-1][list(weights)]  # pypfopt's LP wants prices of the weighted names only
    solver = "HIGHS" if "HIGHS" in cp.installed_solvers() else "SCIP"

    def finwiz_all() -> list[dict[str, float]]:
        return [_finwiz(weights, latest, value) for value in VALUES]

    benchmark.group = "quality-pypfopt"
    benchmark.extra_info.update(kind=f"finwiz_{kind}", assets=len(weights), lp_solver=solver)
    ours = benchmark.pedantic(finwiz_all, rounds=1, warmup_rounds=0)
    misses = []
    print(f"\npypfopt {kind}: value | finwiz L2 | greedy L2 | lp L2 | finwiz / better")
    for value, shares in zip(VALUES, ours, strict=True):
        greedy, _ = DiscreteAllocation(weights, latest, total_portfolio_value=value).greedy_portfolio()
        lp, _ = DiscreteAllocation(weights, latest, total_portfolio_value=value).lp_portfolio(solver=solver)
        figures = {
            name: l2({k: float(v) for k, v in alloc.items()}, weights, latest, value)
            for name, alloc in (("finwiz", shares), ("greedy", greedy), ("lp", lp))
        }
        better = min(figures["greedy"], figures["lp"])
        ratio = figures["finwiz"] / better
        label = f"{value / 1000:g}k"
        benchmark.extra_info.update({f"{label}_{k}": v for k, v in figures.items()})
        benchmark.extra_info[f"{label}_ratio"] = ratio
        print(
            f"  {value:>9,.0f} | {figures['finwiz']:.5f} | {figures['greedy']:.5f} | {figures['lp']:.5f} | {ratio:.3f}"
        )
        if figures["finwiz"] > better * (1 + 1e-9):
            misses.append(f"{label}: finwiz {ratio:.3f}x the better peer's L2")
    _xfail_if(misses, benchmark)
