"""The original FinWiz guide's shapes: :class:`OptimizedTrades` and the adapter from a result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from finwiz._schemas._base import _Model
from finwiz._schemas._records import TradeRecommendation

if TYPE_CHECKING:  # pragma: no cover
    from finwiz._schemas._result import RebalancingResult

__all__ = ["OptimizedTrades", "optimized_trades"]


class OptimizedTrades(_Model):
    """What a strategy returns: the trades and their summary (the original guide's shape)."""

    trades: list[TradeRecommendation]
    total_cost: float
    capital_used: float
    constraints_violated: list[str] = Field(default_factory=list)
    optimization_score: float = 0.0
    method_used: str


def optimized_trades(self: RebalancingResult) -> OptimizedTrades:
    """The result in the original guide's :class:`OptimizedTrades` shape."""
    return OptimizedTrades(
        trades=self.trades,
        total_cost=self.total_cost,
        capital_used=sum(t.trade_value for t in self.buys) - sum(t.trade_value for t in self.sells),
        constraints_violated=[c.constraint for c in self.compliance if not c.satisfied],
        optimization_score=-(self.tracking_distance_after),
        method_used=self.method,
    )
