"""finwiz: whole-share portfolio rebalancing from one convex problem assembled from named terms.

Public names are imported lazily, so ``import finwiz.data`` does not load the optimizer and
``import finwiz`` alone loads neither cvxpy nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from finwiz.schemas._presenters import register_presenter

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.batch import (
        AccountOutcome,
        BatchResult,
        iter_rebalance_many,
        rebalance_many,
    )
    from finwiz.data import (
        AlphaVantagePriceProvider,
        CSVPriceProvider,
        InMemoryPriceProvider,
        MarketDataProvider,
        PortfolioPriceService,
        PriceDataProvider,
        SamplePriceProvider,
        YahooFinancePriceProvider,
    )
    from finwiz.errors import (
        ComplianceError,
        ConfigurationError,
        ConstraintConflict,
        DuplicateAccountError,
        FinwizError,
        HouseholdConflictError,
        InfeasibleHouseholdError,
        InfeasibleRebalanceError,
        InsufficientPriceDataError,
        InvalidPortfolioError,
        OptimizationError,
        PriceDataError,
        SolverError,
        TermError,
    )
    from finwiz.optimizer import (
        ESGConstraint,
        MarketImpactModel,
        OptimizationConstraint,
        OptimizationStrategy,
        PortfolioAnalyzer,
        RebalancingEngine,
        SectorConcentrationConstraint,
        TermStrategy,
        rebalance,
        rebalance_household,
    )
    from finwiz.orchestrator import (
        PortfolioRebalancingOrchestrator,
        RebalancingEventBus,
        monitor_performance,
    )
    from finwiz.reporting import (
        HTMLReportGenerator,
    )
    from finwiz.risk import (
        FactorModel,
        RiskMetrics,
    )
    from finwiz.schemas import (
        Account,
        ComplianceCheck,
        ConstraintOutcome,
        Holding,
        Household,
        HouseholdResult,
        Model,
        OptimizedTrades,
        PortfolioAnalysis,
        PortfolioConfiguration,
        PriceData,
        RebalancingMethod,
        RebalancingNeed,
        RebalancingResult,
        TaxLot,
        TaxSettings,
        TradeAction,
        TradeReason,
        TradeRecommendation,
    )
    from finwiz.service._factory import RebalancingServiceFactory
    from finwiz.service._health import RebalancingHealthCheck
    from finwiz.settings import (
        RebalancingSettings,
    )

__version__ = "0.1.0"


def _result_summary_html(result: Any) -> str:
    from finwiz.reporting import result_summary_html

    return result_summary_html(result)


def _weights_figure(result: Any) -> Any:
    from finwiz.reporting import weights_figure

    return weights_figure(result)


# The models' notebook view and plot() come from the reporting layer, which imports the models:
# plugged in here (lazily: nothing heavy is imported until a result is drawn), so the models never
# import reporting and the two form no circle. This package is imported before any of its modules.
register_presenter("html", _result_summary_html)
register_presenter("figure", _weights_figure)

_LOCATIONS: dict[str, str] = {
    "AccountOutcome": "finwiz.batch",
    "BatchResult": "finwiz.batch",
    "iter_rebalance_many": "finwiz.batch",
    "rebalance_many": "finwiz.batch",
    "ComplianceError": "finwiz.errors",
    "ConfigurationError": "finwiz.errors",
    "ConstraintConflict": "finwiz.errors",
    "FinwizError": "finwiz.errors",
    "InfeasibleRebalanceError": "finwiz.errors",
    "InsufficientPriceDataError": "finwiz.errors",
    "InvalidPortfolioError": "finwiz.errors",
    "OptimizationError": "finwiz.errors",
    "PriceDataError": "finwiz.errors",
    "SolverError": "finwiz.errors",
    "TermError": "finwiz.errors",
    "ComplianceCheck": "finwiz.schemas",
    "ConstraintOutcome": "finwiz.schemas",
    "Holding": "finwiz.schemas",
    "Model": "finwiz.schemas",
    "OptimizedTrades": "finwiz.schemas",
    "PortfolioAnalysis": "finwiz.schemas",
    "PortfolioConfiguration": "finwiz.schemas",
    "PriceData": "finwiz.schemas",
    "RebalancingMethod": "finwiz.schemas",
    "RebalancingNeed": "finwiz.schemas",
    "RebalancingResult": "finwiz.schemas",
    "TaxLot": "finwiz.schemas",
    "TaxSettings": "finwiz.schemas",
    "TradeAction": "finwiz.schemas",
    "TradeReason": "finwiz.schemas",
    "TradeRecommendation": "finwiz.schemas",
    "RebalancingSettings": "finwiz.settings",
    "FactorModel": "finwiz.risk",
    "RiskMetrics": "finwiz.schemas",
    "ESGConstraint": "finwiz.optimizer",
    "MarketImpactModel": "finwiz.optimizer",
    "OptimizationConstraint": "finwiz.optimizer",
    "OptimizationStrategy": "finwiz.optimizer",
    "PortfolioAnalyzer": "finwiz.optimizer",
    "RebalancingEngine": "finwiz.optimizer",
    "SectorConcentrationConstraint": "finwiz.optimizer",
    "TermStrategy": "finwiz.optimizer",
    "rebalance": "finwiz.optimizer",
    "AlphaVantagePriceProvider": "finwiz.data",
    "CSVPriceProvider": "finwiz.data",
    "InMemoryPriceProvider": "finwiz.data",
    "MarketDataProvider": "finwiz.data",
    "PortfolioPriceService": "finwiz.data",
    "PriceDataProvider": "finwiz.data",
    "SamplePriceProvider": "finwiz.data",
    "YahooFinancePriceProvider": "finwiz.data",
    "HTMLReportGenerator": "finwiz.reporting",
    "PortfolioRebalancingOrchestrator": "finwiz.orchestrator",
    "RebalancingEventBus": "finwiz.orchestrator",
    "RebalancingHealthCheck": "finwiz.service._health",
    "RebalancingServiceFactory": "finwiz.service._factory",
    "monitor_performance": "finwiz.orchestrator",
    "Account": "finwiz.schemas",
    "Household": "finwiz.schemas",
    "HouseholdResult": "finwiz.schemas",
    "rebalance_household": "finwiz.optimizer",
    "DuplicateAccountError": "finwiz.errors",
    "HouseholdConflictError": "finwiz.errors",
    "InfeasibleHouseholdError": "finwiz.errors",
}

__all__ = [
    "Account",
    "AccountOutcome",
    "AlphaVantagePriceProvider",
    "BatchResult",
    "CSVPriceProvider",
    "ComplianceCheck",
    "ComplianceError",
    "ConfigurationError",
    "ConstraintConflict",
    "ConstraintOutcome",
    "DuplicateAccountError",
    "ESGConstraint",
    "FactorModel",
    "FinwizError",
    "HTMLReportGenerator",
    "Holding",
    "Household",
    "HouseholdConflictError",
    "HouseholdResult",
    "InMemoryPriceProvider",
    "InfeasibleHouseholdError",
    "InfeasibleRebalanceError",
    "InsufficientPriceDataError",
    "InvalidPortfolioError",
    "MarketDataProvider",
    "MarketImpactModel",
    "Model",
    "OptimizationConstraint",
    "OptimizationError",
    "OptimizationStrategy",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioAnalyzer",
    "PortfolioConfiguration",
    "PortfolioPriceService",
    "PortfolioRebalancingOrchestrator",
    "PriceData",
    "PriceDataError",
    "PriceDataProvider",
    "RebalancingEngine",
    "RebalancingEventBus",
    "RebalancingHealthCheck",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RebalancingServiceFactory",
    "RebalancingSettings",
    "RiskMetrics",
    "SamplePriceProvider",
    "SectorConcentrationConstraint",
    "SolverError",
    "TaxLot",
    "TaxSettings",
    "TermError",
    "TermStrategy",
    "TradeAction",
    "TradeReason",
    "TradeRecommendation",
    "YahooFinancePriceProvider",
    "__version__",
    "iter_rebalance_many",
    "monitor_performance",
    "rebalance",
    "rebalance_household",
    "rebalance_many",
]


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'finwiz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
