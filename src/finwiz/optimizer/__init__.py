"""The optimizer: terms, assembler, strategies, engine, analyzer, rounding and diagnosis.

It takes arrays and pandas objects, never providers or reports.
"""

from finwiz.optimizer._analyzer import PortfolioAnalyzer
from finwiz.optimizer._constraints import (
    ESGConstraint,
    OptimizationConstraint,
    SectorConcentrationConstraint,
)
from finwiz.optimizer._engine import RebalancingEngine, rebalance, rebalance_household
from finwiz.optimizer._strategies import (
    OptimizationStrategy,
    Strategy,
    StrategyRegistry,
    TermStrategy,
    default_strategies,
)
from finwiz.optimizer.describe._data import MarketImpactModel, ProblemData, build_problem_data
from finwiz.optimizer.describe._exposures import ExposureCapTerm, ExposureFloorTerm, ExposureTrackingTerm
from finwiz.optimizer.describe._limits import (
    BudgetTerm,
    ESGFloorTerm,
    GrossExposureTerm,
    PositionCapTerm,
    PositionFloorTerm,
    SectorCapTerm,
    TradeBoundsTerm,
    TurnoverCapTerm,
    constraint_terms,
)
from finwiz.optimizer.describe._terms import (
    Limit,
    MarketImpactTerm,
    RiskTerm,
    TargetTrackingTerm,
    Term,
    TermParts,
    TrackingErrorTerm,
    TradeCountTerm,
    TransactionCostTerm,
    TurnoverPenaltyTerm,
    Variables,
)
from finwiz.optimizer.solve._assembler import AssembledProblem, assemble, cache_info, clear_cache
from finwiz.optimizer.verify._compliance import PostTradeState, compliance_checks, post_trade_state

__all__ = [
    "AssembledProblem",
    "BudgetTerm",
    "ESGConstraint",
    "ESGFloorTerm",
    "ExposureCapTerm",
    "ExposureFloorTerm",
    "ExposureTrackingTerm",
    "GrossExposureTerm",
    "Limit",
    "MarketImpactModel",
    "MarketImpactTerm",
    "OptimizationConstraint",
    "OptimizationStrategy",
    "PortfolioAnalyzer",
    "PositionCapTerm",
    "PositionFloorTerm",
    "PostTradeState",
    "ProblemData",
    "RebalancingEngine",
    "RiskTerm",
    "SectorCapTerm",
    "SectorConcentrationConstraint",
    "Strategy",
    "StrategyRegistry",
    "TargetTrackingTerm",
    "Term",
    "TermParts",
    "TermStrategy",
    "TrackingErrorTerm",
    "TradeBoundsTerm",
    "TradeCountTerm",
    "TransactionCostTerm",
    "TurnoverCapTerm",
    "TurnoverPenaltyTerm",
    "Variables",
    "assemble",
    "build_problem_data",
    "cache_info",
    "clear_cache",
    "compliance_checks",
    "constraint_terms",
    "default_strategies",
    "post_trade_state",
    "rebalance",
    "rebalance_household",
]
