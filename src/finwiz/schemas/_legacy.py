"""The original FinWiz guide's shapes: :class:`OptimizedTrades` (a result gives one through
``RebalancingResult.optimized_trades()``)."""

from __future__ import annotations

from pydantic import Field

from finwiz.schemas._base import _Model
from finwiz.schemas._records import TradeRecommendation

__all__ = ["OptimizedTrades"]


class OptimizedTrades(_Model):
    """What a strategy returns: the trades and their summary (the original guide's shape)."""

    trades: list[TradeRecommendation]
    total_cost: float
    capital_used: float
    constraints_violated: list[str] = Field(default_factory=list)
    optimization_score: float = 0.0
    method_used: str
