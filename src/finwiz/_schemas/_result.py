"""What users get back: :class:`RebalancingResult`."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from finwiz._risk_metrics import RiskMetrics
from finwiz._schemas._base import TradeAction, _Model
from finwiz._schemas._legacy import OptimizedTrades, optimized_trades
from finwiz._schemas._pickling import _PER_SYMBOL, _pack_models, _unpickle_result
from finwiz._schemas._presentation import result_frame
from finwiz._schemas._presenters import present
from finwiz._schemas._records import ComplianceCheck, ConstraintOutcome, PortfolioAnalysis, TradeRecommendation
from finwiz._schemas._tax import TaxSummary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["RebalancingResult", "StageRecord"]


class StageRecord(_Model):
    """One stage of a rebalance (``prepare``, ``continuous``, ``whole_shares`` or ``exact_mip``,
    ``verify``, ``result``): its solver calls (continuous QP solves; in the whole-share stage the
    HiGHS calls, and any QP re-solve its rule made), descent rounds, seconds, and a note when a
    fallback ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seconds: float = 0.0
    solver_calls: int = 0
    rounds: int = 0
    note: str = ""


class RebalancingResult(_Model):
    """The answer: trades, the portfolio after them, costs, and how it was obtained.

    Weights are fractions of the post-trade value ``portfolio_value_after``
    (= value before - costs + cash flow). ``status`` is ``"optimal"`` for every returned result,
    except in exact mode, where ``"time_limit"`` means the mixed-integer solve stopped at its time
    limit with the best trades found (``mip_gap`` says how far from proven); every hard
    constraint holds either way. Any other outcome raises.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    status: Literal["optimal", "time_limit"] = "optimal"
    method: str
    solver: str
    rounding: Literal["fractional", "whole_shares", "exact_mip"]
    mip_gap: float | None = None
    trades: list[TradeRecommendation]
    current_holdings: dict[str, float]
    post_trade_holdings: dict[str, float]
    prices: dict[str, float]
    current_weights: dict[str, float]
    target_weights: dict[str, float]
    post_trade_weights: dict[str, float]
    cash_before: float
    cash_flow: float = 0.0
    cash_after: float
    cash_weight_after: float
    target_cash_weight: float
    total_cost: float
    transaction_costs: float
    market_impact_costs: float = 0.0
    turnover: float
    portfolio_value_before: float
    portfolio_value_after: float
    sectors: dict[str, str] = Field(default_factory=dict)
    compliance: list[ComplianceCheck] = Field(default_factory=list)
    constraint_outcomes: list[ConstraintOutcome] = Field(default_factory=list)
    max_constraint_residual: float = 0.0
    objective_value: float | None = Field(
        default=None, description="the strategy's objective at the returned trades (the true trade count)"
    )
    continuous_objective: float | None = Field(
        default=None,
        description="the objective of the continuous optimum (fractional trades, the count as its L1 stand-in)",
    )
    objective_gap: float | None = Field(
        default=None, description="objective_value - continuous_objective: what whole shares cost in objective"
    )
    tracking_distance_before: float = 0.0
    tracking_distance_after: float = 0.0
    solve_time_seconds: float = 0.0
    iterations: int = 0
    warnings: list[str] = Field(default_factory=list)
    analysis: PortfolioAnalysis | None = None
    tax: TaxSummary | None = Field(default=None, description="what a tax-aware rebalance realised")
    risk_before: RiskMetrics | None = None
    risk_after: RiskMetrics | None = None
    portfolio_id: str | None = None
    stages: list[StageRecord] = Field(
        default_factory=list, description="what ran, in order: each stage's solver calls and seconds"
    )
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        """A one-line summary; ``model_dump()`` (or ``to_frame()``) has every field. The default
        repr of a 500-asset result ran to a megabyte, and Python 3.11's ``asyncio.Runner`` builds
        it after every run (its SIGINT check reprs the finished task): 13 ms per orchestrator call."""
        fields = {
            "status": self.status,
            "method": self.method,
            "solver": self.solver,
            "trades": len(self.trades),
            "portfolio_value_after": round(self.portfolio_value_after, 2),
            "cash_after": round(self.cash_after, 2),
            "total_cost": round(self.total_cost, 2),
            "turnover": round(self.turnover, 6),
            "max_constraint_residual": self.max_constraint_residual,
            "portfolio_id": self.portfolio_id,
        }
        return "RebalancingResult(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle compactly: per-symbol maps as one key tuple and packed floats, trades and checks
        as rows. A batch sends every result from its worker to the parent, which spent more CPU
        unpickling pydantic objects one by one than the workers spent solving (100 assets)."""
        state = dict(self.__dict__)
        symbols = tuple(state["prices"])
        packed: dict[str, array[float]] = {}
        for name in _PER_SYMBOL:
            values = state[name]
            if tuple(values) == symbols:
                packed[name] = array("d", values.values())
                del state[name]
        state["trades"] = _pack_models(state["trades"])
        state["compliance"] = _pack_models(state["compliance"])
        state["stages"] = _pack_models(state["stages"])
        return (_unpickle_result, (type(self), state, symbols, packed, frozenset(self.model_fields_set)))

    @property
    def buys(self) -> list[TradeRecommendation]:
        """The buy trades."""
        return [t for t in self.trades if t.action is TradeAction.BUY]

    @property
    def sells(self) -> list[TradeRecommendation]:
        """The sell trades."""
        return [t for t in self.trades if t.action is TradeAction.SELL]

    @property
    def is_compliant(self) -> bool:
        """True when every checked hard constraint holds on the final trades."""
        return all(c.satisfied for c in self.compliance)

    def optimized_trades(self) -> OptimizedTrades:
        """The result in the original guide's :class:`OptimizedTrades` shape."""
        return optimized_trades(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per asset (and a ``CASH`` row): shares, prices, trades and weights."""
        return result_frame(self)

    def _repr_html_(self) -> str:
        return str(present("html", self))

    def plot(self) -> Figure:
        """A matplotlib figure of current, target and post-trade weights."""
        figure: Figure = present("figure", self)
        return figure
