"""What the engine reports besides the result itself: per-asset needs, the pre-trade analysis,
trades, compliance checks and custom-constraint outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field

from finwiz.schemas._base import TradeAction, _Model
from finwiz.schemas._tax import LotSale

__all__ = [
    "ComplianceCheck",
    "ConstraintOutcome",
    "PortfolioAnalysis",
    "RebalancingNeed",
    "TradeReason",
    "TradeRecommendation",
]


class RebalancingNeed(_Model):
    """How far one asset has drifted from its target, and what to do about it."""

    symbol: str
    current_weight: float
    target_weight: float
    drift: float = Field(description="current_weight - target_weight")
    tolerance: float
    band_exceeded: bool
    urgency: float = Field(description="|drift| / tolerance (inf when tolerance is 0 and drift is not)")
    recommended_action: TradeAction
    current_value: float
    target_value: float


class PortfolioAnalysis(_Model):
    """The portfolio before trading: value, weights, drift and per-asset needs."""

    total_value: float
    positions_value: float
    cash: float
    cash_weight: float
    target_cash_weight: float
    current_weights: dict[str, float]
    target_weights: dict[str, float]
    needs: list[RebalancingNeed]
    needs_rebalancing: bool
    max_drift: float
    total_drift: float = Field(description="half the sum of |drift| over assets and cash")
    sector_weights: dict[str, float] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))


class TradeReason(_Model):
    """One force behind a trade, from the solve itself (see the README's "Why each trade").

    ``kind``: ``"term"`` (an objective term's share: how much that term would worsen were the
    trade undone), ``"limit"`` (a limit the answer would breach without the trade, priced by its
    multiplier) or ``"fact"`` (a plain fact: minimum trade, restriction). ``label`` is what a desk
    reads (``drift to target (-0.8 %)``, ``sector_cap[Energy] binding``, ``harvests a 1,240
    loss``); ``amount`` the figure behind it in ``unit`` (``"weight"``, ``"currency"``,
    ``"objective"``); ``score`` the force in objective units the reasons are ranked by (0 for a
    fact). ``str(reason)`` is its label. Frozen: one fact (e.g. the minimum trade) is shared by the
    trades it explains.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["term", "limit", "fact"]
    label: str
    amount: float = 0.0
    unit: str = ""
    score: float = 0.0

    def __str__(self) -> str:
        return self.label

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as its five values (a batch sends every trade's reasons back)."""
        return _unpickle_reason, (self.kind, self.label, self.amount, self.unit, self.score)


def _unpickle_reason(kind: str, label: str, amount: float, unit: str, score: float) -> TradeReason:
    return TradeReason.trusted(kind=kind, label=label, amount=amount, unit=unit, score=score)


class TradeRecommendation(_Model):
    """One trade: ``shares`` (positive) of ``symbol`` on side ``action`` at ``price``."""

    symbol: str
    action: TradeAction
    shares: float = Field(ge=0.0)
    price: float = Field(gt=0.0)
    trade_value: float = Field(ge=0.0, description="shares x price")
    transaction_cost: float = Field(ge=0.0)
    market_impact_cost: float = Field(default=0.0, ge=0.0)
    total_estimated_cost: float = Field(ge=0.0)
    current_shares: float = 0.0
    post_trade_shares: float = 0.0
    current_weight: float = 0.0
    target_weight: float = 0.0
    post_trade_weight: float = 0.0
    lots: list[LotSale] = Field(default_factory=list, description="a tax-aware sell: the lots it relieves")
    reasons: list[TradeReason] = Field(
        default_factory=list, description="the forces behind the trade, strongest first (see TradeReason)"
    )

    @property
    def why(self) -> str:
        """The reasons as one line, strongest first: ``"drift to target (-0.8 %); minimum trade"``."""
        return self.why_text()

    def why_text(self, limit: int | None = None) -> str:
        """:attr:`why` with at most ``limit`` reasons (None: every one), strongest first."""
        return "; ".join(str(r) for r in self.reasons[:limit])

    @property
    def signed_shares(self) -> float:
        """Shares with sign: positive for a buy, negative for a sell."""
        return -self.shares if self.action is TradeAction.SELL else self.shares

    @property
    def signed_trade_value(self) -> float:
        """Trade value with the sign of :attr:`signed_shares`: positive for a buy, negative for a sell."""
        return -self.trade_value if self.action is TradeAction.SELL else self.trade_value


class ComplianceCheck(_Model):
    """One hard constraint checked on the final trades: ``value`` against ``limit``.

    ``unit``: unit of limit, value and slack ("weight", "shares", "currency", "turnover", "score"; "" unknown).
    """

    constraint: str
    term: str
    kind: Literal["<=", ">=", "=="]
    limit: float
    value: float
    slack: float = Field(description="how far inside the limit (negative when breached)")
    satisfied: bool
    unit: str = Field(default="", description="of limit, value and slack: weight, shares, currency, turnover, score")

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """As :meth:`_Model.trusted`; ``unit`` may be left out (it is then "", as when validated)."""
        values.setdefault("unit", "")
        return super().trusted(**values)


class ConstraintOutcome(_Model):
    """What one custom constraint's ``validate(trades, current_portfolio, market_data)`` said of
    the final trades: ``ok`` and its ``messages`` (also in the result's warnings, prefixed by
    ``name``). A structured field, so nothing has to parse warning strings."""

    name: str
    ok: bool
    messages: list[str] = Field(default_factory=list)
