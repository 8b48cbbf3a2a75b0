"""Pydantic v2 models at finwiz's edges: what users pass in and what they get back.

Every model refuses bad input with :class:`~finwiz.errors.InvalidPortfolioError` (never a raw
``pydantic.ValidationError``); its message names the field and, where there is one, the symbol.
Symbols are canonicalised (surrounding white space removed, upper case), so ``" aapl"`` and
``"AAPL"`` are the same symbol — and listing both is refused as a duplicate.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finwiz.errors import InvalidPortfolioError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "CASH",
    "DEFAULT_MIN_TRADE_SIZE",
    "DEFAULT_TOLERANCE",
    "DEFAULT_TRANSACTION_COST_RATE",
    "UNCLASSIFIED_SECTORS",
    "ComplianceCheck",
    "ConstraintOutcome",
    "Holding",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioConfiguration",
    "PriceData",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "TradeAction",
    "TradeRecommendation",
    "canonical_symbol",
    "is_unclassified",
    "require_data",
]

CASH = "CASH"
"""Pseudo-symbol under which cash appears in weight tables and reports."""

DEFAULT_TOLERANCE = 0.05
DEFAULT_TRANSACTION_COST_RATE = 0.001
DEFAULT_MIN_TRADE_SIZE = 100.0
_WEIGHT_SLACK = 1e-9  # float noise allowed when weights are summed

UNCLASSIFIED_SECTORS = frozenset({"", "unclassified", "unknown", "n/a", "na", "none"})
"""Sector labels (compared case-insensitively) that mean *no sector*. One rule for the data layer
and the optimizer: an unclassified symbol -- one without a sector, or labelled with one of these
-- is in no sector, so no sector cap applies to it (grouping every unknown asset into one
pseudo-sector would put one cap on unrelated stocks)."""


def is_unclassified(sector: object) -> bool:
    """True when ``sector`` is missing or one of :data:`UNCLASSIFIED_SECTORS`."""
    return sector is None or str(sector).strip().lower() in UNCLASSIFIED_SECTORS


def canonical_symbol(symbol: object) -> str:
    """Return the canonical form of a ticker: stripped, upper case; refuse empty or non-text."""
    if not isinstance(symbol, str):
        raise InvalidPortfolioError(f"symbol {symbol!r} is not text", field="symbol")
    text = symbol.strip().upper()
    if not text:
        raise InvalidPortfolioError("empty symbol", field="symbol")
    if text == CASH:
        raise InvalidPortfolioError(f"{CASH!r} is reserved for cash; use the cash field", symbol=text)
    return text


def require_data(symbols: Iterable[str], data: Mapping[str, Any], field: str, why: str) -> None:
    """Refuse when any of ``symbols`` has no entry in ``data`` (naming them all)."""
    missing = [s for s in symbols if s not in data]
    if missing:
        raise InvalidPortfolioError(f"{field}: {why} for {', '.join(missing)}", field=field, symbol=missing[0])


def _describe(exc: ValidationError, model: str) -> tuple[str, str | None]:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"]) or model
    return f"{model}: invalid {loc}: {first['msg']}", loc


class _Model(BaseModel):
    """Base model: strict on unknown keys, translating pydantic errors into finwiz errors."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            message, loc = _describe(exc, type(self).__name__)
            raw = data.get("symbol")
            own = raw.strip().upper() if isinstance(raw, str) else None
            cause = exc.errors()[0].get("ctx", {}).get("error")
            if isinstance(cause, InvalidPortfolioError):
                message, loc = f"{type(self).__name__}: {cause}", cause.field or loc
                symbol = cause.symbol or own
                if own and own not in str(cause):
                    message = f"{message} (symbol {own})"
            else:
                symbol = own
                if own:
                    message = f"{message} (symbol {own})"
            raise InvalidPortfolioError(message, field=loc, symbol=symbol) from exc

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values the engine computed itself: every field given, already of its
        type, no validation. ``model_construct`` without its per-field loop (~1 us instead of ~8
        per object; a 100-asset account makes ~85 trades). Tests hold it equal to validation."""
        return cls._from_state(values, set(values))

    @classmethod
    def _from_state(cls, values: dict[str, Any], fields_set: set[str]) -> Self:
        obj = cls.__new__(cls)
        object.__setattr__(obj, "__dict__", values)
        object.__setattr__(obj, "__pydantic_fields_set__", fields_set)
        object.__setattr__(obj, "__pydantic_extra__", None)
        object.__setattr__(obj, "__pydantic_private__", None)
        return obj

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate ``obj`` like the constructor, raising :class:`InvalidPortfolioError`."""
        if isinstance(obj, Mapping):
            return cls(**obj)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            message, loc = _describe(exc, cls.__name__)
            raise InvalidPortfolioError(message, field=loc) from exc


def _number(value: Any, field: str, symbol: str | None = None, *, key: str | None = None) -> Any:
    """Refuse what pydantic would quietly turn into a number: ``True`` (1 share), text such as
    ``"110.3"``, and non-finite floats (named as such, before any ``>= 0`` bound speaks)."""
    where = f" for {key or symbol}" if (key or symbol) else ""
    if isinstance(value, bool):
        message = f"{value} is a boolean, not a number"
    elif isinstance(value, str | bytes):
        message = f"text {value!r} is not a number"
    elif isinstance(value, float) and not math.isfinite(value):
        message = f"{value} is not a finite number"
    else:
        return value
    raise InvalidPortfolioError(f"invalid {field}{where}: {message}", field=field, symbol=symbol)


def _number_values(values: Any, field: str) -> Any:
    """:func:`_number` on every value of a mapping (before pydantic coerces them)."""
    if isinstance(values, Mapping):
        for raw, value in values.items():
            if field == "sector_caps":  # keyed by sector, not symbol
                _number(value, field, key=str(raw))
            else:
                _number(value, field, raw.strip().upper() if isinstance(raw, str) else None)
    return values


def _finite(value: float, field: str, symbol: str | None = None) -> float:
    if not math.isfinite(value):
        where = f" for {symbol}" if symbol else ""
        raise InvalidPortfolioError(f"{field}{where} is {value}, not a finite number", field=field, symbol=symbol)
    return value


def _canonical_mapping(values: Mapping[str, Any], field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw, value in values.items():
        symbol = canonical_symbol(raw)
        if symbol in out:
            raise InvalidPortfolioError(f"{field}: symbol {symbol} is listed twice", field=field, symbol=symbol)
        if isinstance(value, float | int) and not isinstance(value, bool):
            _finite(float(value), field, symbol)
        out[symbol] = value
    return out


def _canonical_set(values: Iterable[str], field: str) -> list[str]:
    out: list[str] = []
    for raw in values:
        symbol = canonical_symbol(raw)
        if symbol not in out:
            out.append(symbol)
    return out


class RebalancingMethod(StrEnum):
    """The named strategies that ship with finwiz (presets of optimizer terms)."""

    MINIMIZE_TRADES = "minimize_trades"
    MINIMIZE_COSTS = "minimize_costs"
    RISK_AWARE = "risk_aware"


class TradeAction(StrEnum):
    """Side of a trade recommendation."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class Holding(_Model):
    """A position: ``shares`` of ``symbol`` held today (never negative)."""

    symbol: str
    shares: float = Field(ge=0.0)
    cost_basis: float | None = Field(default=None, ge=0.0)
    sector: str | None = None
    esg_score: float | None = None

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str:
        return canonical_symbol(value)

    @field_validator("shares", "cost_basis", "esg_score", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        return value if value is None else _number(value, info.field_name)

    @field_validator("shares", "cost_basis", "esg_score")
    @classmethod
    def _finite_numbers(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "shares")


class PriceData(_Model):
    """One price observation: ``price`` of ``symbol`` at ``timestamp`` (finite, positive)."""

    symbol: str
    price: float = Field(gt=0.0)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    currency: str = "USD"
    source: str | None = None
    volume: float | None = Field(default=None, ge=0.0)

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str:
        return canonical_symbol(value)

    @field_validator("price", "volume", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        return value if value is None else _number(value, info.field_name)

    @field_validator("price")
    @classmethod
    def _finite_price(cls, value: float) -> float:
        return _finite(value, "price")


class PortfolioConfiguration(_Model):
    """What an account holds, where it should be, and the limits the trades must keep.

    ``target_weights`` are fractions of total portfolio value (holdings plus cash) and sum to at
    most 1; the remainder is the cash target. A held symbol without a target has target 0 (it is
    sold down unless a constraint keeps it). Weights, caps and bands are fractions of value;
    ``min_trade_size`` and ``cash_flow`` are in currency (a positive cash flow is a deposit to
    invest, a negative one a withdrawal to raise).

    Tolerance band: an asset is left alone while ``|weight - target| <= band_width(target)``,
    which is ``tolerance`` (absolute), or with ``relative_tolerance`` the tighter of
    ``tolerance`` and ``relative_tolerance x target`` -- the "5/25" rule is ``tolerance=0.05,
    relative_tolerance=0.25``; ``tolerance=1`` leaves a purely relative band. Limits: the more
    specific setting wins (``max_position_weights[s]`` over ``max_position_weight``,
    ``sector_caps[x]`` over ``max_sector_weight``, tighter or looser). Sectors: an unclassified
    symbol (no entry in ``sectors``, or a label in :data:`UNCLASSIFIED_SECTORS`) is in no sector
    and no sector cap applies to it. Numbers must be numbers: text, booleans and non-finite
    values are refused.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the holdings as rows, not one pydantic object each: a batch sends every account's
        configuration to a worker, and pickling 100 holdings one by one cost a third of the
        parent's time (the worker's copy is the same, validated object)."""
        state = dict(self.__dict__)
        state["holdings"] = _pack_models(state["holdings"])
        return (_unpickle_configuration, (state, frozenset(self.model_fields_set)))

    holdings: list[Holding]
    target_weights: dict[str, float]
    cash: float = Field(default=0.0, ge=0.0)
    method: RebalancingMethod | str = RebalancingMethod.MINIMIZE_TRADES
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0.0, le=1.0)
    relative_tolerance: float | None = Field(default=None, ge=0.0)
    transaction_cost_rate: float = Field(default=DEFAULT_TRANSACTION_COST_RATE, ge=0.0, lt=1.0)
    transaction_cost_rates: dict[str, float] = Field(default_factory=dict)
    min_trade_size: float = Field(default=DEFAULT_MIN_TRADE_SIZE, ge=0.0)
    allow_fractional_shares: bool = False
    lot_sizes: dict[str, float] = Field(default_factory=dict)
    allow_short: bool = False
    cash_flow: float = 0.0
    min_cash_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    max_turnover: float | None = Field(default=None, ge=0.0)
    max_position_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    max_position_weights: dict[str, float] = Field(default_factory=dict)
    min_position_weights: dict[str, float] = Field(default_factory=dict)
    sectors: dict[str, str] = Field(default_factory=dict)
    max_sector_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    sector_caps: dict[str, float] = Field(default_factory=dict)
    esg_scores: dict[str, float] = Field(default_factory=dict)
    min_esg_score: float | None = None
    min_average_esg_score: float | None = None
    no_buy: list[str] = Field(default_factory=list)
    no_sell: list[str] = Field(default_factory=list)
    no_trade: list[str] = Field(default_factory=list)
    risk_aversion: float = Field(default=1.0, ge=0.0)
    trade_penalty: float | None = Field(default=None, ge=0.0)
    custom_constraints: list[Any] = Field(default_factory=list)

    @field_validator(
        "cash",
        "tolerance",
        "relative_tolerance",
        "transaction_cost_rate",
        "min_trade_size",
        "cash_flow",
        "min_cash_weight",
        "max_turnover",
        "max_position_weight",
        "max_sector_weight",
        "min_esg_score",
        "min_average_esg_score",
        "risk_aversion",
        "trade_penalty",
        mode="before",
    )
    @classmethod
    def _scalar_numbers(cls, value: Any, info: Any) -> Any:
        return value if value is None else _number(value, info.field_name)

    @field_validator(
        "target_weights",
        "transaction_cost_rates",
        "lot_sizes",
        "max_position_weights",
        "min_position_weights",
        "esg_scores",
        "sector_caps",
        mode="before",
    )
    @classmethod
    def _mapping_numbers(cls, value: Any, info: Any) -> Any:
        return _number_values(value, info.field_name)

    @field_validator(
        "target_weights",
        "transaction_cost_rates",
        "lot_sizes",
        "max_position_weights",
        "min_position_weights",
        "esg_scores",
        mode="after",
    )
    @classmethod
    def _canonical_numbers(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        return _canonical_mapping(value, info.field_name)

    @field_validator("sectors", mode="after")
    @classmethod
    def _canonical_sectors(cls, value: dict[str, str]) -> dict[str, str]:
        # An unclassified label ("Unclassified", "N/A", "") means no sector: the symbol is left out.
        out = _canonical_mapping(value, "sectors")
        return {s: str(v).strip() for s, v in out.items() if not is_unclassified(v)}

    @field_validator("no_buy", "no_sell", "no_trade", mode="after")
    @classmethod
    def _canonical_lists(cls, value: list[str], info: Any) -> list[str]:
        return _canonical_set(value, info.field_name)

    @field_validator("cash", "cash_flow", "min_trade_size", "risk_aversion")
    @classmethod
    def _finite_scalars(cls, value: float, info: Any) -> float:
        return _finite(value, info.field_name)

    @model_validator(mode="after")
    def _check(self) -> Self:
        held: dict[str, Holding] = {}
        for holding in self.holdings:
            if holding.symbol in held:
                raise InvalidPortfolioError(
                    f"holdings: symbol {holding.symbol} is listed twice",
                    field="holdings",
                    symbol=holding.symbol,
                )
            held[holding.symbol] = holding
        for symbol, weight in self.target_weights.items():
            if weight < 0:
                raise InvalidPortfolioError(
                    f"target_weights: {symbol} has negative target {weight}",
                    field="target_weights",
                    symbol=symbol,
                )
        total = sum(self.target_weights.values())
        if total > 1 + _WEIGHT_SLACK:
            raise InvalidPortfolioError(
                f"target_weights sum to {total:.6g}, above 1 (the remainder is the cash target)",
                field="target_weights",
            )
        universe = self.symbols
        if not universe:
            raise InvalidPortfolioError("empty portfolio: no holdings and no targets", field="holdings")
        known = set(universe)
        for field in (
            "transaction_cost_rates",
            "lot_sizes",
            "max_position_weights",
            "min_position_weights",
            "no_buy",
            "no_sell",
            "no_trade",
        ):
            for symbol in getattr(self, field):
                if symbol not in known:
                    raise InvalidPortfolioError(
                        f"{field}: unknown symbol {symbol} (neither held nor targeted)",
                        field=field,
                        symbol=symbol,
                    )
        for symbol, rate in self.transaction_cost_rates.items():
            if not 0 <= rate < 1:
                raise InvalidPortfolioError(
                    f"transaction_cost_rates: {symbol} has rate {rate}, outside [0, 1)",
                    field="transaction_cost_rates",
                    symbol=symbol,
                )
        for symbol, lot in self.lot_sizes.items():
            if lot <= 0:
                raise InvalidPortfolioError(
                    f"lot_sizes: {symbol} has lot size {lot}; it must be positive",
                    field="lot_sizes",
                    symbol=symbol,
                )
        for field in ("max_position_weights", "min_position_weights"):
            for symbol, weight in getattr(self, field).items():
                if not 0 <= weight <= 1:
                    raise InvalidPortfolioError(
                        f"{field}: {symbol} has {weight}, outside [0, 1]",
                        field=field,
                        symbol=symbol,
                    )
        for symbol, low in self.min_position_weights.items():
            high = self.position_cap(symbol)
            if high is not None and low > high + _WEIGHT_SLACK:
                raise InvalidPortfolioError(
                    f"min_position_weights: {symbol} floor {low} is above its cap {high}",
                    field="min_position_weights",
                    symbol=symbol,
                )
        for sector, cap in self.sector_caps.items():
            _finite(cap, "sector_caps")
            if not 0 < cap <= 1:
                raise InvalidPortfolioError(f"sector_caps: {sector} has cap {cap}, outside (0, 1]", field="sector_caps")
        self._merge_holding_attributes(held)
        if self.sector_constrained and not any(s in self.sectors for s in universe):
            # Unclassified symbols are in no sector and escape every sector cap; a cap with *no*
            # classified symbol at all is a forgotten ``sectors=``, not a rule to apply to nothing.
            require_data(universe, self.sectors, "sectors", "sector caps are set but no sector is given")
        if self.esg_constrained:
            require_data(universe, self.esg_scores, "esg_scores", "an ESG limit is set but no score is given")
        if self.cash + self.cash_flow < 0 and not held:
            raise InvalidPortfolioError(
                f"cash_flow: withdrawal of {-self.cash_flow:.2f} exceeds cash {self.cash:.2f} and nothing is held",
                field="cash_flow",
            )
        return self

    def _merge_holding_attributes(self, held: Mapping[str, Holding]) -> None:
        for symbol, holding in held.items():
            if holding.sector is not None and not is_unclassified(holding.sector):
                self.sectors.setdefault(symbol, holding.sector.strip())
            if holding.esg_score is not None:
                self.esg_scores.setdefault(symbol, holding.esg_score)

    @property
    def symbols(self) -> list[str]:
        """The universe: held symbols in order, then targeted symbols not held, in order."""
        seen = [h.symbol for h in self.holdings]
        have = set(seen)
        return seen + [s for s in self.target_weights if s not in have]

    @property
    def cash_target(self) -> float:
        """Target weight of cash: 1 minus the sum of the target weights."""
        return max(0.0, 1.0 - sum(self.target_weights.values()))

    @property
    def sector_constrained(self) -> bool:
        """True when any sector cap applies (a field or a custom constraint)."""
        from_constraints = any(getattr(c, "needs_sectors", False) for c in self.custom_constraints)
        return bool(self.max_sector_weight is not None or self.sector_caps or from_constraints)

    @property
    def esg_constrained(self) -> bool:
        """True when an ESG screen or floor applies (a field or a custom constraint)."""
        from_constraints = any(getattr(c, "needs_esg", False) for c in self.custom_constraints)
        return bool(self.min_esg_score is not None or self.min_average_esg_score is not None or from_constraints)

    def band_width(self, target_weight: float) -> float:
        """Half-width of an asset's tolerance band: ``tolerance``, or with ``relative_tolerance``
        the tighter of ``tolerance`` and ``relative_tolerance x target_weight`` (the "5/25" rule)."""
        if self.relative_tolerance is None:
            return self.tolerance
        return min(self.tolerance, self.relative_tolerance * target_weight)

    def position_cap(self, symbol: str) -> float | None:
        """The max weight of ``symbol``: its own cap, else ``max_position_weight``, else None."""
        return self.max_position_weights.get(symbol, self.max_position_weight)

    def shares_by_symbol(self) -> dict[str, float]:
        """Shares held per symbol (0 for targeted symbols not held)."""
        out = dict.fromkeys(self.symbols, 0.0)
        out.update({h.symbol: h.shares for h in self.holdings})
        return out


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

    @property
    def signed_shares(self) -> float:
        """Shares with sign: positive for a buy, negative for a sell."""
        return -self.shares if self.action is TradeAction.SELL else self.shares


class OptimizedTrades(_Model):
    """What a strategy returns: the trades and their summary (the original guide's shape)."""

    trades: list[TradeRecommendation]
    total_cost: float
    capital_used: float
    constraints_violated: list[str] = Field(default_factory=list)
    optimization_score: float = 0.0
    method_used: str


class ComplianceCheck(_Model):
    """One hard constraint checked on the final trades: ``value`` against ``limit``."""

    constraint: str
    term: str
    kind: Literal["<=", ">=", "=="]
    limit: float
    value: float
    slack: float = Field(description="how far inside the limit (negative when breached)")
    satisfied: bool


class ConstraintOutcome(_Model):
    """What one custom constraint's ``validate(trades, current_portfolio, market_data)`` said of
    the final trades: ``ok`` and its ``messages`` (also in the result's warnings, prefixed by
    ``name``). A structured field, so nothing has to parse warning strings."""

    name: str
    ok: bool
    messages: list[str] = Field(default_factory=list)


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
    objective_value: float | None = None
    tracking_distance_before: float = 0.0
    tracking_distance_after: float = 0.0
    solve_time_seconds: float = 0.0
    iterations: int = 0
    warnings: list[str] = Field(default_factory=list)
    analysis: PortfolioAnalysis | None = None
    portfolio_id: str | None = None
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
        return (_unpickle_result, (state, symbols, packed, frozenset(self.model_fields_set)))

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
        import pandas as pd

        symbols = list(self.current_holdings)
        by_symbol = {t.symbol: t for t in self.trades}
        signed = [by_symbol[s].signed_shares if s in by_symbol else 0.0 for s in symbols]
        frame = pd.DataFrame(
            {
                "action": [by_symbol[s].action.value if s in by_symbol else TradeAction.HOLD.value for s in symbols],
                "shares_before": [self.current_holdings[s] for s in symbols],
                "trade_shares": signed,
                "shares_after": [self.post_trade_holdings[s] for s in symbols],
                "price": [self.prices[s] for s in symbols],
                "trade_value": [by_symbol[s].trade_value if s in by_symbol else 0.0 for s in symbols],
                "cost": [by_symbol[s].total_estimated_cost if s in by_symbol else 0.0 for s in symbols],
                "weight_before": [self.current_weights[s] for s in symbols],
                "target_weight": [self.target_weights.get(s, 0.0) for s in symbols],
                "weight_after": [self.post_trade_weights[s] for s in symbols],
            },
            index=pd.Index(symbols, name="symbol"),
        )
        cash_row = pd.DataFrame(
            {
                "action": [TradeAction.HOLD.value],
                "shares_before": [float("nan")],
                "trade_shares": [float("nan")],
                "shares_after": [float("nan")],
                "price": [1.0],
                "trade_value": [0.0],
                "cost": [0.0],
                "weight_before": [self.current_weights.get(CASH, 0.0)],
                "target_weight": [self.target_cash_weight],
                "weight_after": [self.cash_weight_after],
            },
            index=pd.Index([CASH], name="symbol"),
        )
        return pd.concat([frame, cash_row])

    def _repr_html_(self) -> str:
        from finwiz.reporting import result_summary_html

        return result_summary_html(self)

    def plot(self) -> Figure:
        """A matplotlib figure of current, target and post-trade weights."""
        from finwiz.reporting import weights_figure

        return weights_figure(self)


_PER_SYMBOL = ("current_holdings", "post_trade_holdings", "prices", "target_weights", "post_trade_weights")


def _unpickle_result(
    state: dict[str, Any], symbols: tuple[str, ...], packed: dict[str, array[float]], fields_set: frozenset[str]
) -> RebalancingResult:
    """Rebuild a :class:`RebalancingResult` pickled by its ``__reduce__``."""
    for name, values in packed.items():
        state[name] = dict(zip(symbols, values.tolist(), strict=True))
    state["trades"] = _unpack_models(*state["trades"])
    state["compliance"] = _unpack_models(*state["compliance"])
    ordered = {name: state[name] for name in RebalancingResult.model_fields}
    return RebalancingResult._from_state(ordered, set(fields_set))


def _unpickle_configuration(state: dict[str, Any], fields_set: frozenset[str]) -> PortfolioConfiguration:
    """Rebuild a :class:`PortfolioConfiguration` pickled by its ``__reduce__``."""
    state["holdings"] = _unpack_models(*state["holdings"])
    return PortfolioConfiguration._from_state(state, set(fields_set))


def _pack_models(models: list[Any]) -> tuple[Any, ...]:
    """A list of models of one class as rows of field values (fields sets stored once each)."""
    if not models or any(type(m) is not type(models[0]) for m in models):
        return (None, models)
    kinds: dict[frozenset[str], int] = {}
    which = [kinds.setdefault(frozenset(m.__pydantic_fields_set__), len(kinds)) for m in models]
    names = tuple(models[0].__dict__)
    rows = [tuple(m.__dict__.values()) for m in models]
    return (type(models[0]), names, rows, which, list(kinds))


def _unpack_models(cls: Any, *packed: Any) -> list[Any]:
    if cls is None:
        return list(packed[0])
    names, rows, which, kinds = packed
    every = frozenset(cls.model_fields)
    # A full fields set can be shared: pydantic only ever adds field names to it, all present.
    shared = [set(k) if k == every else None for k in kinds]
    out = []
    for row, w in zip(rows, which, strict=True):
        fields_set = shared[w]
        out.append(cls._from_state(dict(zip(names, row, strict=True)), fields_set or set(kinds[w])))
    return out
