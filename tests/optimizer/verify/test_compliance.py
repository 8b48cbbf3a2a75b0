"""``breaches``: the limits concrete share trades break, by name."""

from __future__ import annotations

import numpy as np

from finwiz import Holding, PortfolioConfiguration
from finwiz.optimizer import build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import breaches


def test_breaches_names_the_cap_the_minimum_trade_and_the_lot() -> None:
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=100.0), Holding(symbol="BBB", shares=100.0)],
        target_weights={"AAA": 0.4, "BBB": 0.4},
        cash=1_000.0,
        tolerance=0.0,
        max_position_weight=0.5,
        min_trade_size=300.0,
    )
    data = build_problem_data(config, {"AAA": 10.0, "BBB": 10.0})  # $3,000: $1,000 each and cash
    groups = Model.of([t for t in constraint_terms() if t.applies(data)], data).checked_groups
    assert breaches(data, np.array([0.0, 0.0]), groups) == []
    assert breaches(data, np.array([-40.0, 40.0]), groups) == []  # BBB at $1,400: 47 %
    assert breaches(data, np.array([-60.0, 60.0]), groups) == ["max_position[BBB]"]  # 53 %
    small = np.array([-20.0, 20.0])  # $200 trades under the $300 minimum
    assert breaches(data, small, groups) == ["min_trade_size[AAA]", "min_trade_size[BBB]"]
    assert breaches(data, small, groups, assets=np.array([1])) == ["min_trade_size[BBB]"]
    odd = np.array([-40.5, 40.5])  # half shares: whole-share lots
    assert breaches(data, odd, groups) == []
    assert breaches(data, odd, groups, lots=True) == ["lots[AAA]", "lots[BBB]"]


def test_the_trades_point_is_kept_per_data_and_is_the_data_s_point() -> None:
    """The checks and the reasons read one ``z``; another data's point is its own (not the kept one)."""
    import dataclasses

    from finwiz.optimizer.verify._compliance import post_trade_state, trade_point

    config = PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=100.0), Holding(symbol="BBB", shares=100.0)],
        target_weights={"AAA": 0.4, "BBB": 0.4},
        cash=1_000.0,
    )
    data = build_problem_data(config, {"AAA": 10.0, "BBB": 10.0})
    state = post_trade_state(data, np.array([-40.0, 40.0]))
    z = state.trade_vector(data)
    assert state.trade_vector(data) is z
    np.testing.assert_array_equal(z, trade_point(data, state.trade_values))
    other = dataclasses.replace(data, ref_value=2 * data.ref_value)
    np.testing.assert_array_equal(state.trade_vector(other), trade_point(other, state.trade_values))
    assert not np.array_equal(state.trade_vector(other), z)


def test_a_result_is_what_validating_its_own_fields_gives(
    sample_config: PortfolioConfiguration, sample_prices: object
) -> None:
    """The result's per-symbol maps, trades and checks are set without validation: they must be
    exactly what validation would make of them (Python floats, the models themselves)."""
    from finwiz import RebalancingResult, rebalance

    result = rebalance(sample_config, sample_prices)  # type: ignore[arg-type]
    assert result.trades
    assert result.compliance
    assert RebalancingResult.model_validate(result.model_dump()) == result
    for name in ("current_holdings", "post_trade_holdings", "prices", "current_weights", "post_trade_weights"):
        values = getattr(result, name)
        assert {type(v) for v in values.values()} == {float}, name
        assert {type(k) for k in values} == {str}, name
    assert set(result.target_weights) == set(result.prices)
    assert result.model_fields_set >= {"trades", "compliance", "prices", "current_weights"}
