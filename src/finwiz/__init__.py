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
    "FactorModel",
    "FinwizError",
    "Holding",
    "InfeasibleRebalanceError",
    "InsufficientPriceDataError",
    "InvalidPortfolioError",
    "OptimizationError",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioConfiguration",
    "PriceData",
    "PriceDataError",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RebalancingSettings",
    "SolverError",
    "TermError",
    "TradeAction",
    "TradeRecommendation",
    "__version__",
]
