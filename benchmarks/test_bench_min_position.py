"""``min_position_value`` against an independent whole-share model (issue 21).

Instances come from ``tests/optimizer/discrete/reference.py``'s seeded generator with the minimum
at the 30th percentile of the target values (as in ``tests/optimizer/discrete/test_min_position.py``);
the optimum is that module's MIQP (written from the README, a binary per asset making each
position semi-continuous, solved by SCIP). Two sets:

- 12 assets, seeds 2-13: finwiz's objective against SCIP's best answer (and its dual bound);
- 150 assets at $2M, seeds 1-5: never refused where SCIP finds whole-share trades that keep every
  limit (seed 2: a binding sector cap, a $14.7k minimum trade, a no-sell holding below the
  minimum), and the time against the same request without the minimum, in the same process.

Run: ``pytest benchmarks/test_bench_min_position.py -m slow -p no:randomly -s``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from tests.optimizer.discrete.reference import Instance, Optimum, config_of, generate, objective, solve_miqp, violations

from finwiz import InfeasibleRebalanceError, rebalance

SMALL_SEEDS = (2, 3, 6, 8, 10, 11, 13)
LARGE_SEEDS = (1, 2, 3, 4, 5)


def _with_minimum(inst: Instance) -> Instance:
    inst.min_position = float(round(np.quantile(inst.target * inst.ref, 0.3), 0))
    return inst


def _shares(inst: Instance, result: object) -> np.ndarray:
    index = {s: i for i, s in enumerate(inst.symbols)}
    shares = np.zeros(inst.n)
    for t in result.trades:  # type: ignore[attr-defined]
        shares[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    return shares


def _timed(inst: Instance, minimum: bool) -> tuple[np.ndarray | None, float]:
    """finwiz's trades (None: refused) and the seconds of the second identical request (the first
    compiles)."""
    config, prices = config_of(inst)
    if not minimum:
        config = config.model_copy(update={"min_position_value": None})
    for _ in range(2):
        start = time.perf_counter()
        try:
            shares = _shares(inst, rebalance(config, prices))
        except InfeasibleRebalanceError:
            shares = None
        seconds = time.perf_counter() - start
    return shares, seconds


@pytest.mark.slow
def test_min_position_against_the_semicontinuous_miqp() -> None:
    print(f"\n{'seed':>4} {'finwiz':>11} {'scip':>11} {'bound':>11} {'gap %':>7} {'s':>5} {'s w/o':>5} proven")
    for seed in SMALL_SEEDS:
        inst = _with_minimum(generate(seed, n=12))
        shares, seconds = _timed(inst, True)
        _, without = _timed(inst, False)
        assert shares is not None, seed
        assert violations(inst, shares) == [], seed
        ours = objective(inst, shares)
        best = solve_miqp(inst, time_limit=60.0)
        assert ours >= best.bound * (1 - 1e-6), seed
        gap = ours / best.objective - 1
        print(
            f"{seed:>4} {ours:>11.5e} {best.objective:>11.5e} {best.bound:>11.5e} {100 * gap:>7.2f}"
            f" {seconds:>5.2f} {without:>5.2f} {best.proven}"
        )


@pytest.mark.slow
def test_min_position_on_150_assets_answers_what_scip_can() -> None:
    print(f"\n{'seed':>4} {'finwiz':>11} {'scip':>11} {'gap %':>7} {'s':>5} {'s w/o':>5} {'ratio':>5}")
    wrong: list[int] = []  # refused although SCIP found whole-share trades that keep every limit
    for seed in LARGE_SEEDS:
        inst = _with_minimum(generate(seed, n=150, value=2e6))
        shares, seconds = _timed(inst, True)
        _, without = _timed(inst, False)
        try:
            best: Optimum | None = solve_miqp(inst, time_limit=60.0)
        except TypeError:  # SCIP stopped with no answer (reference.py reads None values)
            best = None
        feasible = best is not None and not violations(inst, best.shares)
        if shares is None:
            print(f"{seed:>4} refused ({'SCIP found trades keeping every limit' if feasible else 'SCIP: none found'})")
            wrong += [seed] if feasible else []
            continue
        assert violations(inst, shares) == [], seed
        ours = objective(inst, shares)
        scip = best.objective if best is not None and feasible else float("nan")
        print(
            f"{seed:>4} {ours:>11.5e} {scip:>11.5e} {100 * (ours / scip - 1):>7.2f} {seconds:>5.2f} {without:>5.2f}"
            f" {seconds / without:>5.1f}"
        )
    assert wrong == []
