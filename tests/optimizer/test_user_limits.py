"""A user's cvxpy limit is a hard limit everywhere the built-in ones are: kept by the whole-share
step (fractional lots and whole shares), listed in the compliance table, named by the diagnosis,
the same through ``OptimizationConstraint.terms()``; a form the whole-share step cannot keep is
refused by name. Every check here is computed from shares x prices, not from the engine's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import ConfigurationError, InfeasibleRebalanceError, PortfolioConfiguration
from finwiz.optimizer import (
    Limit,
    OptimizationConstraint,
    RebalancingEngine,
    TargetTrackingTerm,
    Term,
    TermParts,
    TransactionCostTerm,
    Variables,
)
from tests.conftest import drifted_config

SECTOR = "Information Technology"


class SectorLimit(Term):
    """A user's cvxpy term holding one limit on the (pre-trade-value) weight of a set of assets."""

    name = "my_sector"

    def __init__(self, mask: np.ndarray, bound: float, sense: str = "<=", form: str = "affine") -> None:
        self.mask, self.bound, self.sense, self.form = mask, bound, sense, form

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        bound = cp.Parameter(nonneg=True, name="bound")
        lhs = self.mask @ v.weights if self.form == "affine" else cp.norm1(cp.multiply(self.mask, v.weights))
        return TermParts(params={"bound": bound}, limits=[Limit("my_it_cap", lhs, self.sense, bound)])  # type: ignore[arg-type]

    def values(self, data: Any) -> dict[str, float]:
        return {"bound": self.bound}

    def structure(self, data: Any) -> Any:
        return (type(self).__qualname__, self.name, self.sense, self.form, self.mask.tobytes())


class SectorLimitConstraint(OptimizationConstraint):
    name = "my_sector_constraint"

    def __init__(self, term: Term) -> None:
        self.term = term

    def terms(self) -> Sequence[Term]:
        return [self.term]


def _mask(prices: pd.Series, sectors: dict[str, str]) -> np.ndarray:
    return np.array([sectors[str(s)] == SECTOR for s in prices.index], dtype=float)


def _limit_value(config: PortfolioConfiguration, result: Any, prices: pd.Series, mask: np.ndarray) -> float:
    """``mask @ w``, w the post-trade positions as fractions of the value before trading (plus cash flow)."""
    value = sum(h.shares * float(prices[h.symbol]) for h in config.holdings) + config.cash + config.cash_flow
    after = np.array([result.post_trade_holdings[str(s)] * float(prices[s]) for s in prices.index])
    return float(mask @ after / value)


def _engine(*terms: Term) -> RebalancingEngine:
    engine = RebalancingEngine()
    engine.strategies["capped"] = [TargetTrackingTerm(), TransactionCostTerm(), *terms]
    return engine


@pytest.mark.parametrize("fractional", [True, False], ids=["fractional", "whole_shares"])
@pytest.mark.parametrize("route", ["strategy", "custom_constraint"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_user_limit_holds_after_the_whole_share_step(
    sample_prices: pd.Series, sample_sector_map: dict[str, str], fractional: bool, route: str, seed: int
) -> None:
    mask = _mask(sample_prices, sample_sector_map)
    term = SectorLimit(mask, 0.10)
    config = drifted_config(
        sample_prices,
        seed=seed,
        sectors=sample_sector_map,
        allow_fractional_shares=fractional,
        method="capped" if route == "strategy" else "minimize_costs",
        custom_constraints=[SectorLimitConstraint(term)] if route == "custom_constraint" else [],
    )
    engine = _engine(term) if route == "strategy" else RebalancingEngine()
    result = engine.rebalance(config, sample_prices)
    got = _limit_value(config, result, sample_prices, mask)
    assert got <= 0.10 + 1e-9
    assert got > 0.10 - 0.01  # the limit binds (the equal-weight target puts ~0.147 there)
    rows = [c for c in result.compliance if c.constraint == "my_it_cap"]
    assert len(rows) == 1
    assert rows[0].satisfied
    assert rows[0].term == "my_sector"
    assert rows[0].value == pytest.approx(got, abs=1e-9)
    assert result.is_compliant


def test_a_floor_limit_holds_too(sample_prices: pd.Series, sample_sector_map: dict[str, str]) -> None:
    mask = _mask(sample_prices, sample_sector_map)
    config = drifted_config(sample_prices, sectors=sample_sector_map, method="capped")
    result = _engine(SectorLimit(mask, 0.20, ">=")).rebalance(config, sample_prices)
    assert _limit_value(config, result, sample_prices, mask) >= 0.20 - 1e-9


def test_a_non_affine_limit_is_refused_by_name(sample_prices: pd.Series, sample_sector_map: dict[str, str]) -> None:
    mask = _mask(sample_prices, sample_sector_map)
    config = drifted_config(sample_prices, sectors=sample_sector_map, method="capped")
    with pytest.raises(ConfigurationError, match="my_it_cap"):
        _engine(SectorLimit(mask, 0.10, form="norm")).rebalance(config, sample_prices)


def test_an_impossible_user_limit_is_named_by_the_diagnosis(
    sample_prices: pd.Series, sample_sector_map: dict[str, str]
) -> None:
    mask = _mask(sample_prices, sample_sector_map)
    config = drifted_config(sample_prices, sectors=sample_sector_map, method="capped", max_turnover=0.01)
    with pytest.raises(InfeasibleRebalanceError) as caught:
        _engine(SectorLimit(mask, 0.02)).rebalance(config, sample_prices)
    assert "my_it_cap" in {c.name for c in caught.value.conflicts}


# ----------------------------------------------------------------------------- a user's objective


class SectorTilt(Term):
    """A user's cvxpy objective: ``penalty x`` the weight of a set of assets."""

    name = "sector_tilt"

    def __init__(self, mask: np.ndarray, penalty: float) -> None:
        self.mask, self.penalty = mask, penalty

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        weight = cp.Parameter(nonneg=True, name="penalty")
        return TermParts(params={"penalty": weight}, objective=weight * (self.mask @ v.weights))

    def values(self, data: Any) -> dict[str, float]:
        return {"penalty": self.penalty}

    def structure(self, data: Any) -> Any:
        return (type(self).__qualname__, self.mask.tobytes())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_descent_keeps_a_user_objective(
    sample_prices: pd.Series, sample_sector_map: dict[str, str], seed: int
) -> None:
    """The descent that finishes the second opinion (and exact mode, and a taxable account) prices
    a user's objective too: from the whole-share answer without a minimum trade (the independent
    optimum's), it never moves to trades the full objective rates worse."""
    from finwiz.optimizer._engine import _applicable, _with_constraints
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.discrete._rounding import polish
    from finwiz.optimizer.discrete._stage import achieved as _objective
    from finwiz.optimizer.solve._assembler import Model

    mask = _mask(sample_prices, sample_sector_map)
    config = drifted_config(sample_prices, seed=seed, sectors=sample_sector_map, method="tilted", min_trade_size=0.0)
    terms = [TargetTrackingTerm(), TransactionCostTerm(), SectorTilt(mask, 0.01)]
    engine = RebalancingEngine()
    engine.strategies["tilted"] = terms
    result = engine.rebalance(config, sample_prices)
    shares = np.array([result.post_trade_holdings[str(s)] for s in sample_prices.index])
    shares -= np.array([config.shares_by_symbol()[str(s)] for s in sample_prices.index])
    data = build_problem_data(config, sample_prices)
    model = Model.of(_applicable(_with_constraints(terms), data), data)
    polished = polish(model, shares)
    assert _objective(model, polished) <= _objective(model, shares) + 1e-15
