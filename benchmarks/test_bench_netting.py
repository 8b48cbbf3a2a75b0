"""The netting rule on 30-asset accounts (issue 24 item 1): finwiz against the independent MIQP
with the rule (``tests/optimizer/tax/reference.py``: one formula, a binary per kink, SCIP), and the
time against the same request under ``tax_model="linear"``, in the same process.

    pytest benchmarks/test_bench_netting.py -p no:randomly -s

No shared data: the accounts are the reference's seeded generator (30 assets, 2-4 lots each)
with a year to date and carry-forward per case. Prints each case's gap and the two times; asserts
the gap (<= 0.5 %), never a time.
"""

from __future__ import annotations

import time

import pytest
from tests.optimizer.tax.reference import evaluate, random_instance, reference_optimum, trades_of

from finwiz.optimizer import rebalance

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # SCIP's own, through cvxpy

CASES = {
    "harvest_to_the_limit": {"realized_short_ytd": 2_000.0},
    "short_carry_over": {"realized_short_ytd": -4_000.0, "realized_long_ytd": 5_000.0},
    "carry_forward": {"realized_long_ytd": 1_000.0, "loss_carryforward": 6_000.0},
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", list(CASES))
def test_netting_on_30_assets_within_half_a_percent_of_the_miqp(kind: str, seed: int) -> None:
    inst = random_instance(seed, assets=(30, 30), lots=(2, 4), tax_weight=(1.0, 0.1)[seed % 2])
    inst = inst.with_(tax_model="netting", **CASES[kind])
    start = time.perf_counter()
    result = rebalance(inst.config(), inst.price_map())
    netting = time.perf_counter() - start
    start = time.perf_counter()
    linear = rebalance(inst.with_(tax_model="linear").config(), inst.price_map())
    blind = time.perf_counter() - start
    best = reference_optimum(inst, time_limit=120.0)
    got = evaluate(inst, *trades_of(inst, result))
    as_linear = evaluate(inst, *trades_of(inst, linear))
    scale = max(abs(best.objective), 1e-5)
    gap, linear_gap = (got.objective - best.objective) / scale, (as_linear.objective - best.objective) / scale
    print(
        f"\n{kind} seed {seed}: gap {gap:+.4%} (the linear model's answer {linear_gap:+.2%}), "
        f"netting {netting:.2f} s, linear {blind:.2f} s ({netting / blind:.0f}x), SCIP {best.seconds:.1f} s "
        f"(proven {best.proven})"
    )
    assert not got.violations
    assert gap <= 5e-3
