"""Pydantic v2 models at finwiz's edges: what users pass in and what they get back.

Every model refuses bad input with :class:`~finwiz.errors.InvalidPortfolioError` (never a raw
``pydantic.ValidationError``); its message names the field and, where there is one, the symbol.
Symbols are canonicalised (surrounding white space removed, upper case), so ``" aapl"`` and
``"AAPL"`` are the same symbol — and listing both is refused as a duplicate.

The public names live here; the code lives by concern in this package's modules: validation
machinery, constants and enums (``_base``), inputs (``_inputs``, with a holding in ``_holding`` and
the fields an account shares with a household in ``_target_policy``), trades, needs, analysis and
checks (``_records``), the result (``_result``), the original guide's shapes (``_legacy``),
the notebook/plot hooks (``_presenters``) and the compact
batch pickling (``_pickling``), and the risk figures a result carries (``_risk``, computed by
:mod:`finwiz.risk`). Each of these modules imports only ``_base`` and its siblings here: no
module of this package imports the rest of finwiz but :mod:`finwiz.errors`.
"""

from __future__ import annotations

from finwiz.schemas._base import (
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
from finwiz.schemas._blended import Model
from finwiz.schemas._holding import Holding
from finwiz.schemas._household import ACCOUNT_KINDS, Account, Household, HouseholdResult
from finwiz.schemas._inputs import REBALANCING_MODES, PortfolioConfiguration, PriceData
from finwiz.schemas._legacy import OptimizedTrades
from finwiz.schemas._records import (
    ComplianceCheck,
    ConstraintOutcome,
    PortfolioAnalysis,
    RebalancingNeed,
    TradeReason,
    TradeRecommendation,
)
from finwiz.schemas._result import RebalancingResult, StageRecord
from finwiz.schemas._risk import RiskMetrics
from finwiz.schemas._tax import LotSale, RecentPurchase, RecentSale, TaxLot, TaxSettings, TaxSummary

__all__ = [
    "ACCOUNT_KINDS",
    "CASH",
    "DEFAULT_MIN_TRADE_SIZE",
    "DEFAULT_TOLERANCE",
    "DEFAULT_TRANSACTION_COST_RATE",
    "REBALANCING_MODES",
    "UNCLASSIFIED_SECTORS",
    "Account",
    "ComplianceCheck",
    "ConstraintOutcome",
    "Holding",
    "Household",
    "HouseholdResult",
    "LotSale",
    "Model",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioConfiguration",
    "PriceData",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RecentPurchase",
    "RecentSale",
    "RiskMetrics",
    "StageRecord",
    "TaxLot",
    "TaxSettings",
    "TaxSummary",
    "TradeAction",
    "TradeReason",
    "TradeRecommendation",
    "canonical_symbol",
    "is_unclassified",
    "require_data",
]
