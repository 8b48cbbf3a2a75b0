"""Rebalance a household: the stacked model through the engine's own stages (the wash-sale rule
across accounts is the identical groups' rule: every account's pair of an asset is in its group),
then one result per account and the household's figures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from finwiz.errors import ConfigurationError, InfeasibleHouseholdError, InfeasibleRebalanceError, InvalidPortfolioError
from finwiz.optimizer._strategies import OptimizationStrategy, StrategyRegistry
from finwiz.optimizer._trace import Stages
from finwiz.optimizer.discrete._stage import Decided
from finwiz.optimizer.household._checks import refuse_conflicts
from finwiz.optimizer.household._results import household_result
from finwiz.optimizer.household._stack import build_stack
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


def _decide(engine: RebalancingEngine, model: Model, solver: str, exact: bool, stages: Stages) -> Decided:
    try:
        return engine._optimize(model, solver, exact, stages)
    except InfeasibleRebalanceError as exc:
        raise InfeasibleHouseholdError(
            exc.conflicts, "the household's accounts cannot reach its limits together"
        ) from exc


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
    decided = _decide(engine, model, solver, exact, stages)
    with stages.stage("result"):
        result = household_result(stack, decided.model or model, decided)
    return result.model_copy(update={"stages": stages.records, "solve_time_seconds": time.perf_counter() - start})
