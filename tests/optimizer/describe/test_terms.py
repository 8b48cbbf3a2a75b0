"""Each term's description evaluated at known trades against a hand computation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import FactorModel, PortfolioConfiguration, TermError
from finwiz.optimizer import (
    BudgetTerm,
    MarketImpactModel,
    MarketImpactTerm,
    PositionCapTerm,
    RiskTerm,
    SectorCapTerm,
    TargetTrackingTerm,
    Term,
    TermParts,
    TrackingErrorTerm,
    TradeCountTerm,
    TransactionCostTerm,
    TurnoverCapTerm,
    TurnoverPenaltyTerm,
    Variables,
    assemble,
    build_problem_data,
)
from finwiz.optimizer.describe._model import LimitGroup, trade_vector
from finwiz.optimizer.describe._terms import impact_fit
from finwiz.optimizer.solve._assembler import Model, _values, stack
from finwiz.optimizer.solve._pieces import _impact

PRICES = {"AAA": 10.0, "BBB": 20.0, "CCC": 50.0}


def make_data(**kw: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "holdings": [{"symbol": "AAA", "shares": 30}, {"symbol": "BBB", "shares": 10}, {"symbol": "CCC", "shares": 2}],
        "target_weights": {"AAA": 0.2, "BBB": 0.3, "CCC": 0.4},
        "cash": 500.0,
        "tolerance": 0.0,
        "sectors": {"AAA": "X", "BBB": "X", "CCC": "Y"},
    }
    options = {k: kw.pop(k) for k in ("factor_model", "market_impact") if k in kw}
    fields.update(kw)
    return build_problem_data(PortfolioConfiguration(**fields), PRICES, **options)  # type: ignore[arg-type]


@dataclass
class Evaluated:
    """A term's description evaluated at given trades (independently of any solver)."""

    objective: float
    cost: float
    groups: dict[str, LimitGroup]
    z: np.ndarray

    def value(self, name: str) -> np.ndarray:
        return self.groups[name].value(self.z)

    def linear(self, name: str) -> np.ndarray:
        rows, _, _ = self.groups[name].linear()
        return rows.evaluate(self.z)


def evaluate(term: Term, data, buy: np.ndarray, sell: np.ndarray, cost: float = 0.0) -> Evaluated:  # type: ignore[no-untyped-def]
    description = term.describe(data)
    assert description is not None
    z = trade_vector(buy, sell, cost)
    stacked = stack([description], data)
    money = float(stacked.rate @ (buy + sell)) + sum(_impact_value(form, buy + sell) for form in stacked.impact)
    return Evaluated(stacked.objective(z), money, {g.name: g for g in description.limits}, z)


def _impact_value(form, traded: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """The impact cone's expression (as the cvxpy problem writes it) at ``traded``."""
    params: list[cp.Parameter] = []
    expression = _impact(form, cp.Constant(traded), params)
    for param, value in zip(params, _values("impact", form), strict=True):  # as the problem sets them
        param.value = value
    return float(expression.value)


def test_data_units() -> None:
    data = make_data()
    assert data.value == pytest.approx(300 + 200 + 100 + 500)
    assert data.x0 == pytest.approx(np.array([300, 200, 100]) / 1100)
    assert data.cash0 == pytest.approx(500 / 1100)


def test_target_tracking_value() -> None:
    data = make_data()
    buy, sell = np.array([0.0, 0.1, 0.2]), np.array([0.05, 0.0, 0.0])
    got = evaluate(TargetTrackingTerm(weight=2.0), data, buy, sell)
    w = data.x0 + buy - sell
    expected = 2.0 * (np.sum((w - data.target) ** 2) + (w.sum() - data.target.sum()) ** 2)
    assert got.objective == pytest.approx(expected)


def test_transaction_cost_value() -> None:
    data = make_data(transaction_cost_rates={"BBB": 0.01})
    buy, sell = np.array([0.0, 0.1, 0.2]), np.array([0.05, 0.0, 0.0])
    got = evaluate(TransactionCostTerm(weight=3.0), data, buy, sell, cost=0.123)
    assert got.objective == pytest.approx(3.0 * 0.123)
    # The cost itself is the request's cost model, stated by the budget for every strategy.
    money = evaluate(BudgetTerm(), data, buy, sell)
    assert money.cost == pytest.approx(0.001 * 0.05 + 0.01 * 0.1 + 0.001 * 0.2)


def test_impact_fit_is_least_squares() -> None:
    span = np.array([0.01, 0.3, 2.0])
    a, b = impact_fit(span)
    for i, t_max in enumerate(span):
        grid = np.linspace(0, t_max, 20001)
        design = np.column_stack([grid, grid**2])
        ref, *_ = np.linalg.lstsq(design, grid**1.5, rcond=None)
        assert a[i] == pytest.approx(ref[0], rel=1e-3)
        assert b[i] == pytest.approx(ref[1], rel=1e-3)


@pytest.mark.parametrize("exact", [True, False])
def test_market_impact_value(exact: bool) -> None:
    symbols = list(PRICES)
    model = MarketImpactModel(pd.Series(1e6, index=symbols), pd.Series(0.02, index=symbols), coefficient=1.0)
    data = make_data(market_impact=model)
    k = 0.02 * np.sqrt(data.ref_value / 1e6)
    assert data.impact == pytest.approx(np.full(3, k))
    buy, sell = np.array([0.0, 0.1, 0.0]), np.zeros(3)
    got = evaluate(MarketImpactTerm(exact=exact), data, buy, sell)
    # The fit approximates t^1.5 within a few percent on the fitted span.
    assert got.cost == pytest.approx(k * 0.1**1.5, rel=1e-9 if exact else 0.08)


def test_trade_count_reweighting() -> None:
    data = make_data()
    term = TradeCountTerm(weight=0.5, eps=1e-3)
    buy, sell = np.array([0.0, 0.1, 0.0]), np.zeros(3)
    gamma0 = 1 / (np.abs(data.target - data.x0) + 1e-3)
    assert evaluate(term, data, buy, sell).objective == pytest.approx(0.5 * gamma0[1] * 0.1)
    # The term is a value: the re-weighting lives on the per-rebalance data, not on the term.
    gamma = term.gamma(data, buy - sell)
    assert gamma == pytest.approx(1 / (np.abs(buy - sell) + 1e-3))
    again = dataclasses.replace(data, count_weights=gamma)
    assert evaluate(term, again, buy, sell).objective == pytest.approx(0.5 * gamma[1] * 0.1)
    assert evaluate(term, data, buy, sell).objective == pytest.approx(0.5 * gamma0[1] * 0.1)
    # The debias solve drops the L1 stand-in; the discrete step prices the true count.
    debiased = term.describe(dataclasses.replace(data, debias=True))
    assert debiased is not None
    assert debiased.surrogate is None
    assert debiased.count == 0.5


def test_risk_terms_values() -> None:
    symbols = list(PRICES)
    loadings = pd.DataFrame([[0.1, 0.0], [0.05, 0.02], [0.0, 0.3]], index=symbols, columns=["f1", "f2"])
    fcov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], index=["f1", "f2"], columns=["f1", "f2"])
    idio = pd.Series([0.001, 0.002, 0.003], index=symbols)
    model = FactorModel(loadings, fcov, idio)
    data = make_data(factor_model=model, risk_aversion=2.0)
    sigma = model.covariance().to_numpy()
    scale = np.trace(sigma) / 3
    buy, sell = np.array([0.0, 0.1, 0.2]), np.array([0.05, 0.0, 0.0])
    w = data.x0 + buy - sell
    te = evaluate(TrackingErrorTerm(), data, buy, sell).objective
    risk = evaluate(RiskTerm(weight=1.0), data, buy, sell).objective
    d = w - data.target
    assert te == pytest.approx(2.0 * d @ sigma @ d / scale)
    assert risk == pytest.approx(w @ sigma @ w / scale)


def test_turnover_penalty_and_cap() -> None:
    data = make_data(max_turnover=0.5)
    buy, sell = np.array([0.0, 0.1, 0.2]), np.array([0.05, 0.0, 0.0])
    assert evaluate(TurnoverPenaltyTerm(weight=2.0), data, buy, sell).objective == pytest.approx(0.7)
    cap = evaluate(TurnoverCapTerm(), data, buy, sell)
    # Shown as turnover of the value before trading; linear as tau - cap V / V_ref <= 0.
    assert cap.value("turnover_cap") == pytest.approx([0.35 * data.ref_value / data.value])
    assert cap.linear("turnover_cap") == pytest.approx([0.35 - 0.5 * data.value / data.ref_value])


def test_caps_include_costs_in_the_denominator() -> None:
    data = make_data(max_position_weight=0.5, max_sector_weight=0.6)
    buy, sell = np.array([0.0, 0.1, 0.0]), np.zeros(3)
    x = data.x0 + buy
    cap = evaluate(PositionCapTerm(), data, buy, sell, cost=0.01)
    assert cap.value("max_position") == pytest.approx(x / (1 - 0.01))  # post-trade weights
    assert cap.linear("max_position") == pytest.approx(x + 0.5 * 0.01 - 0.5)
    sector = evaluate(SectorCapTerm(), data, buy, sell, cost=0.01)
    assert sector.value("sector_cap") == pytest.approx(np.array([x[0] + x[1], x[2]]) / (1 - 0.01))
    assert sector.linear("sector_cap") == pytest.approx([x[0] + x[1] + 0.6 * 0.01 - 0.6, x[2] + 0.6 * 0.01 - 0.6])


def test_a_group_replaced_with_other_bounds_linearises_to_its_own_bounds() -> None:
    """A group's kept linearisation is its own: ``dataclasses.replace`` with another cap does not
    hand the new group the old one's rows (the household stack replaces groups this way)."""
    data = make_data(max_position_weight=0.5)
    buy, sell = np.array([0.0, 0.1, 0.0]), np.zeros(3)
    cap = evaluate(PositionCapTerm(), data, buy, sell, cost=0.01)
    group = cap.groups["max_position"]
    group.linear()  # kept
    tighter = dataclasses.replace(group, upper=np.full_like(group.upper, 0.25))
    rows, _, upper = tighter.linear()
    x = data.x0 + buy
    assert rows.evaluate(cap.z) - upper == pytest.approx(x + 0.25 * 0.01 - 0.25)
    assert group.linear()[0].evaluate(cap.z) == pytest.approx(x + 0.5 * 0.01 - 0.5)


def test_budget_limit() -> None:
    data = make_data(min_cash_weight=0.1)
    buy, sell = np.array([0.0, 0.1, 0.0]), np.array([0.02, 0.0, 0.0])
    got = evaluate(BudgetTerm(), data, buy, sell, cost=0.001)
    # cash after = cash0 - 0.1 + 0.02 - 0.001, as a fraction of the post-trade value 1 - 0.001
    cash = data.cash0 - 0.1 + 0.02 - 0.001
    assert got.value("cash_floor") == pytest.approx([cash / (1 - 0.001)])
    assert got.linear("cash_floor") == pytest.approx([cash - 0.1 * (1 - 0.001)])


class ConcaveTerm(Term):
    name = "bad_concave"

    def build(self, v: Variables, data, *, diagnose: bool = False) -> TermParts:  # type: ignore[no-untyped-def]
        return TermParts(objective=-cp.sum_squares(v.weights))

    def values(self, data):  # type: ignore[no-untyped-def]
        return {}


def test_assembler_blames_the_offending_term() -> None:
    data = make_data()
    with pytest.raises(TermError, match="bad_concave"):
        assemble(Model.of([TargetTrackingTerm(), ConcaveTerm()], data))


def test_assembler_caches_by_structure() -> None:
    from finwiz.optimizer import cache_info, clear_cache

    clear_cache()
    terms = [TargetTrackingTerm(), BudgetTerm()]
    first = assemble(Model.of(terms, make_data()))
    second = assemble(Model.of(terms, make_data(cash=900.0)))
    assert first is second
    assert cache_info() == {"hits": 1, "misses": 1, "size": 1}
    other = assemble(Model.of([TargetTrackingTerm()], make_data()))
    assert other is not first


def test_term_repr_rebuilds() -> None:
    assert repr(TradeCountTerm(weight=0.1)).startswith("TradeCountTerm(weight=0.1")
    assert eval(repr(TargetTrackingTerm(weight=2.0))).weight == 2.0
