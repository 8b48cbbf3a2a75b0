"""The engine's stages (prepare, continuous, whole shares, verify, result) each run once, and the
result says what ran; iterative terms are driven by ``Term.refine``, not by the engine knowing them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import RebalancingEngine
from finwiz.optimizer import TargetTrackingTerm, Term, TradeCountTerm, cache_info, clear_cache
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import Description

STAGES = ["prepare", "continuous", "whole_shares", "verify", "result"]


def test_a_minimize_trades_request_shows_its_continuous_solves(sample_prices: pd.Series, make_config: Any) -> None:
    config = make_config(sample_prices, method="minimize_trades", max_position_weight=0.06)
    clear_cache()
    result = RebalancingEngine().rebalance(config, sample_prices)
    assert [s.name for s in result.stages] == STAGES
    continuous = result.stages[1]
    # The re-weighted L1 solves and the debias solve, all in the one continuous stage, each after
    # the first warm from the kept OSQP workspace (updated in place, not set up again).
    assert continuous.solver_calls >= 2
    assert cache_info() == {"hits": continuous.solver_calls - 1, "misses": 1, "size": 1}
    assert result.stages[2].rounds >= 1  # the descent ran at least one round
    assert sum(s.seconds for s in result.stages) <= result.solve_time_seconds


def test_exact_mode_records_its_mip_stage(sample_prices: pd.Series, make_config: Any) -> None:
    config = make_config(sample_prices, method="minimize_costs")
    result = RebalancingEngine().rebalance(config, sample_prices, exact=True)
    assert [s.name for s in result.stages] == ["prepare", "continuous", "exact_mip", "verify", "result"]


class Anchor(Term):
    """||w - a||^2 with the anchor ``a`` moved to the last solve's weights until it settles: a
    proximal-point iteration, whose fixed point is the optimum of the other terms alone."""

    name = "anchor"
    refined = 0  # on the class: the registry hands each rebalance a copy of the strategy's terms

    def describe(self, data: ProblemData) -> Description:
        anchor = data.options.get("anchor", data.x0)
        return Description(weight_squares=[(np.ones(data.n), anchor)])

    def refine(self, trades: Sequence[np.ndarray], data: ProblemData) -> ProblemData | None:
        anchor = data.options.get("anchor", data.x0)
        weights = data.x0 + trades[-1]
        if np.max(np.abs(weights - anchor)) < 1e-9:
            return None
        type(self).refined += 1
        return dataclasses.replace(data, options={**data.options, "anchor": weights})


def test_a_user_term_with_refine_is_solved_again_until_it_settles(sample_prices: pd.Series, make_config: Any) -> None:
    cap = 0.06
    config = make_config(
        sample_prices,
        max_position_weight=cap,
        allow_fractional_shares=True,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
    )
    Anchor.refined = 0
    engine = RebalancingEngine()
    engine.strategies["anchored"] = [TargetTrackingTerm(), Anchor()]
    result = engine.rebalance(config.model_copy(update={"method": "anchored"}), sample_prices)
    # The anchor's fixed point: the nearest portfolio to the target under the caps, by plain cvxpy.
    symbols = list(config.target_weights)
    target = np.array([config.target_weights[s] for s in symbols])
    w = cp.Variable(len(symbols))
    objective = cp.sum_squares(w - target) + cp.square(cp.sum(w) - target.sum())
    cp.Problem(cp.Minimize(objective), [w >= 0, w <= cap, cp.sum(w) <= 1]).solve(solver="CLARABEL")
    got = np.array([result.post_trade_weights[s] for s in symbols])
    assert np.max(np.abs(got - w.value)) < 1e-6
    assert Anchor.refined >= 5  # one solve would stop halfway between the holdings and the optimum
    assert result.stages[1].solver_calls == Anchor.refined + 1


def test_trade_count_refines_then_debiases_then_settles(sample_prices: pd.Series, make_config: Any) -> None:
    from finwiz.optimizer.describe._data import build_problem_data

    config = make_config(sample_prices, method="minimize_trades")
    data = build_problem_data(config, sample_prices)
    term = TradeCountTerm(iterations=3)
    first = data.target - data.x0
    weighted = term.refine([first], data)
    assert isinstance(weighted, ProblemData)
    assert weighted.count_weights is not None
    # The traded set did not change: the debias solve next, the untraded assets fixed.
    second = first.copy()
    second[0] = 0.0
    debias = term.refine([second, second], data)
    assert isinstance(debias, list)
    assert all(d.debias for d in debias)
    assert debias[-1].blocked["fixed"][0]
    assert not debias[-1].blocked["fixed"][1:].any()
    assert term.refine([second, second, second], debias[-1]) is None
    # The set changed but the iterations are spent: the debias solve too.
    assert all(d.debias for d in term.refine([first, second, first], data))  # type: ignore[union-attr]


def _costs_objective(config: Any, prices: pd.Series, result: Any) -> float:
    """MINIMIZE_COSTS' objective from shares and prices alone: ||w - t||^2 + cash gap^2 + cost."""
    symbols = list(config.target_weights)
    p = prices[symbols].to_numpy()
    held = {h.symbol: h.shares for h in config.holdings}
    q0 = np.array([held.get(s, 0.0) for s in symbols])
    q = np.array([result.post_trade_holdings[s] for s in symbols])
    ref = float(q0 @ p) + config.cash + config.cash_flow
    t = np.array([config.target_weights[s] for s in symbols])
    w = q * p / ref
    cost = config.transaction_cost_rate * float(np.abs((q - q0) * p).sum()) / ref
    return float(np.sum((w - t) ** 2) + (w.sum() - t.sum()) ** 2 + cost)


def test_the_small_trades_alternative_runs_once_and_only_ever_helps(
    sample_prices: pd.Series, make_config: Any, monkeypatch: Any
) -> None:
    from finwiz.optimizer.discrete import _stage as _discrete

    config = make_config(sample_prices, seed=0, method="minimize_costs", min_trade_size=10_000.0)
    with_rule = RebalancingEngine().rebalance(config, sample_prices)
    note = with_rule.stages[2].note
    assert note.count("small trades") == 1
    assert "the alternative won" in note
    monkeypatch.setattr(_discrete, "_RESOLVE_THRESHOLD", np.inf)
    without = RebalancingEngine().rebalance(config, sample_prices)
    assert "small trades" not in without.stages[2].note
    ours, theirs = (_costs_objective(config, sample_prices, r) for r in (with_rule, without))
    assert ours == pytest.approx(with_rule.objective_value, rel=1e-9)
    # Never worse (the whole-share search now reaches the same answer without the alternative).
    assert ours <= theirs
