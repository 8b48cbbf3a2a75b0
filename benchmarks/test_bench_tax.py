"""Tax-aware rebalancing (issue 12), every figure scored in the independent model of
``tests.optimizer.tax.reference`` (the issue's MIQP written in plain cvxpy), never by finwiz's ``objective_value``.

All requests: ``minimize_costs``, zero costs, no minimum trade, tolerance 0; short-term rate 37 %,
long-term 20 %, 365 days.

(a) ``tax-431``: the 431 real assets (``conftest.make_problem(431)``, a $10M drifted account, whole
    shares) with lot histories from ``reference.history_instance``: ~10 lots per asset bought on
    month-ends over the five years to 2016-12-30 at the historical prices rebuilt from the returns
    (80 % long-term, 24 % at a loss). ``blind`` (``tax=None``, the reference of the ratios) against
    ``aware`` (the default ``tax_weight``, 1 / (2 x 431)), cold cache. A tax-blind sale relieves no
    lots of its own: its tax is scored twice, with FIFO relief (the brokers' default) and with the
    cheapest lots (what a tax-lot-aware back office would pick for the same trades). Target: ``aware`` at most 3x
    ``blind``'s time.
    ``tax-frontier``: ``tax_weight`` from 0 to 5: realised tax, tracking distance after trading
    (``sqrt(||w - t||^2 + (w_c - t_c)^2)``), harvested losses. Target: at some weight at least 50 %
    less tax than tax-blind (a cut of half |blind tax| when that is a net loss) for at most 10 %
    more distance; judged against FIFO relief, and recorded against cheapest-lot relief too. The
    weights run in one process, cache kept: at the default weight the trades that differ from
    ``aware``'s (same request, cold cache) are recorded (guarantee 6 wants none).
(b) ``tax-exact-30`` (``slow``): 20 random 30-asset accounts of the real returns ($250k, 3-10 lots
    per asset, ``reference.small_history_instance``), fractional and whole shares: how often
    finwiz's objective is within 0.1 % of the SCIP optimum of the reference MIQP (target >= 95 %)
    and the worst gap (target <= 1 %). SCIP has 30 s; an instance it does not prove (relative gap
    1e-6) is compared with its best answer and counted in ``scip_unproven``.

A missed target is recorded (``extra_info["missed"]``, printed with ``-s``) and the test marked
xfail (not strict), as in ``test_bench_quality.py``. Run: ``pytest benchmarks/test_bench_tax.py -s``
(``-m "not slow"`` skips (b)).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from tests.optimizer.tax.reference import (
    CENT,
    Evaluation,
    TaxInstance,
    evaluate,
    fixed_sides_optimum,
    history_instance,
    reference_optimum,
    small_history_instance,
    trades_of,
)

from conftest import PEER_WARNINGS
from finwiz.optimizer import clear_cache, rebalance

pytestmark = PEER_WARNINGS

TIME_RATIO_TARGET = 3.0
TAX_CUT_TARGET = 0.5
DISTANCE_SLACK = 0.10
DEFAULT_WEIGHT = 0.5 / 431  # TaxSettings' default for 431 assets
FRONTIER = [0.0, 0.001, DEFAULT_WEIGHT, 0.003, 0.01, 0.03, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0]
EXACT_N = 30
EXACT_SEEDS = range(20)
EXACT_REL = 1e-3
EXACT_HIT_TARGET = 0.95
EXACT_WORST_TARGET = 0.01
SCIP_TIME_LIMIT = 30.0

_RUN: dict[str, Any] = {"frontier": {}}
"""Figures the tests of one run share: the blind baseline's time and scores, the frontier."""


def _xfail_if(misses: list[str], benchmark: Any) -> None:
    if misses:
        benchmark.extra_info["missed"] = "; ".join(misses)
        pytest.xfail("; ".join(misses))


def _figures(e: Evaluation, prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}tax": e.tax,
        f"{prefix}distance": e.distance,
        f"{prefix}harvested_losses": e.losses,
        f"{prefix}realised_gains": e.gains,
        f"{prefix}net_realised_gain": e.net_gain,
    }


def _cut(tax: float, baseline: float) -> float:
    """How much less tax than ``baseline``, as a fraction of |baseline| (0.5: half of it saved)."""
    return (baseline - tax) / max(abs(baseline), 1.0)


@pytest.fixture(scope="session")
def tax_account(make_problem: Any, shared_returns: Any) -> TaxInstance:
    problem = make_problem(431)
    inst = history_instance(
        shared_returns, problem.prices.to_numpy(), problem.target, problem.shares, problem.cash, seed=0
    )
    return inst.with_(tax_weight=DEFAULT_WEIGHT)  # the default, ``tax_weight=None``: 1 / (2 n)


def _distance_before(inst: TaxInstance) -> float:
    zero = np.zeros(inst.n)
    return evaluate(inst, zero, zero, np.zeros(inst.lots)).distance


def _blind(inst: TaxInstance) -> dict[str, Any]:
    """The tax-blind rebalance's scores (FIFO and cheapest-lot relief) and a same-process time."""
    if "blind" not in _RUN:
        config, prices = inst.config(taxed=False), inst.price_map()
        seconds = []
        for _ in range(5):
            clear_cache()
            start = time.perf_counter()
            result = rebalance(config, prices)
            seconds.append(time.perf_counter() - start)
        _RUN["blind"] = {
            "seconds": float(np.median(seconds)),
            "fifo": evaluate(inst, *trades_of(inst, result, "fifo")),
            "best": evaluate(inst, *trades_of(inst, result, "best")),
        }
    return dict(_RUN["blind"])


# --------------------------------------------------------------------------- (a) 431 assets


def test_blind(benchmark: Any, tax_account: TaxInstance) -> None:
    inst = tax_account
    benchmark.group = "tax-431"
    benchmark.extra_info.update(kind="blind", n=inst.n, lots=inst.lots)
    config, prices = inst.config(taxed=False), inst.price_map()
    result = benchmark.pedantic(rebalance, args=(config, prices), setup=clear_cache, rounds=5, warmup_rounds=1)
    assert result.tax is None
    fifo = evaluate(inst, *trades_of(inst, result, "fifo"))
    best = evaluate(inst, *trades_of(inst, result, "best"))
    # Tax-blind trades know no wash-sale rule: the lots bought in the last month (within 30 days of
    # as_of) withhold their assets' loss lots only from the tax-aware answers.
    assert not [v for v in fifo.violations if not v.startswith("wash sale")]
    assert not [v for v in best.violations if not v.startswith("wash sale")]
    _RUN["blind"] = {"seconds": benchmark.stats.stats.median, "fifo": fifo, "best": best}
    benchmark.extra_info.update(_figures(fifo, "fifo_") | _figures(best, "best_lots_"))
    benchmark.extra_info["distance_before"] = _distance_before(inst)
    benchmark.extra_info["drift_closed"] = 1 - fifo.distance / _distance_before(inst)


def test_aware(benchmark: Any, tax_account: TaxInstance) -> None:
    inst = tax_account
    blind = _blind(inst)
    benchmark.group = "tax-431"
    benchmark.extra_info.update(kind="aware", n=inst.n, lots=inst.lots, tax_weight=inst.tax_weight)
    config, prices = inst.config(), inst.price_map()
    result = benchmark.pedantic(rebalance, args=(config, prices), setup=clear_cache, rounds=5, warmup_rounds=0)
    mine = evaluate(inst, *trades_of(inst, result))
    _RUN["aware"] = trades_of(inst, result)
    assert not mine.violations
    assert result.tax is not None
    assert abs(result.tax.estimated_tax - mine.tax) <= CENT * inst.lots  # each lot's gain rounds to the cent
    ratio = benchmark.stats.stats.median / blind["seconds"]
    benchmark.extra_info.update(
        _figures(mine)
        | {
            "time_ratio_to_blind": ratio,
            "tax_cut_vs_fifo": _cut(mine.tax, blind["fifo"].tax),
            "tax_cut_vs_best_lots": _cut(mine.tax, blind["best"].tax),
            "distance_ratio": mine.distance / blind["fifo"].distance,
            "trades": sum(t.shares > 0 for t in result.trades),
            "lots_sold": sum(len(t.lots) for t in result.trades),
        }
    )
    print(
        f"\ntax-431: aware {benchmark.stats.stats.median:.3f} s vs blind {blind['seconds']:.3f} s "
        f"({ratio:.1f}x, target <= {TIME_RATIO_TARGET}x); tax {mine.tax:,.0f} vs blind {blind['fifo'].tax:,.0f} "
        f"(FIFO) / {blind['best'].tax:,.0f} (cheapest lots); "
        f"distance {mine.distance:.3g} vs {blind['fifo'].distance:.3g}"
    )
    _xfail_if([f"time {ratio:.1f}x blind > {TIME_RATIO_TARGET}x"] if ratio > TIME_RATIO_TARGET else [], benchmark)


@pytest.mark.parametrize("weight", FRONTIER)
def test_frontier(benchmark: Any, tax_account: TaxInstance, weight: float) -> None:
    inst = tax_account.with_(tax_weight=weight)
    blind = _blind(inst)
    benchmark.group = "tax-frontier"
    benchmark.extra_info.update(kind=f"aware_{weight:g}", n=inst.n, tax_weight=weight)
    result = benchmark.pedantic(rebalance, args=(inst.config(), inst.price_map()), rounds=1, warmup_rounds=0)
    mine = evaluate(inst, *trades_of(inst, result))
    assert not mine.violations
    _RUN["frontier"][weight] = mine
    if weight == tax_account.tax_weight and "aware" in _RUN:
        # the same request as test_aware's (cold cache), solved after the other weights:
        # guarantee 6 wants the same trades
        warm, cold = trades_of(inst, result), _RUN["aware"]
        benchmark.extra_info["shares_bought_differing_from_cold"] = float(np.abs(warm[0] - cold[0]).sum())
        benchmark.extra_info["lot_shares_differing_from_cold"] = float(np.abs(warm[2] - cold[2]).sum())
    benchmark.extra_info.update(
        _figures(mine)
        | {
            "drift_closed": 1 - mine.distance / _distance_before(inst),
            "tax_cut_vs_fifo": _cut(mine.tax, blind["fifo"].tax),
            "tax_cut_vs_best_lots": _cut(mine.tax, blind["best"].tax),
            "distance_ratio": mine.distance / blind["fifo"].distance,
        }
    )


@pytest.mark.parametrize("fractional", [False, True], ids=["whole", "fractional"])
@pytest.mark.parametrize("budget", [20_000.0, 50_000.0])
def test_binding_budget_is_spent(benchmark: Any, tax_account: TaxInstance, budget: float, fractional: bool) -> None:
    """Issue 21: a binding gain budget on the 431 book, lots at 60 % of their historical cost (so
    that sales realise gains), 0.1 % costs: the budget is spent to within one share's gain, and the
    objective is above ``continuous_objective`` (a bound). Before the fix $20k realised $11.9k and
    $50k $40.4k (fractional $11.2k), and the "bound" was above the objective in zero-cost runs."""
    inst = tax_account.with_(lot_basis=np.round(tax_account.lot_basis * 0.6, 2), max_realized_gain=budget)
    if fractional:
        inst = inst.with_(fractional=True)
    config = inst.config(transaction_cost_rate=0.001)
    benchmark.group = "tax-budget"
    result = benchmark.pedantic(rebalance, args=(config, inst.price_map()), rounds=1, warmup_rounds=0)
    assert result.tax is not None
    net = result.tax.net_realized_gain
    one_share = float(np.max(inst.lot_gain_per_share))
    benchmark.extra_info.update(budget=budget, realised=net, unused=budget - net, one_share=one_share)
    benchmark.extra_info.update(objective=result.objective_value, bound=result.continuous_objective)
    print(f"\ntax-budget {budget:,.0f} ({'fractional' if fractional else 'whole'}): realised {net:,.2f}")
    assert net <= budget + CENT
    assert budget - net <= one_share
    assert result.objective_gap is not None
    assert result.objective_gap >= -1e-12


def test_frontier_target(tax_account: TaxInstance) -> None:
    """The frontier's table, and whether some weight meets the target (needs ``test_frontier``'s
    figures of the same run; each missing weight is solved here)."""
    blind = _blind(tax_account)
    rows = []
    for weight in FRONTIER:
        if weight not in _RUN["frontier"]:
            inst = tax_account.with_(tax_weight=weight)
            _RUN["frontier"][weight] = evaluate(inst, *trades_of(inst, rebalance(inst.config(), inst.price_map())))
        rows.append((weight, _RUN["frontier"][weight]))
    base = blind["fifo"]
    before = _distance_before(tax_account)
    lines = [
        f"distance before trading {before:.4g}",
        "",
        f"{'tax_weight':>10} {'tax':>12} {'cut vs FIFO':>12} {'cut vs best':>12} {'distance':>10} "
        f"{'x blind':>8} {'harvested':>12} {'drift closed':>12}",
        f"{'blind FIFO':>10} {base.tax:>12,.0f} {'':>12} {'':>12} {base.distance:>10.4g} "
        f"{1:>8.2f} {base.losses:>12,.0f} {1 - base.distance / before:>12.1%}",
        f"{'blind best':>10} {blind['best'].tax:>12,.0f} {'':>12} {'':>12} {blind['best'].distance:>10.4g} "
        f"{1:>8.2f} {blind['best'].losses:>12,.0f} {1 - blind['best'].distance / before:>12.1%}",
    ]
    for weight, e in rows:
        lines.append(
            f"{weight:>10g} {e.tax:>12,.0f} {_cut(e.tax, base.tax):>12.1%} {_cut(e.tax, blind['best'].tax):>12.1%} "
            f"{e.distance:>10.4g} {e.distance / base.distance:>8.2f} {e.losses:>12,.0f} "
            f"{1 - e.distance / before:>12.1%}"
        )
    print("\n".join(lines))

    def meets(reference: Evaluation) -> list[float]:
        return [
            w
            for w, e in rows
            if _cut(e.tax, reference.tax) >= TAX_CUT_TARGET and e.distance <= (1 + DISTANCE_SLACK) * reference.distance
        ]

    fifo_ok, best_ok = meets(base), meets(blind["best"])
    print(f"target met vs FIFO relief at tax_weight {fifo_ok or 'none'}; vs cheapest-lot relief at {best_ok or 'none'}")
    if not fifo_ok:
        pytest.xfail(f"no tax_weight saves {TAX_CUT_TARGET:.0%} of FIFO tax-blind tax within {DISTANCE_SLACK:.0%}")


# --------------------------------------------------------------------------- (b) against the exact MIQP


@pytest.mark.slow
@pytest.mark.parametrize("shares", ["fractional", "whole"])
def test_exact_gap(benchmark: Any, shared_returns: Any, shares: str) -> None:
    instances = [
        small_history_instance(shared_returns, EXACT_N, seed, fractional=shares == "fractional") for seed in EXACT_SEEDS
    ]
    benchmark.group = f"tax-exact-{EXACT_N}"
    benchmark.extra_info.update(kind=f"finwiz_{shares}", n=EXACT_N, instances=len(instances))

    def solve_all() -> list[Any]:
        return [rebalance(inst.config(), inst.price_map()) for inst in instances]

    results = benchmark.pedantic(solve_all, rounds=1, warmup_rounds=0)
    gaps, lines, unproven, scip_seconds, sides_missed = [], [], 0, 0.0, 0
    for seed, inst, result in zip(EXACT_SEEDS, instances, results, strict=True):
        mine = evaluate(inst, *trades_of(inst, result))
        assert not mine.violations, (seed, mine.violations)
        ref = reference_optimum(inst, SCIP_TIME_LIMIT)
        unproven += not ref.proven
        scip_seconds += ref.seconds
        gap = (mine.objective - ref.objective) / max(abs(ref.objective), 1e-8)
        gaps.append(gap)
        diagnosis = ""
        if gap > EXACT_REL and inst.fractional:
            # a miss: the sides finwiz picked, or the convex solve with those sides fixed?
            buy, sell, _ = trades_of(inst, result)
            own, *_ = fixed_sides_optimum(inst, (buy > 0).astype(float))
            side = np.where(buy > 0, 1, np.where(sell > 0, -1, 0))
            scip_side = np.where(ref.buy > 1e-9, 1, np.where(ref.sell > 1e-9, -1, 0))
            differ = int((side != scip_side).sum())
            diagnosis = (
                f"  sides differ on {differ}; {(mine.objective - own) / abs(own):.2e} above its own sides' optimum"
            )
            sides_missed += differ > 0
        lines.append(
            f"{seed:>4} {inst.lots:>5} {mine.objective:>13.7g} {ref.objective:>13.7g} {gap:>10.2e} "
            f"{ref.status:>9} {ref.seconds:>6.2f} {mine.tax:>9,.0f} {ref.evaluation.tax:>9,.0f}{diagnosis}"
        )
    g = np.array(gaps)
    hits = float(np.mean(g <= EXACT_REL))
    worst = float(g.max())
    benchmark.extra_info.update(
        hit_rate=hits,
        worst_gap=worst,
        median_gap=float(np.median(g)),
        scip_unproven=unproven,
        misses_on_sides=sides_missed,  # fractional: misses where finwiz picked other sides than SCIP
        scip_seconds=scip_seconds,
        finwiz_seconds=benchmark.stats.stats.median,
        speedup_vs_scip=scip_seconds / benchmark.stats.stats.median,
    )
    header = (
        f"{'seed':>4} {'lots':>5} {'finwiz':>13} {'SCIP':>13} {'gap':>10} {'status':>9} {'s':>6} "
        f"{'tax':>9} {'SCIP tax':>9}"
    )
    print(f"\ntax-exact-{EXACT_N} {shares}:\n{header}\n" + "\n".join(lines))
    print(
        f"within {EXACT_REL:.1%}: {hits:.0%} (target >= {EXACT_HIT_TARGET:.0%}), worst gap {worst:.3%} "
        f"(target <= {EXACT_WORST_TARGET:.0%}); finwiz {benchmark.stats.stats.median:.2f} s, SCIP {scip_seconds:.1f} s"
    )
    misses = []
    if hits < EXACT_HIT_TARGET:
        misses.append(f"{hits:.0%} within {EXACT_REL:.1%} < {EXACT_HIT_TARGET:.0%}")
    if worst > EXACT_WORST_TARGET:
        misses.append(f"worst gap {worst:.3%} > {EXACT_WORST_TARGET:.0%}")
    _xfail_if(misses, benchmark)
