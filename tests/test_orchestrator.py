"""The orchestrator with real components on the sample provider, and with failing fakes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from finwiz.errors import (
    ComplianceError,
    ConfigurationError,
    InfeasibleRebalanceError,
    InsufficientPriceDataError,
    PriceDataError,
)
from finwiz.optimizer import OptimizationConstraint, PortfolioAnalyzer, RebalancingEngine
from finwiz.orchestrator import PortfolioRebalancingOrchestrator, RebalancingEvent, RebalancingEventBus
from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import PortfolioConfiguration, RebalancingMethod, RebalancingResult, TradeRecommendation
from finwiz.service._factory import RebalancingServiceFactory
from finwiz.service._health import HealthStatus, RebalancingHealthCheck
from finwiz.settings import RebalancingSettings

from .reporting.conftest import parse_html


def _recorder(bus: RebalancingEventBus) -> list[RebalancingEvent]:
    events: list[RebalancingEvent] = []

    async def record(event: RebalancingEvent) -> None:
        events.append(event)

    bus.subscribe("*", record)
    return events


class FailingPrices:
    """A price service whose transport breaks."""

    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        raise ConnectionError("connection reset by peer")


class PartialPrices:
    """Prices every symbol but the first."""

    def __init__(self, prices: Mapping[str, float]) -> None:
        self.prices = prices

    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        return {s: self.prices[s] for s in list(symbols)[1:]}


class OneSymbolFails:
    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        raise PriceDataError("AAPL", "HTTP 503", provider="yahoo")


class InfeasibleEngine:
    def rebalance(
        self, config: PortfolioConfiguration, prices: Mapping[str, float], **options: Any
    ) -> RebalancingResult:
        raise InfeasibleRebalanceError([], "sector caps leave no room")


class AlwaysFails(OptimizationConstraint):
    name = "always_fails"

    def validate(
        self,
        trades: Sequence[TradeRecommendation],
        current_portfolio: PortfolioConfiguration,
        market_data: Mapping[str, Any],
    ) -> tuple[bool, list[str]]:
        return False, ["committee veto"]


@pytest.fixture
def factory(sample_settings: RebalancingSettings) -> RebalancingServiceFactory:
    return RebalancingServiceFactory(sample_settings)


async def test_real_components_on_the_sample(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration, tmp_path: Path
) -> None:
    orchestrator = factory.create_orchestrator()
    events = _recorder(orchestrator.event_bus)
    result = await orchestrator.rebalance_portfolio(demo_config, "acct-1")
    assert result.trades
    assert result.portfolio_id == "acct-1"
    assert result.is_compliant
    assert [e.name for e in events] == ["rebalancing_started", "rebalancing_completed"]
    completed = events[1].payload
    assert completed["trades"] == len(result.trades)
    report = Path(completed["report_path"])
    assert report == tmp_path / "rebalance-acct-1.html" == orchestrator.last_report_path
    page = parse_html(report.read_text(encoding="utf-8"))
    assert "trades" in page.section_ids
    assert "Rebalancing report: acct-1" in page.title
    for stage in ("prices_seconds", "optimization_seconds", "report_seconds"):
        assert completed[stage] >= 0


async def test_engine_runs_off_the_event_loop(
    demo_config: PortfolioConfiguration, factory: RebalancingServiceFactory
) -> None:
    threads: list[str] = []
    engine = RebalancingEngine()

    class Spy:
        def rebalance(
            self, config: PortfolioConfiguration, prices: Mapping[str, float], **options: Any
        ) -> RebalancingResult:
            threads.append(threading.current_thread().name)
            return engine.rebalance(config, prices, **options)

    orchestrator = PortfolioRebalancingOrchestrator(factory.create_price_service(), PortfolioAnalyzer(), Spy())
    await orchestrator.rebalance_portfolio(demo_config)
    assert threads
    assert threads[0] != threading.main_thread().name


@pytest.mark.parametrize("service", [FailingPrices(), OneSymbolFails()])
async def test_price_failures_become_insufficient_price_data(
    service: Any, demo_config: PortfolioConfiguration, tmp_path: Path
) -> None:
    orchestrator = PortfolioRebalancingOrchestrator(
        service, PortfolioAnalyzer(), RebalancingEngine(), HTMLReportGenerator(), report_directory=tmp_path
    )
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(InsufficientPriceDataError) as caught:
        await orchestrator.rebalance_portfolio(demo_config, "p")
    assert caught.value.symbols
    assert [e.name for e in events] == ["rebalancing_started", "rebalancing_failed"]
    assert events[1].payload["stage"] == "prices"
    assert events[1].payload["error"] == "InsufficientPriceDataError"
    assert list(tmp_path.iterdir()) == []  # nothing half-done


async def test_missing_price_is_named(demo_config: PortfolioConfiguration) -> None:
    from finwiz.data import sample_latest_prices

    service = PartialPrices(sample_latest_prices().to_dict())
    orchestrator = PortfolioRebalancingOrchestrator(service, PortfolioAnalyzer(), RebalancingEngine())
    with pytest.raises(InsufficientPriceDataError, match=demo_config.symbols[0]):
        await orchestrator.rebalance_portfolio(demo_config)


async def test_engine_errors_propagate_after_a_failed_event(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    orchestrator = PortfolioRebalancingOrchestrator(
        factory.create_price_service(), PortfolioAnalyzer(), InfeasibleEngine()
    )
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(InfeasibleRebalanceError, match="sector caps"):
        await orchestrator.rebalance_portfolio(demo_config, "p")
    assert [e.name for e in events] == ["rebalancing_started", "rebalancing_failed"]
    assert events[1].payload["stage"] == "optimization"


async def test_failing_subscribers_never_break_the_rebalance(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    orchestrator = factory.create_orchestrator(write_reports=False)

    async def broken(event: RebalancingEvent) -> None:
        raise RuntimeError("subscriber bug")

    orchestrator.event_bus.subscribe("*", broken)
    result = await orchestrator.rebalance_portfolio(demo_config)
    assert result.trades
    assert orchestrator.event_bus.subscriber_failures == 2
    assert orchestrator.last_report_path is None


async def test_failed_custom_constraint_is_reported(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    config = demo_config.model_copy(update={"custom_constraints": [AlwaysFails()]})
    orchestrator = factory.create_orchestrator(write_reports=False)
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(ComplianceError) as caught:
        await orchestrator.rebalance_portfolio(config)
    # Validated once, by the engine: one warning, and the failure event names it.
    result = caught.value.result
    assert result.warnings.count("always_fails: committee veto") == 1
    assert not next(c for c in result.compliance if c.constraint == "always_fails").satisfied
    assert events[-1].payload["error"] == "ComplianceError"
    assert "always_fails: committee veto" in events[-1].payload["message"]


async def test_risk_aware_method_estimates_a_risk_model_from_history(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration
) -> None:
    config = demo_config.model_copy(update={"method": RebalancingMethod.RISK_AWARE})
    orchestrator = factory.create_orchestrator(write_reports=False)
    assert orchestrator.needs_risk_model(config)
    model = await orchestrator.risk_model(config)
    assert model is not None
    assert sorted(model.symbols) == sorted(config.symbols)
    result = await orchestrator.rebalance_portfolio(config)
    assert result.method == "risk_aware"


async def test_unwritable_report_fails_with_the_path(
    factory: RebalancingServiceFactory, demo_config: PortfolioConfiguration, tmp_path: Path
) -> None:
    orchestrator = factory.create_orchestrator()
    events = _recorder(orchestrator.event_bus)
    target = tmp_path / "missing" / "r.html"
    with pytest.raises(ConfigurationError, match="missing"):
        await orchestrator.rebalance_portfolio(demo_config, report_path=target)
    assert events[-1].payload["stage"] == "report"


def test_factory_refuses_unknown_or_unconfigured_providers(sample_settings: RebalancingSettings) -> None:
    factory = RebalancingServiceFactory(sample_settings)
    with pytest.raises(ConfigurationError, match="unknown price provider 'bloomberg'"):
        factory.create_provider("bloomberg")
    with pytest.raises(ConfigurationError, match="csv"):
        factory.create_provider("csv")
    assert factory.create_provider("sample").name == "sample"


async def test_health_check_healthy_on_the_sample(factory: RebalancingServiceFactory) -> None:
    report = await factory.create_health_check().check_health()
    assert report.status is HealthStatus.HEALTHY, report.to_dict()
    assert set(report.components) == {"price_service", "rebalancing_engine", "report_generator"}
    assert report.to_dict()["status"] == "healthy"


async def test_health_check_reports_failures_without_raising(factory: RebalancingServiceFactory) -> None:
    from finwiz.data import sample_latest_prices

    unhealthy = await RebalancingHealthCheck(FailingPrices(), InfeasibleEngine()).check_health()
    assert unhealthy.status is HealthStatus.UNHEALTHY
    assert unhealthy.components["rebalancing_engine"].status is HealthStatus.UNHEALTHY
    assert "connection reset" in unhealthy.components["price_service"].detail
    partial = PartialPrices(sample_latest_prices().to_dict())
    degraded = await RebalancingHealthCheck(partial, probe_symbols=["AAPL", "MSFT"]).check_health()
    assert degraded.status is HealthStatus.DEGRADED
    assert not degraded.is_healthy


class BlockedEngine:
    """An engine whose solve blocks until released (or 20 s pass): a slow solver."""

    def __init__(self) -> None:
        self.started, self.release, self.finished = threading.Event(), threading.Event(), threading.Event()

    def rebalance(
        self, config: PortfolioConfiguration, prices: Mapping[str, float], **options: Any
    ) -> RebalancingResult:
        self.started.set()
        self.release.wait(20)
        self.finished.set()
        raise InfeasibleRebalanceError([], "released")


class SlowPrices:
    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        await asyncio.sleep(3600)
        return {}


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_cancelled_rebalance_publishes_rebalancing_failed_and_is_not_waited_for(
    how: str, demo_config: PortfolioConfiguration, factory: RebalancingServiceFactory
) -> None:
    # CancelledError is not an Exception: a cancelled or timed-out rebalance published nothing.
    # And asyncio.run joined the solver's thread on the way out, so it returned only once the
    # solve did: the blocked engine here is released only after asyncio.run has returned.
    engine = BlockedEngine()
    orchestrator = PortfolioRebalancingOrchestrator(factory.create_price_service(), PortfolioAnalyzer(), engine)
    events = _recorder(orchestrator.event_bus)

    async def main() -> None:
        task = asyncio.create_task(orchestrator.rebalance_portfolio(demo_config, "p"))
        while not engine.started.is_set():
            await asyncio.sleep(0.01)
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(task, 0.01)

    try:
        asyncio.run(main())
        assert not engine.finished.is_set()  # nothing waited for the solve
    finally:
        engine.release.set()
    assert [e.name for e in events] == ["rebalancing_started", "rebalancing_failed"]
    assert events[1].payload["stage"] == "optimization"
    assert events[1].payload["error"] == "CancelledError"


async def test_a_rebalance_cancelled_while_fetching_prices_says_so(demo_config: PortfolioConfiguration) -> None:
    orchestrator = PortfolioRebalancingOrchestrator(SlowPrices(), PortfolioAnalyzer(), RebalancingEngine())
    events = _recorder(orchestrator.event_bus)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(orchestrator.rebalance_portfolio(demo_config, "p"), 0.05)
    assert [e.name for e in events] == ["rebalancing_started", "rebalancing_failed"]
    assert (events[1].payload["stage"], events[1].payload["error"]) == ("prices", "CancelledError")
