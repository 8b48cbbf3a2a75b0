"""finwiz: whole-share portfolio rebalancing from one convex problem assembled from named terms."""

from finwiz.errors import (
    ConfigurationError,
    FinwizError,
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
)
from finwiz.risk import FactorModel
from finwiz.schemas import (
    ComplianceCheck,
    Holding,
    OptimizedTrades,
    PortfolioAnalysis,
    PortfolioConfiguration,
    PriceData,
    RebalancingMethod,
    RebalancingNeed,
    RebalancingResult,
    TradeAction,
    TradeRecommendation,
)
from finwiz.settings import RebalancingSettings

__version__ = "0.1.0"

__all__ = [
    "ComplianceCheck",
    "ConfigurationError",
    "ESGConstraint",
    "FactorModel",
    "FinwizError",
    "Holding",
    "InfeasibleRebalanceError",
    "InsufficientPriceDataError",
    "InvalidPortfolioError",
    "MarketImpactModel",
    "OptimizationConstraint",
    "OptimizationError",
    "OptimizationStrategy",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioAnalyzer",
    "PortfolioConfiguration",
    "PriceData",
    "PriceDataError",
    "RebalancingEngine",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RebalancingSettings",
    "SectorConcentrationConstraint",
    "SolverError",
    "TermError",
    "TermStrategy",
    "TradeAction",
    "TradeRecommendation",
    "rebalance",
    "__version__",
]
