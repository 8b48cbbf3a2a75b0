"""The search's own step per asset: the exact quadratic on that side, cut to the room the coupled
rows leave. Found by the seeded load (benchmarks/test_bench_load.py, request 196): a $5 name in a
$5M account under a binding turnover cap went one share a move, the search stopped at its CPU
safety, and the same request gave other trades after other requests (guarantee 6)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from finwiz.optimizer import RebalancingEngine
from tests.optimizer.discrete.reference import Instance, config_of, objective, single_and_pair_gains, solve_miqp


def _cheap_name_under_a_turnover_cap() -> Instance:
    return Instance(
        symbols=[f"A{i:02d}" for i in range(5)],
        prices=np.array([27.34, 141.37, 406.08, 5.42, 3.21]),
        held=np.array([8139.0, 1776.0, 404.0, 609951.0, 249527.0]),
        cash=255434.21,
        target=np.array([0.2026383, 0.3501065, 0.2066264, 0.1534928, 0.0450493]),
        sectors=["X"] * 5,
        method="minimize_trades",
        rate=0.001,
        min_trade=1000.0,
        max_turnover=0.151679,
    )


def _shares(inst: Instance, result: object) -> np.ndarray:
    signed = {t.symbol: t.shares if t.action.value == "buy" else -t.shares for t in result.trades}  # type: ignore[attr-defined]
    return np.array([signed.get(s, 0.0) for s in inst.symbols])


def test_a_cheap_name_under_a_binding_turnover_cap_reaches_the_miqp_optimum_in_a_few_moves() -> None:
    inst = _cheap_name_under_a_turnover_cap()
    config, prices = config_of(inst)
    result = RebalancingEngine().rebalance(config, pd.Series(prices))
    assert not [w for w in result.warnings if "budget" in w]
    shares = _shares(inst, result)
    optimum = solve_miqp(inst, time_limit=60.0)
    assert optimum.proven
    assert objective(inst, shares) <= optimum.objective * (1 + 1e-5)
    assert single_and_pair_gains(inst, shares)[0] == 0.0


def test_the_same_request_gives_the_same_trades_after_others() -> None:
    inst = _cheap_name_under_a_turnover_cap()
    config, prices = config_of(inst)
    fresh = _shares(inst, RebalancingEngine().rebalance(config, pd.Series(prices)))
    engine = RebalancingEngine()
    for scale in (0.5, 2.0):  # the same structure, other holdings: the cached model's warm start
        other_config, other_prices = config_of(dataclasses.replace(inst, held=np.floor(inst.held * scale)))
        engine.rebalance(other_config, pd.Series(other_prices))
    assert np.array_equal(_shares(inst, engine.rebalance(config, pd.Series(prices))), fresh)
