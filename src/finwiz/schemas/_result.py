"""What users get back: :class:`RebalancingResult`."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from finwiz.schemas._base import CASH, TradeAction, _Model
from finwiz.schemas._legacy import OptimizedTrades
from finwiz.schemas._pickling import _PER_SYMBOL, _pack_models, _unpickle_result
from finwiz.schemas._presenters import present
from finwiz.schemas._records import ComplianceCheck, ConstraintOutcome, PortfolioAnalysis, TradeRecommendation
from finwiz.schemas._risk import RiskMetrics
from finwiz.schemas._tax import TaxSummary

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
    objective_bound: float | None = Field(
        default=None,
        description="a lower bound on the objective of any trades that keep every limit: the larger of"
        " continuous_objective and, in exact mode, the mixed-integer solver's dual bound",
    )
    objective_bound_source: Literal["continuous", "exact_mip"] | None = Field(
        default=None, description="where objective_bound comes from: the continuous optimum, or exact mode's dual bound"
    )
    objective_bound_gap: float | None = Field(
        default=None, description="objective_value - objective_bound: at most this far from the whole-share optimum"
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
    currency: str = Field(default="USD", description="ISO code of every amount (the configuration's currency)")
    exposure_table: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="the configuration's look-through exposures (symbol -> exposure -> fraction)"
    )
    sleeve_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="a blended model's sleeves (path -> symbol -> part of the target)"
    )
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        """A one-line summary; ``model_dump()`` (or ``to_frame()``) has every field. The default
        repr of a large result is huge, and Python 3.11's ``asyncio.Runner`` builds it after every
        run (its SIGINT check reprs the finished task; figures: docs/decisions/layout.md)."""
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
        state["trades"] = _pack_models(state["trades"], nested="reasons")
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
        return OptimizedTrades(
            trades=self.trades,
            total_cost=self.total_cost,
            capital_used=sum(t.trade_value for t in self.buys) - sum(t.trade_value for t in self.sells),
            constraints_violated=[c.constraint for c in self.compliance if not c.satisfied],
            optimization_score=-(self.tracking_distance_after),
            method_used=self.method,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per asset (and a ``CASH`` row): shares, prices, trades and weights."""
        return result_frame(self)

    def exposures(self) -> pd.DataFrame:
        """Look-through weights per exposure (``exposures=`` of the configuration): ``before``,
        ``target`` and ``after`` the trades (``sum_i E_ik w_i``), with each exposure's ``cap`` and
        ``floor`` (NaN: none), read from the compliance table. Empty without exposures."""
        return result_exposures(self)

    def sleeves(self) -> pd.DataFrame:
        """Drift per sleeve of a blended :class:`~finwiz.Model` given as targets (one row per model
        of the tree, by path): target, weight before and after, drift, and the trade value
        attributed to it. Empty when the targets were not a model."""
        from finwiz.schemas._blended import sleeves_frame

        trade_values = {t.symbol: t.signed_trade_value for t in self.trades}
        return sleeves_frame(self.sleeve_weights, self.current_weights, self.post_trade_weights, trade_values)

    def sleeve_trades(self) -> pd.DataFrame:
        """Which model of a blended :class:`~finwiz.Model` asked for each trade: ``sleeve`` (the
        path), ``symbol`` and ``trade_value`` (its part of the signed trade value; a symbol two
        sleeves ask for is split in proportion; ``""`` for a trade no sleeve asks for)."""
        from finwiz.schemas._blended import sleeve_trades_frame

        return sleeve_trades_frame(self.sleeve_weights, {t.symbol: t.signed_trade_value for t in self.trades})

    def orders(
        self,
        *,
        account: str | None = None,
        order_type: Literal["market", "limit"] = "market",
        limit_offset: float | None = None,
    ) -> pd.DataFrame:
        """The trades as orders to send: one row per trade, sells first.

        Columns: ``account`` (``account``, else ``portfolio_id``, else ``"acct"``), ``order_id``
        (``"{account}-0001"``, numbered in sending order, so the same result gives the same ids),
        ``symbol``, ``side`` (``SELL``/``BUY``), ``quantity`` (shares, positive), ``order_type``,
        ``limit_price``, ``estimated_value`` (quantity x price, before costs) and ``sequence``
        (1, 2, ...). Sells come before buys always: their proceeds pay for the buys, so the
        list is safe to send in order when cash is short. ``order_type="limit"`` needs
        ``limit_offset`` (a fraction, e.g. 0.002) and prices a buy at price x (1 + offset) and a
        sell at price x (1 - offset), i.e. willing to pay that much past the last price, rounded
        to the cent (to 0.0001 under 1); for market orders ``limit_price`` is NaN.
        """
        return orders_frame(self, account=account, order_type=order_type, limit_offset=limit_offset)

    def _repr_html_(self) -> str:
        return str(present("html", self))

    def plot(self) -> Figure:
        """A matplotlib figure of current, target and post-trade weights."""
        figure: Figure = present("figure", self)
        return figure


def result_frame(self: RebalancingResult) -> pd.DataFrame:
    """One row per asset and a final ``CASH`` row: sector, shares, prices, trades and weights,
    and each asset's risk contribution before and after when risk is attached (cash: 0).

    ``trade_shares`` and ``trade_value`` are signed alike: positive for a buy, negative for a
    sell, 0 for a hold. ``CASH`` is a position of price 1: its shares are the cash amounts and
    its ``trade_value`` is its change (sells - buys - costs + cash flow), so the column sums to
    cash flow - costs. ``sector`` is ``""`` for cash and for an asset without a sector.
    ``reasons`` is each trade's :attr:`~finwiz.TradeRecommendation.why` (``""`` for a hold).
    """
    import pandas as pd

    symbols = list(self.current_holdings)
    by_symbol = {t.symbol: t for t in self.trades}
    traded = [by_symbol.get(s) for s in symbols]
    cash_change = self.cash_after - self.cash_before
    frame = pd.DataFrame(
        {
            "sector": [self.sectors.get(s, "") for s in symbols] + [""],
            "action": [t.action.value if t else TradeAction.HOLD.value for t in traded] + [TradeAction.HOLD.value],
            "shares_before": [self.current_holdings[s] for s in symbols] + [self.cash_before],
            "trade_shares": [t.signed_shares if t else 0.0 for t in traded] + [cash_change],
            "shares_after": [self.post_trade_holdings[s] for s in symbols] + [self.cash_after],
            "price": [self.prices[s] for s in symbols] + [1.0],
            "trade_value": [t.signed_trade_value if t else 0.0 for t in traded] + [cash_change],
            "cost": [t.total_estimated_cost if t else 0.0 for t in traded] + [0.0],
            "weight_before": [self.current_weights[s] for s in symbols] + [self.current_weights.get(CASH, 0.0)],
            "target_weight": [self.target_weights.get(s, 0.0) for s in symbols] + [self.target_cash_weight],
            "weight_after": [self.post_trade_weights[s] for s in symbols] + [self.cash_weight_after],
            "reasons": [t.why if t else "" for t in traded] + [""],
        },
        index=pd.Index([*symbols, CASH], name="symbol"),
    )
    for when, risk in (("before", self.risk_before), ("after", self.risk_after)):
        if risk is not None:
            frame[f"risk_contribution_{when}"] = [risk.risk_contributions.get(s, 0.0) for s in symbols] + [0.0]
    return frame


ORDER_COLUMNS = (
    "account",
    "order_id",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "estimated_value",
    "sequence",
)


def orders_frame(
    result: RebalancingResult,
    *,
    account: str | None = None,
    order_type: str = "market",
    limit_offset: float | None = None,
) -> pd.DataFrame:
    """:meth:`RebalancingResult.orders` (see there)."""
    import math

    import pandas as pd

    from finwiz.errors import ConfigurationError

    if order_type not in ("market", "limit"):
        raise ConfigurationError(f"order_type must be 'market' or 'limit', not {order_type!r}")
    if order_type == "limit":
        if limit_offset is None or not math.isfinite(limit_offset) or not 0.0 <= limit_offset < 1.0:
            raise ConfigurationError(
                f"order_type='limit' needs limit_offset, a fraction in [0, 1) such as 0.002, not {limit_offset!r}"
            )
    elif limit_offset is not None:
        raise ConfigurationError("limit_offset applies only to order_type='limit'")
    name = account or result.portfolio_id or "acct"
    # Sells first (their proceeds fund the buys); within a side, the result's (symbol) order.
    ordered = result.sells + result.buys
    rows = []
    for n, trade in enumerate(ordered, start=1):
        sign = 1.0 if trade.action is TradeAction.BUY else -1.0
        limit = math.nan
        if limit_offset is not None:  # a tick of a cent, of 0.0001 under 1 (as US venues quote)
            limit = round(trade.price * (1.0 + sign * limit_offset), 2 if trade.price >= 1.0 else 4)
        rows.append(
            (
                name,
                f"{name}-{n:04d}",
                trade.symbol,
                trade.action.value.upper(),
                trade.shares,
                order_type,
                limit,
                trade.trade_value,
                n,
            )
        )
    frame = pd.DataFrame(rows, columns=list(ORDER_COLUMNS))
    return frame.astype({"quantity": float, "limit_price": float, "estimated_value": float, "sequence": "int64"})


def result_exposures(result: RebalancingResult) -> pd.DataFrame:
    """:meth:`RebalancingResult.exposures` (see there)."""
    from finwiz.schemas._exposures import exposures_frame

    limits: dict[str, dict[str, float]] = {"cap": {}, "floor": {}}
    for check in result.compliance:
        for kind in ("cap", "floor"):
            prefix = f"exposure_{kind}["
            if check.constraint.startswith(prefix):
                limits[kind][check.constraint[len(prefix) : -1]] = check.limit
    weights = {"before": result.current_weights, "target": result.target_weights, "after": result.post_trade_weights}
    frame: pd.DataFrame = exposures_frame(result.exposure_table, weights, limits)
    return frame
