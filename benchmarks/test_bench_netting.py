"""The netting rule on 30-asset accounts (issue 24 item 1): finwiz against the independent MIQP
with the rule (``tests/optimizer/tax/reference.py``: one formula, a binary per kink, SCIP), and the
time against the same request under ``tax_model="linear"``, in the same process.

    pytest benchmarks/test_bench_netting.py -p no:randomly -s

No shared data: the accounts are the reference's seeded generator (30 assets, 2-4 lots each)
with a year to date and carry-forward per case. Prints each case's gap and the two times; asserts
the gap (<= 0.5 %), never a time.

With ``--shared-data``: the 431-asset taxable account of ``test_bench_tax.py`` (~10 lots per asset,
the default tax weight), netting against linear in this process, cold cache each (issue 24:
netting <= 3x linear; a miss is recorded and the test marked xfail, not strict). Prints both
times and the two answers' exact objectives (``reference.evaluate``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.optimizer.tax.reference import evaluate, history_instance, random_instance, reference_optimum, trades_of

from finwiz.optimizer import clear_cache, rebalance

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


def test_netting_on_the_431_asset_book_against_linear(make_problem: Any, shared_returns: Any) -> None:
    problem = make_problem(431)
    inst = history_instance(
        shared_returns, problem.prices.to_numpy(), problem.target, problem.shares, problem.cash, seed=0
    ).with_(tax_weight=0.5 / 431)
    seconds, scored = {}, {}
    for model in ("linear", "netting"):
        case = inst.with_(tax_model=model)
        clear_cache()
        start = time.perf_counter()
        result = rebalance(case.config(), case.price_map())
        seconds[model] = time.perf_counter() - start
        scored[model] = evaluate(inst.with_(tax_model="netting"), *trades_of(case, result))
        assert not scored[model].violations
    ratio = seconds["netting"] / seconds["linear"]
    print(
        f"\n431 assets: netting {seconds['netting']:.2f} s, linear {seconds['linear']:.2f} s ({ratio:.1f}x); "
        f"objective with the netted tax: netting's answer {scored['netting'].objective:.6g}, "
        f"linear's {scored['linear'].objective:.6g}"
    )
    assert scored["netting"].objective <= scored["linear"].objective  # the netted tax, as the netting answer is
    if ratio > 3:
        pytest.xfail(f"netting {ratio:.1f}x linear on 431 assets (target 3x)")
