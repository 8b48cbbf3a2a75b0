"""The benefit threshold (``min_benefit``) against an independent model: every subset of the
whole-share answer's trades (each at its size) is priced with the method's objective written out
here, and the answer must be the best subset in which each trade beats its threshold or is needed
by a limit."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from finwiz import Holding, PortfolioConfiguration, RebalancingEngine, rebalance

RATE = 0.005


def _case(seed: int, **overrides: object) -> tuple[PortfolioConfiguration, dict[str, float]]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i}" for i in range(6)]
    prices = {s: float(np.round(rng.uniform(20, 120), 2)) for s in symbols}
    target = rng.dirichlet(np.full(6, 4.0)) * 0.98
    drift = target * np.exp(rng.normal(0, 0.12, 6))
    value = 100_000.0
    shares = {s: float(np.floor(d * value / prices[s])) for s, d in zip(symbols, drift, strict=True)}
    fields: dict[str, object] = {
        "holdings": [Holding(symbol=s, shares=q) for s, q in shares.items()],
        "target_weights": dict(zip(symbols, target.tolist(), strict=True)),
        "cash": 2_000.0,
        "method": "minimize_costs",
        "tolerance": 0.0,
        "transaction_cost_rate": RATE,
        "min_trade_size": 0.0,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields), prices  # type: ignore[arg-type]


def _objective(config: PortfolioConfiguration, prices: dict[str, float], trade: dict[str, float]) -> float | None:
    """||w - t||^2 + (cash - cash_t)^2 + cost / V (MINIMIZE_COSTS, cash before costs), or None
    when the trades are infeasible (a short position, cash below zero after costs)."""
    symbols = config.symbols
    p = np.array([prices[s] for s in symbols])
    held = np.array([config.shares_by_symbol()[s] for s in symbols])
    q = np.array([trade.get(s, 0.0) for s in symbols])
    ref = float(held @ p) + config.cash + config.cash_flow
    cost = RATE * float(np.abs(q * p).sum())
    cash = config.cash + config.cash_flow - float(q @ p)
    if (held + q < 0).any() or cash - cost < -1e-9:
        return None
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    w = (held + q) * p / ref
    return float(((w - t) ** 2).sum() + (cash / ref - (1 - t.sum())) ** 2 + cost / ref)


def _best_stable(
    config: PortfolioConfiguration, prices: dict[str, float], trades: dict[str, float], m: float
) -> set[str]:
    ref = sum(config.shares_by_symbol()[s] * prices[s] for s in config.symbols) + config.cash + config.cash_flow
    best: tuple[float, set[str]] | None = None
    names = sorted(trades)
    for k in range(len(names) + 1):
        for kept in itertools.combinations(names, k):
            subset = {s: trades[s] for s in kept}
            value = _objective(config, prices, subset)
            if value is None:
                continue
            stable = True
            for s in kept:
                without = _objective(config, prices, {o: q for o, q in subset.items() if o != s})
                threshold = m * RATE * abs(trades[s] * prices[s]) / ref
                if without is not None and without - value <= threshold:
                    stable = False
                    break
            if stable and (best is None or value < best[0] - 1e-15):
                best = (value, set(kept))
    assert best is not None
    return best[1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [1.0, 4.0])
def test_min_benefit_keeps_the_best_subset_whose_trades_beat_the_threshold(seed: int, m: float) -> None:
    config, prices = _case(seed)
    free = rebalance(config, prices)
    trades = {t.symbol: t.signed_shares for t in free.trades}
    kept = rebalance(config.model_copy(update={"min_benefit": m}), prices)
    expected = _best_stable(config, prices, trades, m)
    assert {t.symbol: t.signed_shares for t in kept.trades} == {s: trades[s] for s in expected}


def test_a_threshold_leaves_out_trades_and_none_keeps_every_one() -> None:
    dropped = 0
    for seed in range(6):
        config, prices = _case(seed)
        free = rebalance(config, prices)
        assert rebalance(config.model_copy(update={"min_benefit": 0.0}), prices).trades == free.trades
        dropped += len(free.trades) - len(rebalance(config.model_copy(update={"min_benefit": 4.0}), prices).trades)
    assert dropped > 0


def test_a_trade_a_limit_needs_stays_whatever_the_threshold() -> None:
    config, prices = _case(0)
    heaviest = max(config.symbols, key=lambda s: config.shares_by_symbol()[s] * prices[s])
    capped = config.model_copy(update={"max_position_weights": {heaviest: 0.05}, "min_benefit": 1e6})
    result = rebalance(capped, prices)
    assert [t.symbol for t in result.trades if t.action.value == "sell"] == [heaviest]
    assert result.post_trade_weights[heaviest] <= 0.05 + 1e-12


@pytest.mark.parametrize("method", ["minimize_costs", "minimize_trades"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_trade_s_benefit_is_what_undoing_it_changes_in_the_objective(seed: int, method: str) -> None:
    # One pass of the pricer against the objective written out (reference.py) at each trade undone.
    from finwiz.optimizer._engine import _applicable, _with_constraints
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.discrete._benefit import benefits
    from finwiz.optimizer.solve._assembler import Model
    from tests.optimizer.discrete.reference import config_of, generate

    inst = generate(seed, method=method)
    config, prices = config_of(inst)
    data = build_problem_data(config, prices)
    model = Model.of(_applicable(_with_constraints(RebalancingEngine().strategies[method].terms(data)), data), data)
    order = [inst.symbols.index(s) for s in data.symbols]  # the model's assets in the instance's order
    rng = np.random.default_rng(seed)
    shares = np.where(rng.random(inst.n) < 0.6, rng.integers(-3, 4, inst.n), 0) * data.lot
    shares = np.maximum(shares, -inst.held[order])  # no short
    idx = np.flatnonzero(shares != 0)
    assert idx.size >= 2
    expected = []
    for i in idx:
        undone = shares.copy()
        undone[i] = 0.0
        expected.append(_in_instance(inst, order, undone) - _in_instance(inst, order, shares))
    np.testing.assert_allclose(benefits(model, shares, idx), expected, rtol=1e-7, atol=1e-12)


def _in_instance(inst: Any, order: list[int], shares: np.ndarray) -> float:
    from tests.optimizer.discrete.reference import objective

    ordered = np.zeros(inst.n)
    ordered[order] = shares
    return objective(inst, ordered)
