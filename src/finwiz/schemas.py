"""Pydantic v2 models at finwiz's edges: what users pass in and what they get back.

Every model refuses bad input with :class:`~finwiz.errors.InvalidPortfolioError` (never a raw
``pydantic.ValidationError``); its message names the field and, where there is one, the symbol.
Symbols are canonicalised (surrounding white space removed, upper case), so ``" aapl"`` and
``"AAPL"`` are the same symbol — and listing both is refused as a duplicate.

The public names live here; the code lives by concern in :mod:`finwiz._schemas`: validation
machinery, constants and enums (``_base``), inputs (``_inputs``), trades, needs, analysis and
checks (``_records``), the result (``_result``), the original guide's shapes (``_legacy``),
``to_frame`` and the notebook/plot hooks (``_presentation``, ``_presenters``) and the compact
batch pickling (``_pickling``).
"""

from __future__ import annotations

from finwiz._schemas._base import (
    CASH,
    DEFAULT_MIN_TRADE_SIZE,
    DEFAULT_TOLERANCE,
    DEFAULT_TRANSACTION_COST_RATE,
    UNCLASSIFIED_SECTORS,
    RebalancingMethod,
    TradeAction,
    canonical_symbol,
    is_unclassified,
    require_data,
)
from finwiz._schemas._inputs import Holding, PortfolioConfiguration, PriceData
from finwiz._schemas._legacy import OptimizedTrades
from finwiz._schemas._records import (
    ComplianceCheck,
    ConstraintOutcome,
    PortfolioAnalysis,
    RebalancingNeed,
    TradeRecommendation,
)
from finwiz._schemas._result import RebalancingResult, StageRecord
from finwiz._schemas._tax import LotSale, RecentPurchase, RecentSale, TaxLot, TaxSettings, TaxSummary

__all__ = [
    "CASH",
    "DEFAULT_MIN_TRADE_SIZE",
    "DEFAULT_TOLERANCE",
    "DEFAULT_TRANSACTION_COST_RATE",
    "UNCLASSIFIED_SECTORS",
    "ComplianceCheck",
    "ConstraintOutcome",
    "Holding",
    "LotSale",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioConfiguration",
    "PriceData",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RecentPurchase",
    "RecentSale",
    "StageRecord",
    "TaxLot",
    "TaxSettings",
    "TaxSummary",
    "TradeAction",
    "TradeRecommendation",
    "canonical_symbol",
    "is_unclassified",
    "require_data",
]
