"""The standard components, and the orchestrator over them, built from settings:
:class:`RebalancingServiceFactory`."""

from __future__ import annotations

from finwiz.data import (
    PortfolioPriceService,
    PriceDataProvider,
    ProgressCallback,
    provider_from_name,
)
from finwiz.optimizer import PortfolioAnalyzer, RebalancingEngine
from finwiz.orchestrator import (
    PortfolioRebalancingOrchestrator,
)
from finwiz.reporting import HTMLReportGenerator
from finwiz.service._events import RebalancingEventBus
from finwiz.service._health import RebalancingHealthCheck
from finwiz.settings import RebalancingSettings

__all__ = ["RebalancingServiceFactory"]


class RebalancingServiceFactory:
    """Builds the standard components, and the orchestrator over them, from settings.

    ``settings.price_provider`` then ``settings.fallback_providers`` form the price chain
    (the names of :data:`finwiz.data.PRICE_PROVIDERS`); an unknown name, or a provider
    missing its configuration (API key, CSV path), raises :class:`~finwiz.errors.ConfigurationError`.
    """

    def __init__(self, settings: RebalancingSettings | None = None) -> None:
        self.settings = settings if settings is not None else RebalancingSettings()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(settings={self.settings!r})"

    def create_provider(self, name: str) -> PriceDataProvider:
        """The price provider called ``name`` (a key of :data:`finwiz.data.PRICE_PROVIDERS`),
        configured from the settings."""
        return provider_from_name(name, self.settings)

    def create_price_service(self, *, progress: ProgressCallback | None = None) -> PortfolioPriceService:
        """A price service over the configured chain; ``progress(done, total)`` is optional."""
        names = [self.settings.price_provider, *self.settings.fallback_providers]
        providers = [self.create_provider(name) for name in names]
        return PortfolioPriceService(providers, settings=self.settings, progress=progress)

    def create_engine(self) -> RebalancingEngine:
        """A :class:`~finwiz.RebalancingEngine` using the settings' solver choices."""
        return RebalancingEngine(settings=self.settings)

    def create_analyzer(self) -> PortfolioAnalyzer:
        """A :class:`~finwiz.PortfolioAnalyzer`."""
        return PortfolioAnalyzer()

    def create_report_generator(self) -> HTMLReportGenerator:
        """An :class:`~finwiz.HTMLReportGenerator` with the default sections."""
        return HTMLReportGenerator()

    def create_orchestrator(
        self,
        *,
        event_bus: RebalancingEventBus | None = None,
        report_generator: HTMLReportGenerator | None = None,
        progress: ProgressCallback | None = None,
        write_reports: bool = True,
    ) -> PortfolioRebalancingOrchestrator:
        """The orchestrator over fresh components; reports go to ``settings.report_directory``."""
        generator = report_generator or (self.create_report_generator() if write_reports else None)
        return PortfolioRebalancingOrchestrator(
            self.create_price_service(progress=progress),
            self.create_analyzer(),
            self.create_engine(),
            generator,
            event_bus=event_bus,
            report_directory=self.settings.report_directory,
        )

    def create_health_check(
        self, orchestrator: PortfolioRebalancingOrchestrator | None = None
    ) -> RebalancingHealthCheck:
        """A health check of ``orchestrator``'s components (fresh ones when not given)."""
        return RebalancingHealthCheck.for_orchestrator(orchestrator or self.create_orchestrator())
