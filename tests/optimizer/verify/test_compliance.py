"""``breaches``: the limits concrete share trades break, by name."""

from __future__ import annotations

from typing import Any

import numpy as np

from finwiz import Holding, PortfolioConfiguration
from finwiz.optimizer import build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.verify._compliance import breaches, post_trade_state


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


def test_checks_state_each_row_in_its_unit_and_the_tightest_asset() -> None:
    """Each row's limit, value and slack times its own show factor (a per-row array, one factor,
    or a one-element array broadcast), the side its finite bound says; a per-asset group shows its
    tightest member only."""
    from finwiz.optimizer.describe._model import Affine, LimitGroup
    from finwiz.optimizer.verify._compliance import checks_at

    z = np.array([0.1, 0.2, 0.3])  # rows: z0, z1, z2 (no offset)
    rows = Affine(np.arange(3), np.arange(3), np.ones(3), np.zeros(3))
    lower, upper = np.array([-np.inf, 0.25, -np.inf]), np.array([0.15, np.inf, 0.2])
    for show, factors in (
        (np.array([2.0, 3.0, 4.0]), [2.0, 3.0, 4.0]),
        (10.0, [10.0] * 3),
        (np.array([5.0]), [5.0] * 3),
    ):
        group = LimitGroup("cap", rows, lower, upper, ("A", "B", "C"), unit="currency", show=show)
        checks = checks_at([("term", group)], z)
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
    tightest = checks_at(
        [("term", LimitGroup("cap", rows, lower, upper, ("A", "B", "C"), show=2.0, per_asset=True))], z
    )
    assert [(c.constraint, c.slack) for c in tightest] == [("cap[C]", (0.2 - 0.3) * 2.0)]


def _group_checks_alone(group: Any, z: np.ndarray, term: str) -> list[tuple[Any, ...]]:
    """One group's checks as they were computed, group by group: ``(constraint, term, kind,
    limit, value, slack, satisfied, unit)`` with each figure's type."""
    value = group.value(z)
    show = np.asarray(group.show, dtype=float)
    upper_side = np.isfinite(group.upper)
    limit = np.where(upper_side, group.upper, group.lower)
    slack = np.where(upper_side, limit - value, value - limit)
    rows = [int(np.argmin(slack))] if group.per_asset and len(slack) else list(range(len(slack)))
    scale, limits = show[rows] if show.shape == value.shape else show, limit[rows]
    ok = slack[rows] >= -1e-9 * np.fmax(1.0, np.abs(limits))
    out = []
    for j, r in enumerate(rows):
        name = f"{group.name}[{group.members[r]}]" if group.members[r] != group.name else group.name
        figures = [(limits * scale)[j], (value[rows] * scale)[j], (slack[rows] * scale)[j]]
        kind = "<=" if upper_side[r] else ">="
        out.append((name, term, kind, *(float(f).hex() for f in figures), bool(ok[j]), group.unit))
    return out


def test_the_checks_of_all_groups_at_once_are_each_groups_own() -> None:
    """The compliance table of every group in one pass: per row the same figures to the bit, the
    same names, sides and order as each group checked alone (per-asset groups by their tightest
    row, a sector group by every row, ratio groups, one-row groups), at breaching trades too."""
    from finwiz.optimizer.verify._compliance import checks_at

    symbols = ["AAA", "BBB", "CCC", "DDD"]
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=100.0) for s in symbols],
        target_weights={"AAA": 0.3, "BBB": 0.3, "CCC": 0.2, "DDD": 0.1},
        cash=2_000.0,
        tolerance=0.0,
        max_position_weight=0.35,
        min_cash_weight=0.02,
        max_turnover=0.4,
        sectors={"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Energy"},
        sector_caps={"Tech": 0.55, "Energy": 0.5},
        no_buy=["DDD"],
    )
    data = build_problem_data(config, {"AAA": 10.0, "BBB": 20.0, "CCC": 5.0, "DDD": 40.0})
    model = Model.of([t for t in constraint_terms() if t.applies(data)], data)
    groups = model.checked_groups
    assert len(groups) >= 4
    assert any(g.per_asset for _, g in groups)
    assert any(g.per is not None for _, g in groups)
    rng = np.random.default_rng(7)
    for shares in [
        np.zeros(4),
        np.array([-50.0, 60.0, 100.0, -100.0]),
        *rng.integers(-100, 150, (20, 4)).astype(float),
    ]:
        z = post_trade_state(data, shares).trade_vector(data)
        got = [
            (c.constraint, c.term, c.kind, c.limit.hex(), c.value.hex(), c.slack.hex(), c.satisfied, c.unit)
            for c in checks_at(groups, z)
        ]
        assert {type(c.limit) for c in checks_at(groups, z)} == {float}
        assert got == [row for term, group in groups for row in _group_checks_alone(group, z, term)]
    assert checks_at([], np.zeros(2 * 4 + 5)) == []


def test_the_states_cost_totals_are_its_arrays_sums() -> None:
    """The post-trade state sums its costs once: the totals (and the total cost) are the arrays'
    own sums to the bit, with a market impact model too."""
    import pandas as pd

    from finwiz import MarketImpactModel

    config = PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=300.0), Holding(symbol="BBB", shares=100.0)],
        target_weights={"AAA": 0.3, "BBB": 0.6},
        cash=1_000.0,
        transaction_cost_rate=0.0013,
    )
    impact = MarketImpactModel(pd.Series({"AAA": 5_000.0, "BBB": 800.0}), pd.Series({"AAA": 0.02, "BBB": 0.03}))
    for market_impact in (None, impact):
        data = build_problem_data(config, {"AAA": 10.0, "BBB": 17.3}, market_impact=market_impact)
        for shares in (np.array([-120.0, 77.0]), np.array([3.0, -9.0]), np.zeros(2)):
            state = post_trade_state(data, shares)
            assert type(state.transaction_cost) is float
            assert state.transaction_cost == float(state.transaction_costs.sum())
            assert state.impact_cost == float(state.impact_costs.sum())
            assert state.total_cost == float(state.transaction_costs.sum() + state.impact_costs.sum())
            if market_impact is not None and shares.any():
                assert state.impact_cost > 0
