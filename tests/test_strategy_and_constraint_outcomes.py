"""The orchestrator asks the strategy whether it needs a risk model; custom constraints' verdicts
are structured fields of the result (``constraint_outcomes``), not warning strings to split; a
failed one is a ``ComplianceError`` carrying the result, never an ``optimal`` result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from finwiz import (
    AccountOutcome,
    ComplianceError,
    ConstraintOutcome,
    PortfolioConfiguration,
    RebalancingEngine,
    RebalancingResult,
    rebalance,
    rebalance_many,
)
from finwiz.optimizer import (
    OptimizationConstraint,
    TargetTrackingTerm,
    TermStrategy,
    TrackingErrorTerm,
    TransactionCostTerm,
)
from finwiz.orchestrator import PortfolioRebalancingOrchestrator, RebalancingServiceFactory
from finwiz.schemas import RebalancingMethod, TradeRecommendation
from finwiz.settings import RebalancingSettings

from .test_orchestrator import _recorder


class Verdict(OptimizationConstraint):
    """Says ``ok`` with ``messages``; its name may hold a colon, as a desk's naming scheme may."""

    def __init__(self, name: str, ok: bool, messages: Sequence[str]) -> None:
        self.name, self.ok, self.messages = name, ok, list(messages)

    def validate(
        self,
        trades: Sequence[TradeRecommendation],
        current_portfolio: PortfolioConfiguration,
        market_data: Mapping[str, Any],
    ) -> tuple[bool, list[str]]:
        return self.ok, list(self.messages)


CONSTRAINTS = [
    Verdict("desk:limits", False, ["gross above 1.0: desk veto", "second reason"]),
    Verdict("committee", True, []),
    Verdict("silent", False, []),
]


@pytest.fixture
def factory(sample_settings: RebalancingSettings) -> RebalancingServiceFactory:
    return RebalancingServiceFactory(sample_settings)


def test_engine_reports_each_constraint_as_a_structured_outcome(demo_config: PortfolioConfiguration) -> None:
    from finwiz.data import sample_latest_prices

    config = demo_config.model_copy(update={"custom_constraints": CONSTRAINTS})
    with pytest.raises(ComplianceError) as caught:
        rebalance(config, sample_latest_prices())
    error = caught.value
    # The failing checks by name, and their reasons, in the message; the result rides along.
    assert error.failed == ["desk:limits", "silent"]
    assert "desk:limits, silent" in str(error)
    assert "desk:limits: gross above 1.0: desk veto" in str(error)
    result = error.result
    assert result.constraint_outcomes == [
        ConstraintOutcome(name="desk:limits", ok=False, messages=["gross above 1.0: desk veto", "second reason"]),
        ConstraintOutcome(name="committee", ok=True, messages=[]),
        ConstraintOutcome(name="silent", ok=False, messages=[]),
    ]
    assert not result.is_compliant
    assert "desk:limits: gross above 1.0: desk veto" in result.warnings  # still in warnings too
    import pickle

    assert pickle.loads(pickle.dumps(result)).constraint_outcomes == result.constraint_outcomes


def test_passing_checks_return_the_result(demo_config: PortfolioConfiguration) -> None:
    from finwiz.data import sample_latest_prices

    config = demo_config.model_copy(update={"custom_constraints": [Verdict("committee", True, ["noted"])]})
    result = rebalance(config, sample_latest_prices())
    assert result.status == "optimal"
    assert result.is_compliant
    assert result.constraint_outcomes == [ConstraintOutcome(name="committee", ok=True, messages=["noted"])]


def test_a_batch_reports_a_failed_check_as_a_named_failure(demo_config: PortfolioConfiguration) -> None:
    from finwiz.data import sample_latest_prices

    vetoed = demo_config.model_copy(update={"custom_constraints": [Verdict("committee", False, ["veto"])]})
    batch = rebalance_many([demo_config, vetoed], sample_latest_prices(), progress=False)
    first, second = batch.outcomes
    assert isinstance(first, AccountOutcome)
    assert first.result is not None
    assert second.result is None
    assert second.error_type == "ComplianceError"
    assert second.error is not None
    assert "committee" in second.error
    assert "veto" in second.error


def test_no_constraints_no_outcomes(demo_config: PortfolioConfiguration) -> None:
    from finwiz.data import sample_latest_prices

    assert rebalance(demo_config, sample_latest_prices()).constraint_outcomes == []


EXPECTED_VIOLATIONS = [
    "constraint desk:limits: gross above 1.0: desk veto",
    "constraint desk:limits: second reason",
    "constraint silent failed",
]


async def test_orchestrator_reports_a_failed_check_as_a_failure(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    config = demo_config.model_copy(update={"custom_constraints": CONSTRAINTS})
    orchestrator = factory.create_orchestrator(write_reports=False)
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(ComplianceError) as caught:
        await orchestrator.rebalance_portfolio(config)
    result = caught.value.result
    assert [o.name for o in result.constraint_outcomes] == ["desk:limits", "committee", "silent"]
    assert events[-1].name == "rebalancing_failed"
    assert events[-1].payload["error"] == "ComplianceError"
    assert "desk:limits, silent" in events[-1].payload["message"]  # a colon in a name is fine
    assert sum("desk veto" in w for w in result.warnings) == 1  # validated once


class NonValidatingEngine:
    """An injected engine that runs no custom constraint (the orchestrator must)."""

    def __init__(self) -> None:
        self.inner = RebalancingEngine()

    def rebalance(
        self, config: PortfolioConfiguration, prices: Mapping[str, float], **options: Any
    ) -> RebalancingResult:
        plain = config.model_copy(update={"custom_constraints": []})
        return self.inner.rebalance(plain, prices, **options)


async def test_orchestrator_checks_constraints_an_injected_engine_skipped(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    config = demo_config.model_copy(update={"custom_constraints": CONSTRAINTS})
    orchestrator = PortfolioRebalancingOrchestrator(
        factory.create_price_service(), factory.create_analyzer(), NonValidatingEngine(), None
    )
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(ComplianceError) as caught:
        await orchestrator.rebalance_portfolio(config)
    result = caught.value.result
    assert [(o.name, o.ok) for o in result.constraint_outcomes] == [
        ("desk:limits", False),
        ("committee", True),
        ("silent", False),
    ]
    assert events[-1].payload["error"] == "ComplianceError"
    assert [w for w in result.warnings if w.startswith("constraint ")] == EXPECTED_VIOLATIONS


def risky_engine(name: str) -> RebalancingEngine:
    engine = RebalancingEngine()
    engine.strategies[name] = TermStrategy(
        name, [TargetTrackingTerm(), TrackingErrorTerm(), TransactionCostTerm()], requires_risk_model=True
    )
    return engine


async def test_a_user_strategy_that_needs_a_risk_model_gets_one(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    engine = risky_engine("calm")
    orchestrator = PortfolioRebalancingOrchestrator(
        factory.create_price_service(), factory.create_analyzer(), engine, None
    )
    config = demo_config.model_copy(update={"method": "calm"})
    assert orchestrator.needs_risk_model(config)
    result = await orchestrator.rebalance_portfolio(config)  # history fetched, model estimated
    assert result.method == "calm"


def test_a_preset_replaced_by_a_riskless_strategy_needs_no_model(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    engine = RebalancingEngine()
    engine.strategies[RebalancingMethod.RISK_AWARE] = [TargetTrackingTerm()]
    orchestrator = PortfolioRebalancingOrchestrator(factory.create_price_service(), factory.create_analyzer(), engine)
    config = demo_config.model_copy(update={"method": RebalancingMethod.RISK_AWARE})
    assert not orchestrator.needs_risk_model(config)
    default = PortfolioRebalancingOrchestrator(
        factory.create_price_service(), factory.create_analyzer(), RebalancingEngine()
    )
    assert default.needs_risk_model(config)
    assert not default.needs_risk_model(demo_config)
    assert not default.needs_risk_model(demo_config.model_copy(update={"method": "nobody_knows_me"}))


def test_a_backtest_records_a_failed_check_as_a_failed_rebalance() -> None:
    from finwiz.backtest import Backtest, OptimizedRebalance
    from tests.backtest.test_backtest import PRICES, book

    policy = OptimizedRebalance("minimize_costs", every="Y", custom_constraints=[Verdict("committee", False, ["veto"])])
    result = Backtest(PRICES, initial=book()).run(policy)
    assert len(result.failures) == 4
    assert result.trades.empty
    assert result.failures["reason"].str.contains("ComplianceError: custom check failed: committee").all()
