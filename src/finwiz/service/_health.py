"""The health check of a running service: :class:`RebalancingHealthCheck` probes the price
service, the engine and the report generator and never raises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from finwiz._threads import in_daemon_thread
from finwiz.errors import InsufficientPriceDataError
from finwiz.orchestrator import (
    Engine,
    PortfolioRebalancingOrchestrator,
    PriceService,
)
from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import (
    PortfolioConfiguration,
    RebalancingResult,
)

__all__ = ["ComponentHealth", "HealthReport", "HealthStatus", "RebalancingHealthCheck"]


class HealthStatus(StrEnum):
    """Health of a component, best first."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


@dataclass(frozen=True)
class ComponentHealth:
    """One component's ``status``, a human ``detail`` and how long the probe took."""

    status: HealthStatus
    detail: str
    latency_seconds: float

    @classmethod
    def failed(cls, detail: str, started: float) -> ComponentHealth:
        """An unhealthy probe that began at ``started`` (a ``time.perf_counter()`` reading)."""
        return cls(HealthStatus.UNHEALTHY, detail, time.perf_counter() - started)


@dataclass(frozen=True)
class HealthReport:
    """Every component's health; ``status`` is the worst of them."""

    components: dict[str, ComponentHealth]
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def status(self) -> HealthStatus:
        """The worst component status (healthy when nothing was checked)."""
        statuses = [c.status for c in self.components.values()] or [HealthStatus.HEALTHY]
        return max(statuses, key=_RANK.__getitem__)

    @property
    def is_healthy(self) -> bool:
        """True when every component is healthy."""
        return self.status is HealthStatus.HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: overall status, check time and each component."""
        return {
            "status": self.status.value,
            "checked_at": self.checked_at.isoformat(),
            "components": {
                name: {
                    "status": c.status.value,
                    "detail": c.detail,
                    "latency_seconds": round(c.latency_seconds, 6),
                }
                for name, c in self.components.items()
            },
        }


class RebalancingHealthCheck:
    """Probes the price service, the engine and the report generator; never raises.

    The price service is healthy when every probe symbol is priced, degraded when only some
    are (or it answers slowly), unhealthy when none are. The engine and the report generator
    run a tiny two-asset rebalance: healthy when it succeeds within ``slow_after_seconds``,
    degraded when slower, unhealthy when it fails. A component not given is not checked.
    """

    def __init__(
        self,
        price_service: PriceService | None = None,
        rebalancing_engine: Engine | None = None,
        report_generator: HTMLReportGenerator | None = None,
        *,
        probe_symbols: Sequence[str] = ("AAPL", "MSFT"),
        timeout_seconds: float = 10.0,
        slow_after_seconds: float = 2.0,
    ) -> None:
        self.price_service = price_service
        self.rebalancing_engine = rebalancing_engine
        self.report_generator = report_generator
        self.probe_symbols = list(probe_symbols)
        self.timeout_seconds = timeout_seconds
        self.slow_after_seconds = slow_after_seconds

    @classmethod
    def for_orchestrator(cls, orchestrator: PortfolioRebalancingOrchestrator, **options: Any) -> RebalancingHealthCheck:
        """A health check of the orchestrator's own components."""
        return cls(
            orchestrator.price_service,
            orchestrator.rebalancing_engine,
            orchestrator.report_generator,
            **options,
        )

    async def check_health(self) -> HealthReport:
        """Probe every configured component concurrently and report their health."""
        probes: dict[str, Any] = {}
        if self.price_service is not None:
            probes["price_service"] = self._check_prices(self.price_service)
        if self.rebalancing_engine is not None:
            probes["rebalancing_engine"] = self._check_engine(self.rebalancing_engine)
        names = list(probes)
        outcomes = await asyncio.gather(*probes.values())
        components = dict(zip(names, outcomes, strict=True))
        if self.report_generator is not None:
            components["report_generator"] = await self._check_report(self.report_generator)
        return HealthReport(components)

    async def _check_prices(self, service: PriceService) -> ComponentHealth:
        started = time.perf_counter()
        try:
            quotes = await asyncio.wait_for(service.get_current_prices(self.probe_symbols), self.timeout_seconds)
            priced = [s for s in self.probe_symbols if s in quotes]
            failures: dict[str, str] = {}
        except InsufficientPriceDataError as exc:
            failures = exc.failures
            priced = [s for s in self.probe_symbols if s not in failures]
        except TimeoutError:
            return ComponentHealth.failed(f"no answer within {self.timeout_seconds:g} s", started)
        except Exception as exc:
            return ComponentHealth.failed(f"{type(exc).__name__}: {exc}", started)
        elapsed = time.perf_counter() - started
        total = len(self.probe_symbols)
        if not priced:
            return ComponentHealth(HealthStatus.UNHEALTHY, f"no probe symbol priced: {failures}", elapsed)
        if len(priced) < total:
            return ComponentHealth(
                HealthStatus.DEGRADED,
                f"{len(priced)} of {total} probe symbols priced; failed: {', '.join(failures)}",
                elapsed,
            )
        if elapsed > self.slow_after_seconds:
            return ComponentHealth(HealthStatus.DEGRADED, f"slow: {elapsed:.2f} s for {total} prices", elapsed)
        return ComponentHealth(HealthStatus.HEALTHY, f"{total} probe symbols priced", elapsed)

    async def _check_engine(self, engine: Engine) -> ComponentHealth:
        started = time.perf_counter()
        try:
            # A daemon thread: a probe past its timeout is abandoned, not waited for at exit.
            probe = in_daemon_thread(self._probe_rebalance, engine, name="finwiz-health")
            result = await asyncio.wait_for(probe, self.timeout_seconds)
        except TimeoutError:
            return ComponentHealth.failed(f"probe rebalance took over {self.timeout_seconds:g} s", started)
        except Exception as exc:
            return ComponentHealth.failed(f"{type(exc).__name__}: {exc}", started)
        elapsed = time.perf_counter() - started
        detail = f"probe rebalance solved by {result.solver} in {elapsed:.2f} s"
        status = HealthStatus.DEGRADED if elapsed > self.slow_after_seconds else HealthStatus.HEALTHY
        return ComponentHealth(status, detail, elapsed)

    async def _check_report(self, generator: HTMLReportGenerator) -> ComponentHealth:
        started = time.perf_counter()
        if self.rebalancing_engine is None:
            return ComponentHealth(HealthStatus.HEALTHY, "not probed (no engine to build a result)", 0.0)
        try:
            result = await asyncio.to_thread(self._probe_rebalance, self.rebalancing_engine)
            document = await asyncio.to_thread(generator.generate_html, result)
        except Exception as exc:
            return ComponentHealth.failed(f"{type(exc).__name__}: {exc}", started)
        elapsed = time.perf_counter() - started
        return ComponentHealth(HealthStatus.HEALTHY, f"{len(document):,} bytes of HTML", elapsed)

    @staticmethod
    def _probe_rebalance(engine: Engine) -> RebalancingResult:
        config = PortfolioConfiguration(
            holdings=[{"symbol": "PROBEA", "shares": 100}, {"symbol": "PROBEB", "shares": 10}],
            target_weights={"PROBEA": 0.5, "PROBEB": 0.5},
            cash=1_000.0,
            tolerance=0.0,
            min_trade_size=0.0,
        )
        return engine.rebalance(config, {"PROBEA": 10.0, "PROBEB": 100.0})


# -- assembly from settings ------------------------------------------------------------------
