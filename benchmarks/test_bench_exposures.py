"""Issue 27: look-through exposure limits cost what sector caps cost.

On the conftest's book (real returns, 431 and 1000 assets, 11 sectors capped at 25 %, costs, a
turnover cap, the default strategy, whole shares), in the same run:

* ``sectors``: the sector caps given as ``sectors=`` + ``max_sector_weight`` (the baseline);
* ``table``: the same caps as a 0/1 ``exposures=`` table with ``exposure_caps`` -- the same
  model, so the same answer (objective to 1e-6) in at most 1.3x the baseline's time;
* ``funds``: the 0/1 sector table plus four regions every asset is spread over (a dense 4 x n
  block, as funds are), two regions capped 5 % under the targets' own level (binding): reported,
  with its ratio to the baseline.

Run: ``pytest benchmarks/test_bench_exposures.py -s -p no:randomly`` (prints the figures).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from finwiz.optimizer import clear_cache, rebalance

SIZES = [431, 1000]
ROUNDS = 3
REGIONS = ("US", "Europe", "Japan", "Emerging")


def _timed(config: Any, prices: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(ROUNDS):
        clear_cache()
        start = time.perf_counter()
        result = rebalance(config, prices)
        best = min(best, time.perf_counter() - start)
    return best, result


@pytest.mark.parametrize("n", SIZES)
def test_exposure_caps_cost_what_sector_caps_cost(make_problem: Any, n: int) -> None:
    problem = make_problem(n)
    common = {"method": "minimize_trades", "fractional": False}
    baseline = problem.config(**common)
    table = {s: {sector: 1.0} for s, sector in problem.sectors.items()}
    caps = dict.fromkeys(set(problem.sectors.values()), 0.25)
    as_table = problem.config(**common, sectors={}, max_sector_weight=None, exposures=table, exposure_caps=caps)
    rng = np.random.default_rng(n)
    spread = rng.dirichlet(np.ones(len(REGIONS)), size=n)
    funds_table = {
        s: {**table[s], **{f"region:{r}": float(x) for r, x in zip(REGIONS, spread[i], strict=True)}}
        for i, s in enumerate(problem.symbols)
    }
    level = spread.T @ problem.target
    region_caps = {f"region:{r}": float(0.95 * level[k]) for k, r in enumerate(REGIONS[:2])}
    funds = problem.config(
        **common, sectors={}, max_sector_weight=None, exposures=funds_table, exposure_caps={**caps, **region_caps}
    )
    t_sectors, r_sectors = _timed(baseline, problem.prices)
    t_table, r_table = _timed(as_table, problem.prices)
    t_funds, r_funds = _timed(funds, problem.prices)
    print(
        f"\nexposures-{n}: sectors {t_sectors:.3f}s, 0/1 table {t_table:.3f}s ({t_table / t_sectors:.2f}x), "
        f"funds (11 sectors + 4 dense regions) {t_funds:.3f}s ({t_funds / t_sectors:.2f}x); "
        f"objective sectors {r_sectors.objective_value:.9g} table {r_table.objective_value:.9g} "
        f"funds {r_funds.objective_value:.9g}"
    )
    assert r_table.objective_value == pytest.approx(r_sectors.objective_value, rel=1e-6, abs=1e-9)
    assert r_funds.is_compliant
    region = [c for c in r_funds.compliance if c.constraint.startswith("exposure_cap[region:")]
    assert min(c.slack for c in region) < 1e-3  # the region caps bind
    assert t_table <= 1.3 * t_sectors
