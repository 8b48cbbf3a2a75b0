"""Whole shares on small accounts against the exact MIQP optimum (issue 23).

Instances come from ``tests/optimizer/discrete/reference.py``'s seeded generator (15-40 names,
synthetic prices $5-$900, $5k-$400k, drifted holdings, `MINIMIZE_COSTS` or the default strategy,
two to five of: position caps, sector caps, turnover caps, minimum trades, lots, cash flows,
bands, no-sell lists); the optimum is that module's MIQP (written from the README, solved by SCIP).
Run: ``pytest benchmarks/test_bench_small.py -m slow -p no:randomly -s``.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from tests.optimizer.discrete.reference import Instance, config_of, generate, objective, solve_miqp, violations

from finwiz import rebalance

SEEDS = range(1, 41)
WITHIN = 0.005


def _shares(inst: Instance, result: object) -> np.ndarray:
    index = {s: i for i, s in enumerate(inst.symbols)}
    shares = np.zeros(inst.n)
    for t in result.trades:  # type: ignore[attr-defined]
        shares[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    return shares


@pytest.mark.slow
def test_small_accounts_against_the_miqp() -> None:
    rows = []
    for seed in SEEDS:
        inst = generate(seed)
        config, prices = config_of(inst)
        with contextlib.suppress(Exception):  # the first request of a structure compiles: not timed
            rebalance(config, prices)
        start = time.perf_counter()
        try:
            result = rebalance(config, prices)
        except Exception as exc:
            rows.append((seed, inst, None, 0.0, None, type(exc).__name__))
            continue
        seconds = time.perf_counter() - start
        shares = _shares(inst, result)
        assert not violations(inst, shares), (seed, violations(inst, shares))
        ours = objective(inst, shares)
        assert ours == pytest.approx(result.objective_value, rel=1e-9, abs=1e-15)
        best = solve_miqp(inst, time_limit=20.0)
        rows.append((seed, inst, ours, seconds, best, ""))
    gaps, times = [], []
    print(
        f"\n{'seed':>4} {'n':>3} {'value':>8} {'method':>15} {'finwiz':>11} {'miqp':>11} {'gap %':>7} {'ms':>6} proven"
    )
    for seed, inst, ours, seconds, best, error in rows:
        if best is None:
            print(f"{seed:>4} {inst.n:>3} {inst.value:>8.0f} {inst.method:>15} refused: {error}")
            continue
        # Against the best answer known (SCIP's, or finwiz's where SCIP stopped at its limit
        # with a worse one); SCIP's dual bound is a bound on both, to its tolerances (on seed 11
        # SCIP "proved" an answer 0.017 % above finwiz's, which keeps every limit here).
        assert best.bound <= ours * (1 + 1e-3), (seed, best.bound, ours)
        gap = (ours - min(ours, best.objective)) / min(ours, best.objective)
        gaps.append(gap)
        times.append(seconds)
        print(
            f"{seed:>4} {inst.n:>3} {inst.value:>8.0f} {inst.method:>15} {ours:>11.4e} {best.objective:>11.4e}"
            f" {100 * gap:>7.2f} {1e3 * seconds:>6.0f} {best.proven}"
        )
    gaps_a = np.array(gaps)
    within = float(np.mean(gaps_a <= WITHIN))
    print(
        f"{len(gaps)} instances: {100 * within:.0f} % within {100 * WITHIN:g} % of the best known answer, worst"
        f" {100 * gaps_a.max():.2f} %, median time {1e3 * np.median(times):.0f} ms"
    )
    assert len(gaps) >= 30
