"""The headline problem of issue 11: the DEFAULT strategy (``minimize_trades``) with limits that bind.

A $2M account (``conftest.binding_problem``) at 100 / 431 / 500 / 2000 assets, whole shares: the
real GICS sectors of the 431 assets capped at 25 % (``Unclassified`` uncapped; synthetic sectors
above 431), two sectors targeted at 30 % and 28 %, four assets at 3 % against a 2 % position cap,
a turnover cap at 80 % of what the request trades without it, a $1,000 minimum trade, a $150k
deposit and the five most overweight names on a no-sell list. Costs 10 bp.

Each group ``binding-N`` holds, in the same run:

* ``plain``: the continuous MINIMIZE_COSTS problem with every limit built and solved with plain
  cvxpy + Clarabel (``conftest.plain_continuous``, written from the README's definitions), the
  reference of the ratios; its optimum must show every limit binding (slack <= 1e-6) and must equal
  finwiz's ``continuous_objective`` for MINIMIZE_COSTS with the same limits (fractional shares, no
  minimum trade; with the minimum it must bound it from below);
* ``whole_minimize_trades`` (the default strategy) and ``whole_minimize_costs``: ``rebalance()``
  end to end, cold cache, whole shares. Each must be compliant (checked again here: whole shares,
  minimum trade). Each limit's slack in ``result.compliance`` is recorded in whole shares of its
  dearest member (the turnover cap's and the minimum trade's: of the dearest asset) and should be
  within two (for the sector caps: at least one capped sector; at 100 assets only one binds at the
  continuous optimum); a no-sell name should end above its target. A whole-share answer that
  leaves more room is a quality miss: recorded in ``not_binding`` and marked xfail (not strict).

Target (issue 11): whole shares with binding limits at 431-500 assets in <= 1.0x ``plain``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import BINDING_MIN_TRADE, BindingProblem, plain_continuous
from finwiz.optimizer import clear_cache, rebalance

# 2000: about a second a request since the discrete-step work, and it caught a regression the smaller sizes did not
SIZES = [100, 431, 500, 2000]
METHODS = ["minimize_trades", "minimize_costs"]
OBJECTIVE_RTOL = 2e-6  # Clarabel's and finwiz's solver tolerances on the same optimum (measured: <= 7e-7)
SHARES_TOLERANCE = 2.0  # a limit binds when its slack is under this many shares of its dearest member


def _rounds(n: int) -> int:
    """Rounds per side, the same for finwiz and the plain model: a one-round median is one sample
    (a full garbage collection of the benchmark's heap, ~80 ms, can land in it)."""
    return {100: 10, 431: 5, 500: 5, 2000: 3}[n]


def _sector_members(problem: BindingProblem, sector: str) -> np.ndarray:
    return np.array([problem.sectors[s] == sector for s in problem.symbols])


def binding_figures(problem: BindingProblem, result: Any) -> dict[str, float]:
    """Each limit's slack on the returned trades, in whole shares of its dearest member."""
    prices = problem.prices.to_numpy()
    after, before = result.portfolio_value_after, result.portfolio_value_before
    figures: dict[str, float] = {}
    by_name = {c.constraint: c for c in result.compliance}
    position = [c for c in result.compliance if c.term == "max_position"]
    for check in position:
        symbol = check.constraint.split("[", 1)[1].rstrip("]")
        figures["position_cap_slack_shares"] = check.slack / (problem.prices[symbol] / after)
    for sector in problem.capped_sectors:
        check = by_name[f"sector_cap[{sector}]"]
        dearest = float(prices[_sector_members(problem, sector)].max())
        figures[f"sector_cap_slack_shares[{sector}]"] = check.slack / (dearest / after)
    turnover = by_name["turnover_cap[turnover]"]
    figures["turnover_slack_shares"] = turnover.slack / (float(prices.max()) / before)
    minimum = next(c for c in result.compliance if c.term == "min_trade_size")
    figures["min_trade_slack_shares"] = minimum.slack / float(prices.max())
    # A no-sell name binds when it ends above its target: without the list it would be sold.
    weights = result.post_trade_weights
    target = dict(zip(problem.symbols, problem.target, strict=True))
    figures["no_sell_overweight"] = float(sum(weights[s] > target[s] for s in problem.no_sell))
    figures["cash_weight_after"] = result.cash_weight_after
    return figures


def check_binding(figures: dict[str, float], problem: BindingProblem) -> list[str]:
    """The limits that do not bind (empty when all do)."""
    loose = [f"{k}={v:.3g}" for k, v in figures.items() if "slack_shares" in k and not 0 <= v <= SHARES_TOLERANCE]
    sector_slacks = [v for k, v in figures.items() if k.startswith("sector_cap_slack")]
    if sector_slacks and min(sector_slacks) <= SHARES_TOLERANCE:  # one capped sector binding is enough
        loose = [x for x in loose if not x.startswith("sector_cap")]
    if figures["no_sell_overweight"] < 1:
        loose.append("no_sell: no listed name above its target")
    return loose


@pytest.mark.parametrize("n", SIZES)
def test_plain(benchmark: Any, binding_problem: Any, n: int) -> None:
    problem = binding_problem(n)
    limits = problem.limits(problem.config(method="minimize_costs"))
    benchmark.group = f"binding-{n}"
    benchmark.extra_info.update(kind="plain", n=n)
    opt = benchmark.pedantic(plain_continuous, args=(limits,), rounds=_rounds(n), warmup_rounds=1)
    # The design binds: at the continuous optimum every limit is at its bound.
    caps = [opt.weights[problem.symbols.index(s)] for s in problem.capped_assets]
    sector = max(float(_sector_members(problem, s) @ opt.weights) for s in problem.capped_sectors)
    listed = [problem.symbols.index(s) for s in problem.no_sell]
    no_sell = opt.weights[listed] - problem.target[listed]
    benchmark.extra_info.update(
        objective=opt.objective,
        turnover=opt.turnover,
        turnover_cap=problem.turnover_cap,
        cash_weight=opt.cash_weight,
    )
    assert max(abs(c - 0.02) for c in caps) < 1e-6
    assert abs(sector - 0.25) < 1e-6
    assert abs(opt.turnover - problem.turnover_cap) < 1e-6
    assert min(no_sell) > 0
    # Same limits, no minimum trade, fractional shares: finwiz's continuous optimum is the plain one.
    fractional = problem.config(method="minimize_costs", min_trade_size=0.0, allow_fractional_shares=True)
    result = rebalance(fractional, problem.prices)
    assert result.continuous_objective is not None
    assert abs(result.continuous_objective - opt.objective) <= OBJECTIVE_RTOL * opt.objective
    benchmark.extra_info["finwiz_continuous_objective"] = result.continuous_objective


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", SIZES)
def test_whole_shares(benchmark: Any, binding_problem: Any, n: int, method: str) -> None:
    problem = binding_problem(n)
    config = problem.config(method=method)
    benchmark.group = f"binding-{n}"
    benchmark.extra_info.update(kind=f"whole_{method}", n=n)
    result = benchmark.pedantic(
        rebalance, args=(config, problem.prices), setup=clear_cache, rounds=_rounds(n), warmup_rounds=0
    )
    assert result.rounding == "whole_shares"
    assert result.is_compliant, [c for c in result.compliance if not c.satisfied]
    assert result.max_constraint_residual <= 1e-6
    assert all(abs(t.shares - round(t.shares)) < 1e-9 for t in result.trades)
    traded = [t for t in result.trades if t.shares > 0]
    # every trade meets the minimum, except selling a position out
    small = [t for t in traded if t.trade_value < BINDING_MIN_TRADE and result.post_trade_holdings[t.symbol] != 0]
    assert not small
    figures = binding_figures(problem, result)
    benchmark.extra_info.update(figures)
    benchmark.extra_info.update(
        trades=len(traded),
        objective_value=result.objective_value,
        continuous_objective=result.continuous_objective,
        objective_gap=result.objective_gap,
        # What ran (result.stages): solver calls / descent rounds per stage, and any alternative.
        stages="; ".join(
            f"{s.name} {s.solver_calls}/{s.rounds}" + (f" ({s.note})" if s.note else "") for s in result.stages
        ),
    )
    if method == "minimize_costs":
        # The plain model has no minimum trade (no continuous model does), so its optimum bounds
        # finwiz's continuous one, whose re-solve fixes trades under half the minimum at zero.
        plain = plain_continuous(problem.limits(config))
        assert result.continuous_objective is not None
        assert plain.objective <= result.continuous_objective * (1 + OBJECTIVE_RTOL)
        assert plain.objective <= result.objective_value
        benchmark.extra_info["plain_objective"] = plain.objective
    loose = check_binding(figures, problem)
    print(
        f"\nbinding-{n} {method}: {benchmark.stats.stats.median * 1000:.0f} ms, {len(traded)} trades, "
        f"objective {result.objective_value:.6g} (continuous {result.continuous_objective:.6g}), "
        + ", ".join(f"{k}={v:.3g}" for k, v in figures.items())
    )
    if loose:  # a whole-share answer that leaves room under a binding limit: quality, not design
        benchmark.extra_info["not_binding"] = "; ".join(loose)
        pytest.xfail(f"limits left slack in whole shares (target <= {SHARES_TOLERANCE} shares): {loose}")
