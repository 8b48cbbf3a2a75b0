"""The core issue's ratios: finwiz ``rebalance()`` against a plain cvxpy + Clarabel build-and-solve.

For 100, 500 and 2000 assets (10-factor risk model, sector caps, costs, turnover cap) each group
holds three timings of the same problem in the same run:

* ``plain``: build and solve the continuous problem with plain cvxpy + Clarabel (the reference);
* ``end_to_end``: ``rebalance()`` with an empty compiled-problem cache (validation, assembly,
  compilation, solve, verification, result);
* ``cached``: ``rebalance()`` with new prices, the compiled problem already cached (DPP re-solve).

Fractional shares make both sides solve exactly the same problem; ``end_to_end_whole_shares``
adds the whole-share rounding MILP. ``benchmarks/report.py`` turns these into ratios.
Targets: end to end <= 1.0x plain, cached <= 0.5x plain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import plain_cvxpy
from finwiz.optimizer import clear_cache, rebalance

SIZES = [100, 500, 2000]


def _rounds(n: int) -> int:
    return {100: 15, 500: 8, 2000: 3}[n]


def _cold(benchmark: Any, problem: Any, config: Any, kind: str) -> Any:
    """``rebalance()`` with an empty compiled-problem cache before every round."""
    benchmark.group = f"engine-{problem.n}"
    benchmark.extra_info.update(kind=kind, n=problem.n)
    return benchmark.pedantic(
        rebalance,
        args=(config, problem.prices),
        kwargs={"factor_model": problem.factor_model},
        setup=clear_cache,
        rounds=_rounds(problem.n),
        warmup_rounds=1,
    )


@pytest.mark.parametrize("n", SIZES)
def test_plain_cvxpy(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    benchmark.group = f"engine-{n}"
    benchmark.extra_info.update(kind="plain", n=n)
    w = benchmark.pedantic(plain_cvxpy, args=(problem,), rounds=_rounds(n), iterations=1, warmup_rounds=1)
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize("n", SIZES)
def test_end_to_end(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    result = _cold(benchmark, problem, problem.config(), "end_to_end")
    assert result.is_compliant
    assert result.max_constraint_residual <= 1e-6
    # Same problem: finwiz's continuous optimum matches the plain formulation.
    plain = plain_cvxpy(problem)
    finwiz_w = np.array([result.post_trade_weights[s] for s in problem.symbols])
    value_ratio = result.portfolio_value_after / result.portfolio_value_before
    assert np.max(np.abs(finwiz_w * value_ratio - plain)) < 1e-4
    benchmark.extra_info["max_residual"] = result.max_constraint_residual


@pytest.mark.parametrize("n", SIZES)
def test_end_to_end_whole_shares(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    result = _cold(benchmark, problem, problem.config(fractional=False), "end_to_end_whole_shares")
    assert result.is_compliant
    benchmark.extra_info["max_residual"] = result.max_constraint_residual


@pytest.mark.parametrize("n", SIZES)
def test_cached_resolve(benchmark: Any, make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    config = problem.config()
    fm = problem.factor_model
    rebalance(config, problem.prices, factor_model=fm)  # compile once
    prices = iter([problem.moved_prices(seed) for seed in range(200)])

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (config, next(prices)), {"factor_model": fm}

    benchmark.group = f"engine-{n}"
    benchmark.extra_info.update(kind="cached", n=n)
    result = benchmark.pedantic(rebalance, setup=setup, rounds=3 * _rounds(n), warmup_rounds=1)
    assert result.is_compliant
    assert result.max_constraint_residual <= 1e-6
