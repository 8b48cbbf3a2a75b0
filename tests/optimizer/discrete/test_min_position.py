"""``min_position_value``: every post-trade position is zero or worth at least the minimum.

Checked against an independent whole-share model (``reference.solve_miqp``: SCIP, a binary per
asset making each position semi-continuous), and from shares x prices alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwiz import Holding, InfeasibleRebalanceError, PortfolioConfiguration, rebalance
from finwiz.optimizer import RebalancingEngine
from finwiz.settings import RebalancingSettings
from tests.optimizer.discrete.reference import Instance, config_of, generate, objective, solve_miqp, violations
from tests.optimizer.test_one_model import Proposal

pytest.importorskip("pyscipopt")


def _instance(seed: int) -> Instance:
    """A 12-asset account whose minimum (the 30th percentile of the target values) binds."""
    inst = generate(seed, n=12)
    inst.min_position = float(round(np.quantile(inst.target * inst.ref, 0.3), 0))
    return inst


def _shares(inst: Instance, result: object) -> np.ndarray:
    index = {s: i for i, s in enumerate(inst.symbols)}
    shares = np.zeros(inst.n)
    for t in result.trades:  # type: ignore[attr-defined]
        shares[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    return shares


def _sized(config: PortfolioConfiguration, prices: dict[str, float], result: object) -> list[str]:
    """The assets whose post-trade position (shares x price) is neither 0 nor the minimum."""
    minimum = config.min_position_value
    assert minimum is not None
    after = dict(config.shares_by_symbol())
    for t in result.trades:  # type: ignore[attr-defined]
        after[t.symbol] = after.get(t.symbol, 0.0) + (t.shares if t.action.value == "buy" else -t.shares)
    return [s for s, q in after.items() if 0 < abs(q * prices[s]) < minimum * (1 - 1e-9)]


@pytest.mark.parametrize("seed", [2, 3, 6, 8, 11, 13])
def test_exact_mode_is_the_independent_semicontinuous_optimum(seed: int) -> None:
    inst = _instance(seed)
    config, prices = config_of(inst)
    best = solve_miqp(inst, time_limit=30.0)
    assert violations(inst, best.shares) == []
    shares = _shares(inst, rebalance(config, prices, exact=True))
    assert violations(inst, shares) == []
    assert objective(inst, shares) >= best.bound - 1e-6 * abs(best.bound)
    assert objective(inst, shares) <= best.objective * (1 + 1e-4)


@pytest.mark.parametrize(
    ("seed", "within"), [(2, 1e-9), (3, 1e-9), (6, 1e-3), (11, 1e-9), (8, 1e-9), (13, 0.003), (10, 0.0)]
)
def test_the_default_path_keeps_the_minimum_near_the_independent_optimum(seed: int, within: float) -> None:
    """Measured (benchmarks/test_bench_min_position.py): SCIP's optimum on 2, 3, 6, 8 and 11;
    0.19 % above it on 13 (2.4 % when the rule was settled after the search; 8: 4.1 %); on 10,
    7 % below the answer SCIP has at 30 s (59 % above it before)."""
    inst = _instance(seed)
    config, prices = config_of(inst)
    best = solve_miqp(inst, time_limit=30.0)
    result = rebalance(config, prices)
    shares = _shares(inst, result)
    assert violations(inst, shares) == []
    assert objective(inst, shares) <= best.objective * (1 + within)
    rows = [c for c in result.compliance if c.term == "min_position_value"]
    held = [s for s, q in zip(inst.symbols, inst.held + shares, strict=True) if q != 0]
    assert sorted(c.constraint for c in rows) == sorted(f"min_position_value[{s}]" for s in held)
    assert all(c.satisfied and c.value >= inst.min_position for c in rows)


def test_a_feasible_request_on_150_assets_is_answered() -> None:
    """$2M, 150 assets: a binding sector cap, a $14.7k minimum trade, no-sell holdings below the
    minimum. SCIP's semi-continuous model finds trades that keep every limit
    (benchmarks/test_bench_min_position.py); it was refused naming min_position_value[S138]."""
    inst = generate(2, n=150, value=2e6)
    inst.min_position = float(round(np.quantile(inst.target * inst.ref, 0.3), 0))
    assert inst.max_sector is not None
    assert inst.min_trade == 14692.0
    x0 = inst.held * inst.prices
    assert any(0 < x0[i] < inst.min_position for i in inst.no_sell)
    config, prices = config_of(inst)
    shares = _shares(inst, rebalance(config, prices))
    assert violations(inst, shares) == []


def _small_book(fractional: bool, **changes: object) -> tuple[PortfolioConfiguration, dict[str, float]]:
    prices = {"A": 100.0, "B": 50.0, "C": 20.0, "D": 7.0}
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=q) for s, q in (("A", 30), ("B", 40), ("C", 30), ("D", 100))],
        target_weights={"A": 0.5, "B": 0.3, "C": 0.15, "D": 0.03},
        cash=500.0,
        allow_fractional_shares=fractional,
        min_position_value=1000.0,
        **changes,  # type: ignore[arg-type]
    )
    return config, prices


@pytest.mark.parametrize("fractional", [False, True])
def test_a_target_below_the_minimum_is_sold_out_exactly(fractional: bool) -> None:
    """D's target ($204) is below the $1,000 minimum: it is sold out to the last share."""
    config, prices = _small_book(fractional)
    result = rebalance(config, prices)
    assert _sized(config, prices, result) == []
    assert result.post_trade_weights["D"] == 0.0


def test_a_trade_not_worth_its_cost_is_kept_when_the_minimum_needs_it() -> None:
    """Under a benefit threshold no trade beats, every trade is left out that some limit lets go:
    not D's sale, which takes it from $700 (below the $1,000 minimum) to zero."""
    config, prices = _small_book(False, min_benefit=1e6)
    result = rebalance(config, prices)
    assert _sized(config, prices, result) == []
    assert result.post_trade_weights["D"] == 0.0


@pytest.mark.parametrize("blocked", ["no_trade", "no_sell"])
def test_a_held_asset_below_the_minimum_that_cannot_trade_is_refused_by_name(blocked: str) -> None:
    """D ($700) may not be sold (and, under no_trade, not bought): below the minimum either way
    unless raised; no_sell leaves raising it, no_trade nothing."""
    config, prices = _small_book(False, **{blocked: ["D"]})
    if blocked == "no_sell":
        result = rebalance(config, prices)
        assert _sized(config, prices, result) == []
        return
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, prices)
    assert "min_position_value" in caught.value.constraint_names
    assert "no_trade" in caught.value.constraint_names
    assert "min_position_value[D]" in str(caught.value)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    quantile=st.floats(0.05, 0.6),
    fractional=st.booleans(),
    exact=st.booleans(),
)
def test_every_position_is_zero_or_at_least_the_minimum(
    seed: int, quantile: float, fractional: bool, exact: bool
) -> None:
    inst = generate(seed, n=int(np.random.default_rng(seed).integers(5, 13)))
    inst.min_position = float(round(np.quantile(inst.target * inst.ref, quantile), 0)) + 1.0
    config, prices = config_of(inst)
    config = config.model_copy(update={"allow_fractional_shares": fractional})
    # Exact mode stopped at a 1 s limit: the rule must hold on a program stopped early too (and
    # 40 examples at SCIP's default 10 s took most of a CI run).
    engine = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=1.0))
    try:
        result = engine.rebalance(config, prices, exact=exact)
    except InfeasibleRebalanceError:
        return  # e.g. an asset inside its band held below the minimum
    assert _sized(config, prices, result) == []
    assert result.is_compliant


def test_a_strategy_that_leaves_a_remnant_is_repaired_to_zero_or_the_minimum() -> None:
    """A user's strategy sells D down to 10 shares ($70): repaired, never a SolverError."""
    config, prices = _small_book(False)
    engine = RebalancingEngine()
    engine.strategies["remnant"] = Proposal("remnant", {"D": -90.0})
    result = engine.rebalance(config.model_copy(update={"method": "remnant"}), prices)
    assert _sized(config, prices, result) == []
    assert any("repaired" in w for w in result.warnings)


@pytest.mark.parametrize("exact", [False, True])
def test_a_minimum_that_makes_the_request_infeasible_is_named(exact: bool) -> None:
    """Seed 0: S05 and S10 are held inside their bands below the $3,969 minimum (SCIP's
    semi-continuous model is infeasible too); without the minimum the request is answered."""
    inst = _instance(0)
    config, prices = config_of(inst)
    rebalance(config.model_copy(update={"min_position_value": None}), prices, exact=exact)
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, prices, exact=exact)
    assert "min_position_value" in caught.value.constraint_names


@pytest.mark.parametrize("fractional", [False, True])
def test_a_minimum_the_coupled_limits_cannot_meet_is_named_not_the_share_grid(fractional: bool) -> None:
    """C ($600) and D ($700) are below the $1,000 minimum; selling either out is a trade under the
    $800 minimum trade, raising either one a trade over the 1 % turnover cap. Without the minimum,
    no trade keeps every limit; with it, nothing does, and the minimum is named, not the grid."""
    config, prices = _small_book(fractional, min_trade_size=800.0, max_turnover=0.01)
    rebalance(config.model_copy(update={"min_position_value": None}), prices)
    with pytest.raises(InfeasibleRebalanceError) as caught:
        rebalance(config, prices)
    assert "min_position_value" in caught.value.constraint_names
    assert "whole shares" not in str(caught.value)
    assert "lot sizes" not in str(caught.value)
