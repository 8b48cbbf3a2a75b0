"""Start from cash against PyPortfolioOpt's ``DiscreteAllocation`` (issue 23: "never farther than
PyPortfolioOpt's better answer on start-from-cash requests").

Cases, each a target, a portfolio value and (for long/short weights) a short ratio:

(a) PyPortfolioOpt's own ``DiscreteAllocation`` test settings (tests/test_discrete_allocation.py),
    on our copy of the same 20 stocks (``sp500_20_prices.csv.gz``, its whole history): max-Sharpe
    weights at a 2 % risk-free rate (``mean_historical_return``, ``sample_cov``), long-only or with
    weight bounds (-1, 1); $10k, $50k, $80k, $100k; short ratios 0.3 and 0.5, with and without
    ``reinvest``; the raw (not cleaned) weights, as its tests pass them.
(b) 20 random targets (seeds 0-19): 20-60 names of the 431 real assets (prices as in
    ``conftest._make_problem``), max-Sharpe (even seeds, risk-free 0) or minimum volatility (odd)
    from ``EfficientFrontier`` on their last 500 daily returns, ``clean_weights()``; portfolio
    value log-uniform in $7k-$950k.

A long/short case means what PyPortfolioOpt allocates: the long leg's weights scaled to sum to 1
(to 1 + short ratio with ``reinvest``), the short leg's to the short ratio, both in fractions of
the portfolio value V, the short proceeds kept in cash. finwiz gets exactly those targets
(``allow_short`` for the short leg), all in cash, zero costs, tolerance 0, no minimum trade, once
with ``minimize_costs`` and once with the default strategy; PyPortfolioOpt its ``greedy_portfolio``
and ``lp_portfolio`` (HiGHS; its log goes to a captured file descriptor, not stdout).

Distance, written here from the README's tracking term (post-trade weights, cash included, zero
costs so V' = V): ``sqrt(sum_i (q_i p_i / V - t_i)^2 + (cash / V - (1 - sum_i t_i))^2)`` with
``cash = V - sum_i q_i p_i``. Each method is judged on its own objective, from the README's
strategy table: ``minimize_costs`` (zero costs) the distance squared; the default strategy
(``MINIMIZE_TRADES``) distance squared + lambda x (number of trades), lambda = 0.1 x mean_i t_i^2
(the mean squared drift, all in cash): it leaves small targets unbought on purpose, so its distance
is printed but not its target. Target: finwiz's objective <= the better peer's (1e-9 relative).
A miss is recorded (``extra_info``, printed with ``-s``) and the test is marked xfail.

For ``minimize_costs`` each case is also solved exactly here (the distance squared over integer
shares on each target's side, cash >= 0; SCIP, 20 s): how many of finwiz's answers are the proven
whole-share optimum, and no answer may be below a proven optimum (the model would be wrong).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import PEER_WARNINGS, _make_problem
from finwiz import Holding, PortfolioConfiguration, rebalance

pytestmark = PEER_WARNINGS

METHODS = ["minimize_costs", "default"]


@dataclass(frozen=True)
class Case:
    """One start-from-cash request: signed targets (fractions of ``value``) and their prices."""

    name: str
    weights: dict[str, float]  # as PyPortfolioOpt gets them
    prices: pd.Series
    value: float
    short_ratio: float | None = None
    reinvest: bool = False

    def targets(self) -> dict[str, float]:
        """What PyPortfolioOpt allocates, as fractions of the value (its legs, scaled)."""
        longs = {s: w for s, w in self.weights.items() if w >= 0}
        shorts = {s: -w for s, w in self.weights.items() if w < 0}
        if not shorts:
            return dict(longs)
        ratio = float(self.short_ratio or 0.0)
        scale = (1 + ratio) if self.reinvest else 1.0
        long_sum, short_sum = sum(longs.values()), sum(shorts.values())
        return {s: w / long_sum * scale for s, w in longs.items()} | {
            s: -w / short_sum * ratio for s, w in shorts.items()
        }


def distance(shares: dict[str, float], case: Case) -> float:
    """The README's tracking distance of an allocation from cash (see the module docstring)."""
    t = case.targets()
    symbols = sorted(set(t) | {s for s, q in shares.items() if q})
    held = np.array([shares.get(s, 0.0) * float(case.prices[s]) for s in symbols]) / case.value
    target = np.array([t.get(s, 0.0) for s in symbols])
    cash_gap = (1 - held.sum()) - (1 - target.sum())
    return float(np.sqrt(np.sum((held - target) ** 2) + cash_gap**2))


def objective(shares: dict[str, float], case: Case, method: str) -> float:
    """The method's objective (README) of an allocation from cash, zero costs."""
    d2 = distance(shares, case) ** 2
    if method == "minimize_costs":
        return d2
    t = np.array(list(case.targets().values()))
    return d2 + 0.1 * float(np.mean(t**2)) * sum(1 for q in shares.values() if q)


def whole_share_optimum(case: Case) -> tuple[float, bool]:
    """min distance^2 over whole shares, each on its target's side, paid from cash: (value, proven)."""
    import cvxpy as cp

    t = case.targets()
    symbols = list(t)
    target = np.array([t[s] for s in symbols])
    p = case.prices[symbols].to_numpy() * 100.0 / case.value
    q = cp.Variable(len(symbols), integer=True)
    held = cp.multiply(p, q)  # in percent: SCIP misjudges an objective of ~1e-6 (and fails on ~1e8)
    goal = target * 100.0
    side = np.where(target < 0, -1.0, 1.0)
    problem = cp.Problem(
        cp.Minimize(cp.sum_squares(held - goal) + cp.square(cp.sum(held) - goal.sum())),
        [cp.multiply(side, q) >= 0, cp.sum(held) <= 100.0],
    )
    with _quiet_fd():
        problem.solve(solver="SCIP", scip_params={"limits/time": 20.0})
    return float(problem.value) / 1e4, problem.status == cp.OPTIMAL


def finwiz_allocation(case: Case, method: str) -> dict[str, float]:
    t = case.targets()
    fields: dict[str, Any] = {} if method == "default" else {"method": method}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=0.0) for s in t],
        target_weights=t,
        cash=case.value,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=False,
        allow_short=any(w < 0 for w in t.values()),
        **fields,
    )
    result = rebalance(config, case.prices[list(t)])
    assert result.is_compliant
    return {s: float(q) for s, q in result.post_trade_holdings.items()}


@contextlib.contextmanager
def _quiet_fd() -> Iterator[None]:
    """File descriptor 1 to a temporary file: HiGHS writes its log from C, past ``sys.stdout``."""
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def peers(case: Case) -> dict[str, dict[str, float]]:
    from pypfopt.discrete_allocation import DiscreteAllocation

    names = list(case.weights)
    out = {}
    for name in ("greedy", "lp"):
        da = DiscreteAllocation(
            case.weights, case.prices[names], total_portfolio_value=case.value, short_ratio=case.short_ratio
        )
        with _quiet_fd():
            alloc, _ = (
                da.greedy_portfolio(reinvest=case.reinvest)
                if name == "greedy"
                else da.lp_portfolio(reinvest=case.reinvest, solver="HIGHS")
            )
        out[name] = {s: float(q) for s, q in alloc.items()}
    return out


# --------------------------------------------------------------------------- the cases


def _own_cases(folder: Path) -> list[Case]:
    from pypfopt import EfficientFrontier, expected_returns, risk_models

    prices = pd.read_csv(folder / "sp500_20_prices.csv.gz", index_col=0, parse_dates=True).astype(float)
    mu, cov = expected_returns.mean_historical_return(prices), risk_models.sample_cov(prices)
    latest = prices.ffill().iloc[-1]
    weights = {}
    for kind, bounds in (("long", (0, 1)), ("long_short", (-1, 1))):
        ef = EfficientFrontier(mu, cov, weight_bounds=bounds)
        raw = ef.max_sharpe(risk_free_rate=0.02)
        weights[kind] = {s: float(w) for s, w in raw.items() if abs(w) > 1e-9}
    # (kind, value, short ratio, reinvest): the settings of its greedy and LP tests, each once.
    settings = [
        ("long", 10_000.0, None, False),  # test_greedy/lp_portfolio_allocation, *_rmse_error
        ("long", 80_000.0, 0.4, False),  # test_lp_portfolio_allocation_different_params
        ("long", 100_000.0, None, False),  # test_rmse_decreases_with_value
        ("long_short", 10_000.0, 0.3, False),  # test_*_portfolio_allocation_short, *_rmse_error_short
        ("long_short", 10_000.0, 0.3, True),  # test_lp_portfolio_allocation_short_reinvest
        ("long_short", 50_000.0, 0.5, False),  # test_greedy_portfolio_allocation_short_different_params
        ("long_short", 50_000.0, 0.5, True),  # ..._different_params_reinvest
    ]
    return [
        Case(
            f"own_{kind}_{value / 1000:g}k" + (f"_sr{ratio}" if ratio else "") + ("_reinvest" if re else ""),
            weights[kind],
            latest,
            value,
            ratio,
            re,
        )
        for kind, value, ratio, re in settings
    ]


def _random_case(folder: Path, seed: int) -> Case:
    from pypfopt import EfficientFrontier, expected_returns, risk_models

    full = _make_problem(str(folder / "sp500_431_returns.csv.gz"), 431, 0)
    rng = np.random.default_rng(5000 + seed)
    n = int(rng.integers(20, 61))
    pick = sorted(rng.choice(431, n, replace=False))
    returns = full.returns.iloc[:, pick]
    value = float(np.exp(rng.uniform(np.log(7_000.0), np.log(950_000.0))))
    mu = expected_returns.mean_historical_return(returns, returns_data=True)
    ef = EfficientFrontier(mu, risk_models.sample_cov(returns, returns_data=True))
    kind = "max_sharpe" if seed % 2 == 0 else "min_vol"
    ef.max_sharpe(risk_free_rate=0.0) if kind == "max_sharpe" else ef.min_volatility()
    raw = pd.Series(ef.clean_weights())
    raw = np.floor(raw / raw.sum() * 1e9) / 1e9  # sums to at most 1: the cash target is ~0
    weights = {s: float(w) for s, w in raw.items() if w > 0}
    return Case(f"random{seed:02d}_{kind}_n{n}_{value / 1000:.1f}k", weights, full.prices, value)


@pytest.fixture(scope="module")
def cases(request: pytest.FixtureRequest) -> list[Case]:
    pytest.importorskip("pypfopt", reason="PyPortfolioOpt is not installed (pip install finwiz[bench])")
    folder = Path(request.config.getoption("--shared-data"))
    if not (folder / "sp500_20_prices.csv.gz").exists() or not (folder / "sp500_431_returns.csv.gz").exists():
        pytest.skip(f"benchmark data not found in {folder} (pass --shared-data=FOLDER)")
    return _own_cases(folder) + [_random_case(folder, seed) for seed in range(20)]


@pytest.mark.parametrize("method", METHODS)
def test_from_cash_against_pypfopt(benchmark: Any, cases: list[Case], method: str) -> None:
    import cvxpy as cp

    if "HIGHS" not in cp.installed_solvers():
        pytest.skip("PyPortfolioOpt's LP needs HiGHS here")
    benchmark.group = "quality-pypfopt-from-cash"
    benchmark.extra_info.update(kind=f"finwiz_{method}", cases=len(cases))
    ours = benchmark.pedantic(lambda: [finwiz_allocation(c, method) for c in cases], rounds=1, warmup_rounds=0)
    misses, ratios, at_optimum = [], [], 0
    print(f"\nfrom cash, {method}: case | names | objective: finwiz greedy lp | finwiz / better | distance ratio")
    for case, shares in zip(cases, ours, strict=True):
        allocations = {"finwiz": shares} | peers(case)
        f = {k: objective(v, case, method) for k, v in allocations.items()}
        d = {k: distance(v, case) for k, v in allocations.items()}
        ratio = f["finwiz"] / min(f["greedy"], f["lp"])  # every objective > 0: whole shares never hit the target
        d_ratio = d["finwiz"] / min(d["greedy"], d["lp"])
        ratios.append(ratio)
        benchmark.extra_info[f"{case.name}_ratio"] = ratio
        benchmark.extra_info[f"{case.name}_distance_ratio"] = d_ratio
        print(
            f"  {case.name:36s} | {len(case.weights):2d} | {f['finwiz']:.6g} {f['greedy']:.6g} {f['lp']:.6g}"
            f" | {ratio:.4f} | {d_ratio:.4f}"
        )
        if method == "minimize_costs" and "SCIP" in cp.installed_solvers():
            best, proven = whole_share_optimum(case)
            at_optimum += proven and f["finwiz"] <= best * (1 + 1e-9)
            assert not proven or f["finwiz"] >= best * (1 - 1e-7), (case.name, f["finwiz"], best)
            print(
                f"    whole-share optimum {best:.6g} ({'proven' if proven else 'time limit'}): {f['finwiz'] / best:.4f}"
            )
        if ratio > 1 + 1e-9:
            misses.append(f"{case.name}: {ratio:.4f}x the better peer's objective")
    benchmark.extra_info.update(worst_ratio=max(ratios), farther=len(misses), at_proven_optimum=at_optimum)
    if method == "minimize_costs":
        print(f"  at the proven whole-share optimum in {at_optimum} of {len(cases)}")
    print(f"  farther in {len(misses)} of {len(cases)}, ratio {min(ratios):.4f}-{max(ratios):.4f}")
    if misses:
        benchmark.extra_info["missed"] = "; ".join(misses)
        pytest.xfail("; ".join(misses))
