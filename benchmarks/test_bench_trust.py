"""Trustworthy-solutions issue: what whole shares cost, heuristic vs exact trade counts, and the
time the repair and minimum-size steps add.

* Tracking loss: the 431-asset S&P problem at $1M with real GICS sectors (``sp500_431_sectors.csv``,
  ``Unclassified`` its own group) under 35 % sector caps: the default whole-share result against
  the continuous (fractional) optimum of the same request, as the increase of the Euclidean
  distance to target (cash included), in basis points. Target: under 1 bp.
* Trade count: MINIMIZE_TRADES's re-weighted L1 + rounding against the exact MIP (SCIP) on 50-
  and 100-asset instances. Target: within 10 %.
* Repair time: the whole-share stage (rounding, the minimum trade size, any alternative's
  re-solve) against the continuous solve, from each result's ``stages``. Target: under 20 % of
  the solve.

Run: ``pytest benchmarks/test_bench_trust.py -s``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finwiz import RebalancingEngine, RebalancingResult, rebalance
from finwiz.optimizer import clear_cache

VALUE = 1_000_000.0
MIP_SECONDS = 60.0


def _real_sectors(request: pytest.FixtureRequest, symbols: list[str]) -> dict[str, str]:
    path = Path(request.config.getoption("--shared-data")) / "sp500_431_sectors.csv"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path}")
    table = pd.read_csv(path).set_index("symbol")["sector"]
    return {s: str(table.get(s, "Unclassified")) for s in symbols}


def _request(make_problem: Any, request: pytest.FixtureRequest, n: int, **overrides: Any) -> Any:
    problem = make_problem(n)
    scale = VALUE / (float(problem.shares @ problem.prices.to_numpy()) + problem.cash)
    shares = np.floor(problem.shares * scale)
    cash = VALUE - float(shares @ problem.prices.to_numpy())
    config = problem.config(
        sectors=_real_sectors(request, problem.symbols),
        max_sector_weight=0.35,
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(problem.symbols, shares, strict=True)],
        cash=cash,
        **overrides,
    )
    return config, problem


def _distance_bp(result: RebalancingResult) -> float:
    return result.tracking_distance_after * 1e4


@pytest.mark.parametrize("method", ["minimize_costs", "risk_aware"])
def test_tracking_loss_of_whole_shares(
    benchmark: Any, make_problem: Any, request: pytest.FixtureRequest, method: str
) -> None:
    config, problem = _request(make_problem, request, 431, method=method, min_trade_size=100.0)
    fractional = rebalance(
        config.model_copy(update={"allow_fractional_shares": True, "min_trade_size": 0.0}),
        problem.prices,
        factor_model=problem.factor_model,
    )
    whole_config = config.model_copy(update={"allow_fractional_shares": False})
    benchmark.group = "trust-tracking-loss"
    whole = benchmark.pedantic(
        rebalance,
        args=(whole_config, problem.prices),
        kwargs={"factor_model": problem.factor_model},
        rounds=3,
        warmup_rounds=1,
    )
    assert whole.is_compliant
    loss = _distance_bp(whole) - _distance_bp(fractional)
    benchmark.extra_info.update(
        method=method,
        n=431,
        continuous_bp=round(_distance_bp(fractional), 3),
        whole_bp=round(_distance_bp(whole), 3),
        tracking_loss_bp=round(loss, 3),
        trades=len(whole.trades),
    )
    print(
        f"\n[{method}] distance to target: continuous {_distance_bp(fractional):.3f} bp, "
        f"whole shares {_distance_bp(whole):.3f} bp, loss {loss:.3f} bp, {len(whole.trades)} trades"
    )


@pytest.mark.parametrize("n", [50, 100])
def test_trade_count_heuristic_vs_exact(
    benchmark: Any, make_problem: Any, request: pytest.FixtureRequest, n: int
) -> None:
    config, problem = _request(
        make_problem,
        request,
        n,
        method="minimize_trades",
        trade_penalty=1e-5,
        min_trade_size=200.0,
        max_turnover=None,
        allow_fractional_shares=False,
    )
    heuristic = rebalance(config, problem.prices)
    engine = RebalancingEngine()
    engine.settings.mip_time_limit_seconds = MIP_SECONDS
    benchmark.group = "trust-trade-count"
    exact = benchmark.pedantic(engine.rebalance, args=(config, problem.prices), kwargs={"exact": True}, rounds=1)
    assert heuristic.is_compliant
    assert exact.is_compliant
    ratio = len(heuristic.trades) / max(len(exact.trades), 1)

    def objective(result: RebalancingResult) -> float:  # tracking^2 + lambda x trades + costs / V
        return result.tracking_distance_after**2 + 1e-5 * len(result.trades) + result.total_cost / VALUE

    benchmark.extra_info.update(
        n=n,
        heuristic_trades=len(heuristic.trades),
        exact_trades=len(exact.trades),
        ratio=round(ratio, 3),
        exact_status=exact.status,
        exact_gap=exact.mip_gap,
        heuristic_objective=objective(heuristic),
        exact_objective=objective(exact),
    )
    print(
        f"\n[n={n}] trades: heuristic {len(heuristic.trades)}, exact MIP {len(exact.trades)} "
        f"({exact.status} after <= {MIP_SECONDS:.0f} s, gap {exact.mip_gap}); ratio {ratio:.3f}; "
        f"objective heuristic {objective(heuristic):.4e} vs MIP {objective(exact):.4e}"
    )


@pytest.mark.parametrize("n", [100, 431])
def test_repair_time_share(benchmark: Any, make_problem: Any, request: pytest.FixtureRequest, n: int) -> None:
    """The whole-share stage (rounding, the minimum trade size, any alternative's re-solve) against
    the continuous solve, from each result's own stage record (``result.stages``)."""
    config, problem = _request(make_problem, request, n, method="minimize_costs", min_trade_size=500.0)
    clear_cache()
    rebalance(config, problem.prices, factor_model=problem.factor_model)  # compile once
    results: list[RebalancingResult] = []

    def run() -> RebalancingResult:
        result = rebalance(config, problem.prices, factor_model=problem.factor_model)
        results.append(result)
        return result

    benchmark.group = "trust-repair-time"
    result = benchmark.pedantic(run, rounds=5)
    assert result.is_compliant
    seconds = {
        name: float(np.median([_stage(r, name).seconds for r in results])) for name in ("continuous", "whole_shares")
    }
    solves = float(
        np.median([_stage(r, "continuous").solver_calls + _stage(r, "whole_shares").solver_calls for r in results])
    )
    share = seconds["whole_shares"] / seconds["continuous"]
    benchmark.extra_info.update(
        n=n,
        solve_ms=round(1e3 * seconds["continuous"], 2),
        repair_ms=round(1e3 * seconds["whole_shares"], 2),
        repair_share=round(share, 3),
        solves_per_call=solves,
    )
    print(
        f"\n[n={n}] continuous solve {1e3 * seconds['continuous']:.1f} ms, whole shares (rounding, minimum "
        f"size, alternatives) {1e3 * seconds['whole_shares']:.1f} ms per call ({share:.0%} of the solve), "
        f"{solves:.0f} solver calls per call"
    )


def _stage(result: RebalancingResult, name: str) -> Any:
    """The record of the stage ``name`` in ``result.stages``."""
    return next(stage for stage in result.stages if stage.name == name)
