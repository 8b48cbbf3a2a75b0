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


def test_group_checks_state_each_row_in_its_unit_and_the_tightest_asset() -> None:
    """Each row's limit, value and slack times its own show factor (a per-row array, one factor,
    or a one-element array broadcast), the side its finite bound says; a per-asset group shows its
    tightest member only."""
    from finwiz.optimizer.describe._model import Affine, LimitGroup
    from finwiz.optimizer.verify._compliance import group_checks

    z = np.array([0.1, 0.2, 0.3])  # rows: z0, z1, z2 (no offset)
    rows = Affine(np.arange(3), np.arange(3), np.ones(3), np.zeros(3))
    lower, upper = np.array([-np.inf, 0.25, -np.inf]), np.array([0.15, np.inf, 0.2])
    for show, factors in (
        (np.array([2.0, 3.0, 4.0]), [2.0, 3.0, 4.0]),
        (10.0, [10.0] * 3),
        (np.array([5.0]), [5.0] * 3),
    ):
        group = LimitGroup("cap", rows, lower, upper, ("A", "B", "C"), unit="currency", show=show)
        checks = group_checks(group, z, "term")
        expected = [  # (name, kind, limit, value, slack, kept) in row units
            ("cap[A]", "<=", 0.15, 0.1, 0.15 - 0.1, True),
            ("cap[B]", ">=", 0.25, 0.2, 0.2 - 0.25, False),
            ("cap[C]", "<=", 0.2, 0.3, 0.2 - 0.3, False),
        ]
        assert [(c.constraint, c.kind, c.satisfied, c.unit, c.term) for c in checks] == [
            (name, kind, kept, "currency", "term") for name, kind, _, _, _, kept in expected
        ]
        for check, factor, (_, _, limit, value, slack, _) in zip(checks, factors, expected, strict=True):
            assert (check.limit, check.value, check.slack) == (limit * factor, value * factor, slack * factor)
            assert type(check.limit) is float
            assert type(check.satisfied) is bool
    tightest = group_checks(LimitGroup("cap", rows, lower, upper, ("A", "B", "C"), show=2.0, per_asset=True), z, "term")
    assert [(c.constraint, c.slack) for c in tightest] == [("cap[C]", (0.2 - 0.3) * 2.0)]
