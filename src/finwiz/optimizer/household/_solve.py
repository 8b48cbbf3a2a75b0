"""Rebalance a household: the stacked model through the engine's own stages, the wash-sale rule
across accounts, then one result per account and the household's figures."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from finwiz.errors import ConfigurationError, InfeasibleHouseholdError, InfeasibleRebalanceError, InvalidPortfolioError
from finwiz.optimizer._strategies import OptimizationStrategy, StrategyRegistry
from finwiz.optimizer._trace import Stages
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.household._checks import refuse_conflicts
from finwiz.optimizer.household._results import household_result
from finwiz.optimizer.household._stack import Stack, build_stack
from finwiz.optimizer.household._terms import household_terms
from finwiz.optimizer.solve._assembler import Model
from finwiz.risk import FactorModel
from finwiz.schemas import Household, HouseholdResult
from finwiz.settings import RebalancingSettings

__all__ = ["solve_household"]


class RebalancingEngine(Protocol):
    """What the household needs of the engine: its settings, strategies and optimize stage."""

    settings: RebalancingSettings
    strategies: StrategyRegistry

    def _optimize(self, model: Model, solver: str, exact: bool, stages: Stages) -> Decided: ...


_WASH_ROUNDS = 6
"""Re-solves of the cross-account wash-sale rule; each settles at least one more group."""


def wash_conflicts(stack: Stack, data_shares: np.ndarray, model: Model) -> tuple[set[str], np.ndarray]:
    """The wash-sale groups where a taxable pair sells a lot at a loss while some pair of the group
    (any account) buys, and the pairs that sell at a loss."""
    data = model.data
    if data.lots is None:
        return set(), np.zeros(data.n, bool)
    sales = data.lots.sales(np.maximum(-data_shares, 0.0))
    losing = np.array([any(s.realized_gain < 0 for s in lots) for lots in sales], bool) & stack.taxable()
    bought = {stack.group[p] for p in np.flatnonzero(data_shares > 0)}
    groups = {stack.group[p] for p in np.flatnonzero(losing)} & bought
    in_conflict = np.array([g in groups for g in stack.group], bool)
    return groups, losing & in_conflict


def _blocked(model: Model, reason: str, mask: np.ndarray) -> Model:
    data = model.data
    data = dataclasses.replace(data, blocked={**data.blocked, reason: data.blocked[reason] | mask})
    return Model.of(list(model.terms), data)


def _decide(engine: RebalancingEngine, model: Model, solver: str, exact: bool, stages: Stages) -> Decided:
    try:
        return engine._optimize(model, solver, exact, stages)
    except InfeasibleRebalanceError as exc:
        raise InfeasibleHouseholdError(
            exc.conflicts, "the household's accounts cannot reach its limits together"
        ) from exc


def _without_wash_sales(
    engine: RebalancingEngine, stack: Stack, model: Model, solver: str, exact: bool, stages: Stages
) -> tuple[Model, Decided]:
    """Trades with no loss sale in a taxable account while the same or an identical symbol is
    bought in any account: each conflict is settled by the better (lower true objective) of
    blocking the group's purchases or the loss sales, and the model re-solved."""
    decided = _decide(engine, model, solver, exact, stages)
    for _ in range(_WASH_ROUNDS):
        groups, losing = wash_conflicts(stack, decided.shares, decided.model or model)
        if not groups:
            return model, decided
        members = np.array([g in groups for g in stack.group], bool)
        best: tuple[float, Model, Decided] | None = None
        for variant in (_blocked(model, "wash_sale", members), _blocked(model, "tax_buys_only", losing)):
            try:
                answer = engine._optimize(variant, solver, exact, stages)
            except InfeasibleRebalanceError:
                continue
            value = achieved(answer.model or variant, answer.shares)
            if best is None or value < best[0]:
                best = (value, variant, answer)
        if best is None:
            raise InfeasibleHouseholdError((), "no trades keep the household's wash-sale rule across accounts")
        _, model, decided = best
    raise InfeasibleHouseholdError((), "the cross-account wash-sale rule did not settle")


def solve_household(
    engine: RebalancingEngine,
    household: Household,
    prices: Mapping[str, Any] | pd.Series,
    *,
    factor_model: FactorModel | None = None,
    covariance: pd.DataFrame | None = None,
    solver: str | None = None,
    exact: bool = False,
) -> HouseholdResult:
    """Rebalance every account of ``household`` at ``prices`` as one problem (README "Households").

    The household's weights track its target under its strategy and limits; each account keeps
    its own (cash never below zero, restricted lists, lot sizes, caps); no cash moves between
    accounts; ``tax_drag`` prices where each asset is held; a loss sale in a taxable account blocks
    buying the same or an identical symbol in every account. Whole shares per account (lots) by
    the engine's whole-share stage. Raises :class:`~finwiz.errors.InfeasibleHouseholdError` when the
    accounts cannot reach the household's limits, :class:`~finwiz.errors.HouseholdConflictError`
    when a household limit needs a trade an account forbids."""
    if not isinstance(household, Household):
        raise InvalidPortfolioError("household must be a Household", field="household")
    start = time.perf_counter()
    stages = Stages()
    solver = solver or engine.settings.solver
    if solver == "auto":
        # Clarabel first: ADMM hit its iteration cap on every 4 x 100 household measured (the
        # accounts' equally good splits of an asset are a flat direction), then Clarabel answered
        # in 13-16 iterations; OSQP stays the fallback.
        solver = "CLARABEL"
    with stages.stage("prepare"):
        strategy = engine.strategies[household.method]
        if isinstance(strategy, OptimizationStrategy):
            raise ConfigurationError(f"strategy {strategy.name!r}: a household takes term strategies only")
        stack = build_stack(household, prices, engine.settings, factor_model, covariance)
        if strategy.requires_risk_model and stack.hh.factor_root is None:
            raise InvalidPortfolioError(
                f"strategy {strategy.name!r} needs a risk model: pass factor_model= or covariance=",
                field="factor_model",
            )
        refuse_conflicts(stack)
        model = Model.of(household_terms(strategy.terms(stack.hh), stack), stack.data)
    model, decided = _without_wash_sales(engine, stack, model, solver, exact, stages)
    with stages.stage("result"):
        result = household_result(stack, decided.model or model, decided)
    return result.model_copy(update={"stages": stages.records, "solve_time_seconds": time.perf_counter() - start})
