"""What users pass in: :class:`PriceData` and :class:`PortfolioConfiguration` (its holdings: ``_holding``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, field_validator, model_validator

from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError
from finwiz.schemas._base import (
    _WEIGHT_SLACK,
    Symbol,
    _finite,
    _Model,
    _optional_number,
    is_unclassified,
    require_data,
)
from finwiz.schemas._blended import sleeves_from_targets
from finwiz.schemas._exposures import check_exposures, coerce_exposure_field
from finwiz.schemas._holding import Holding
from finwiz.schemas._pickling import _pack_models, _unpickle_configuration
from finwiz.schemas._target_policy import _TargetPolicy
from finwiz.schemas._tax import TaxSettings

if TYPE_CHECKING:
    import pandas as pd

REBALANCING_MODES = ("full", "buy_only", "sell_only", "band_edge")
"""How a rebalance may trade (``PortfolioConfiguration.mode``): ``full`` buys and sells to the
target; ``buy_only`` invests cash (a deposit) without selling; ``sell_only`` raises cash (a
withdrawal) without buying; ``band_edge`` trades an asset outside its tolerance band back to the
band's nearest edge, not to its target."""

__all__ = ["PortfolioConfiguration", "PriceData"]


def currency_code(value: object, field: str = "currency") -> str:
    """``value`` as an ISO 4217 code: three letters, upper case (``"eur"`` -> ``"EUR"``)."""
    code = value.strip().upper() if isinstance(value, str) else None
    if code is None or len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidPortfolioError(
            f"{field}: {value!r} is not an ISO 4217 currency code such as USD or EUR", field=field
        )
    return code


class PriceData(_Model):
    """One price observation: ``price`` of ``symbol`` at ``timestamp`` (finite, positive).

    ``currency`` is the ISO code of the price when the source knows it (the bundled sample: USD),
    ``None`` when it does not (a CSV of numbers): then it is taken to be the portfolio's. A known
    currency other than the portfolio's is refused, naming the symbol."""

    symbol: Symbol
    price: float = Field(gt=0.0)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    currency: str | None = None
    source: str | None = None
    volume: float | None = Field(default=None, ge=0.0)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> str | None:
        return None if value is None else currency_code(value)

    _numbers = field_validator("price", "volume", mode="before")(_optional_number)

    @field_validator("price")
    @classmethod
    def _finite_price(cls, value: float) -> float:
        return _finite(value, "price")


class PortfolioConfiguration(_TargetPolicy):
    """What an account holds, where it should be, and the limits the trades must keep.

    ``target_weights`` are fractions of total portfolio value (holdings plus cash) and sum to at
    most 1; the remainder is the cash target. A held symbol without a target has target 0 (it is
    sold down unless a constraint keeps it). Weights, caps and bands are fractions of value;
    ``min_trade_size`` and ``cash_flow`` are in currency (a positive cash flow is a deposit to
    invest, a negative one a withdrawal to raise).

    Tolerance band: an asset is left alone while ``|weight - target| <= band_width(target)``,
    which is ``tolerance`` (absolute), or with ``relative_tolerance`` the tighter of
    ``tolerance`` and ``relative_tolerance x target`` -- the "5/25" rule is ``tolerance=0.05,
    relative_tolerance=0.25``; ``tolerance=1`` leaves a purely relative band; a band of width
    zero (``tolerance=0``) holds nothing, not even an asset exactly on target. Limits: the more
    specific setting wins (``max_position_weights[s]`` over ``max_position_weight``,
    ``sector_caps[x]`` over ``max_sector_weight``, tighter or looser). Sectors: an unclassified
    symbol (no entry in ``sectors``, or a label in :data:`UNCLASSIFIED_SECTORS`) is in no sector
    and no sector cap applies to it. Numbers must be numbers: text, booleans and non-finite
    values are refused.

    Turnover: ``max_turnover`` caps ``sum |trade value| / V``, buys and sells alike, so the
    purchases that invest a deposit (the sales that raise a withdrawal) count against it too; with
    ``turnover_excludes_cash_flow=True`` the cap counts only the trades beyond the cash flow,
    ``(sum |trade value| - |cash_flow|) / V`` (default False: every trade counts).

    Long/short: with ``allow_short=True`` targets and held shares may be negative (short), and
    ``max_gross_exposure`` caps the sum of |post-trade weights| (e.g. 1.3 for a 130/30 book). Each
    asset stays on the side of its target (a zero target: the side of its holding), position caps
    cap |weight| and sector caps the net sector weight; short proceeds are cash (no borrow cost).

    Modes (``mode``, see :data:`REBALANCING_MODES`): ``"full"`` (default) buys and sells toward the
    target; ``"buy_only"`` sells nothing (invest cash or a deposit); ``"sell_only"`` buys nothing
    (raise cash or a withdrawal); ``"band_edge"`` trades an asset outside its tolerance band only
    back to the band's nearest edge (its tracked target becomes that edge; assets inside their band
    stay untraded as always). A mode the other limits cannot meet (a withdrawal in ``buy_only``) is
    refused as infeasible, naming the mode.

    Funds: ``exposures`` (symbol -> exposure -> fraction, or a DataFrame) with ``exposure_caps`` /
    ``exposure_floors`` on the post-trade look-through weights; ``target_weights`` may be a blended
    :class:`~finwiz.Model` (flattened, its sleeves kept in ``sleeves``). See the README.
    Benefit threshold (``min_benefit``, default None: off): the whole-share answer keeps a trade
    only if undoing it would raise the objective by more than ``min_benefit`` x (its cost + its
    tax, if a gain) / value, or a limit needs it (see the README's "Benefit threshold").
    """

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the holdings as rows, not one pydantic object each: a batch sends every account's
        configuration to a worker, and per-object pickling dominated the parent's time (the
        worker's copy is the same, validated object; figures: docs/decisions/layout.md)."""
        state = dict(self.__dict__)
        state["holdings"] = _pack_models(state["holdings"])
        return (_unpickle_configuration, (type(self), state, frozenset(self.model_fields_set)))

    holdings: list[Holding]
    cash: float = Field(default=0.0, ge=0.0)
    allow_short: bool = False
    max_gross_exposure: float | None = Field(default=None, gt=0.0)
    cash_flow: float = 0.0
    turnover_excludes_cash_flow: bool = False
    custom_constraints: list[Any] = Field(default_factory=list)
    tax: TaxSettings | None = None
    currency: str = "USD"
    mode: str = "full"
    exposures: dict[str, dict[str, float]] = Field(default_factory=dict)
    exposure_caps: dict[str, float] = Field(default_factory=dict)
    exposure_floors: dict[str, float] = Field(default_factory=dict)
    sleeves: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _model_targets(cls, data: Any) -> Any:
        # A blended Model as targets: its flattened weights, its sleeves kept (schemas/_blended).
        return sleeves_from_targets(data)

    @field_validator("exposures", "exposure_caps", "exposure_floors", mode="before")
    @classmethod
    def _exposure_fields(cls, value: Any, info: Any) -> Any:
        return coerce_exposure_field(value, info.field_name)  # schemas/_exposures

    min_benefit: float | None = Field(default=None, ge=0.0)
    min_position_value: float | None = Field(default=None, gt=0.0)
    """Currency: every post-trade position is zero or worth at least this (in absolute value).
    Not convex: the continuous stage ignores it, the whole-share stage holds it (``None``: no minimum)."""

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> str:
        return currency_code(value)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> str:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in REBALANCING_MODES:
            raise InvalidPortfolioError(
                f"mode must be one of {', '.join(REBALANCING_MODES)}, not {value!r}", field="mode"
            )
        return str(text)

    _own_scalar_numbers = field_validator(
        "cash", "cash_flow", "max_gross_exposure", "min_benefit", "min_position_value", mode="before"
    )(_optional_number)

    @field_validator("cash", "cash_flow")
    @classmethod
    def _own_finite_scalars(cls, value: float, info: Any) -> float:
        return _finite(value, info.field_name)

    @model_validator(mode="after")
    def _check(self) -> Self:
        held = self._held()
        self._check_target_signs()
        self._check_gross_exposure()
        self._check_tax(held)
        total = sum(self.target_weights.values())
        if total > 1 + _WEIGHT_SLACK:
            raise InvalidPortfolioError(
                f"target_weights sum to {total:.6g}, above 1 (the remainder is the cash target)",
                field="target_weights",
            )
        universe = self.symbols
        if not universe:
            raise InvalidPortfolioError("empty portfolio: no holdings and no targets", field="holdings")
        self._check_known_symbols(set(universe))
        self._check_symbol_values()
        self._merge_holding_attributes(held)
        check_exposures(universe, self.exposures, self.exposure_caps, self.exposure_floors)
        self._check_required_data(universe)
        if self.cash + self.cash_flow < 0 and not held:
            raise InvalidPortfolioError(
                f"cash_flow: withdrawal of {-self.cash_flow:.2f} exceeds cash {self.cash:.2f} and nothing is held",
                field="cash_flow",
            )
        return self

    def _held(self) -> dict[str, Holding]:
        """The holdings by symbol: each symbol once, short only with ``allow_short``."""
        held: dict[str, Holding] = {}
        for holding in self.holdings:
            if holding.symbol in held:
                raise InvalidPortfolioError(
                    f"holdings: symbol {holding.symbol} is listed twice",
                    field="holdings",
                    symbol=holding.symbol,
                )
            held[holding.symbol] = holding
            if holding.shares < 0 and not self.allow_short:
                raise InvalidPortfolioError(
                    f"holdings: {holding.symbol} has negative shares {holding.shares:g} "
                    f"(a short position: set allow_short=True)",
                    field="shares",
                    symbol=holding.symbol,
                )
        return held

    def _check_target_signs(self) -> None:
        for symbol, weight in self.target_weights.items():
            if weight < 0 and not self.allow_short:
                raise InvalidPortfolioError(
                    f"target_weights: {symbol} has negative target {weight} (a short target: set allow_short=True)",
                    field="target_weights",
                    symbol=symbol,
                )

    def _check_known_symbols(self, known: set[str]) -> None:
        """Every per-symbol setting names a symbol of the universe."""
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

    def _check_symbol_values(self) -> None:
        """Per-symbol (and per-sector) rates, lot sizes, weights and caps in their ranges."""
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
            if low > 0 and self.target_weights.get(symbol, 0.0) < 0:
                raise InvalidPortfolioError(
                    f"min_position_weights: {symbol} has a short target; a floor is a minimum long position",
                    field="min_position_weights",
                    symbol=symbol,
                )
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

    def _check_required_data(self, universe: list[str]) -> None:
        """Sector and ESG limits come with the sectors and scores they read."""
        if self.sector_constrained and not any(s in self.sectors for s in universe):
            # Unclassified symbols are in no sector and escape every sector cap; a cap with *no*
            # classified symbol at all is a forgotten ``sectors=``, not a rule to apply to nothing.
            require_data(universe, self.sectors, "sectors", "sector caps are set but no sector is given")
        if self.esg_constrained:
            require_data(universe, self.esg_scores, "esg_scores", "an ESG limit is set but no score is given")

    def _check_gross_exposure(self) -> None:
        """``max_gross_exposure`` (sum of |post-trade weights|): finite; without shorting every
        weight is >= 0 and cash >= 0, so gross exposure is the invested fraction, at most 1 -- a
        limit of 1 or more cannot bind (accepted, no row), one below 1 would be a cash floor in
        disguise (refused: ``min_cash_weight`` says it)."""
        limit = self.max_gross_exposure
        if limit is None:
            return
        _finite(limit, "max_gross_exposure")
        if not self.allow_short and limit < 1:
            raise InvalidPortfolioError(
                f"max_gross_exposure {limit:g} below 1 without allow_short caps the invested fraction: "
                f"use min_cash_weight={1 - limit:g}, or set allow_short=True",
                field="max_gross_exposure",
            )

    def _check_tax(self, held: Mapping[str, Holding]) -> None:
        """With tax settings: long-only, the lots of every position, acquired by ``as_of``, and
        recent trades that name lots name held ones."""
        tax = self.tax
        if tax is None:
            return
        if self.allow_short:
            raise InvalidPortfolioError(
                "tax: tax-aware rebalancing is long-only (allow_short=True is set)", field="tax"
            )
        ids: dict[str, set[str]] = {}
        owner: dict[str, str] = {}  # lot id -> symbol: a result names a lot by its id alone
        for symbol, holding in held.items():
            if holding.shares > 0 and not holding.lots:
                raise InvalidPortfolioError(
                    f"tax: {symbol} has no lots (tax-aware rebalancing needs the lots of every position)",
                    field="lots",
                    symbol=symbol,
                )
            for lot in holding.lots:
                if lot.acquired > tax.as_of:
                    raise InvalidPortfolioError(
                        f"tax: lot {lot.lot_id} of {symbol} was acquired on {lot.acquired}, after as_of {tax.as_of}",
                        field="acquired",
                        symbol=symbol,
                    )
                if lot.lot_id is not None and owner.setdefault(lot.lot_id, symbol) != symbol:
                    raise InvalidPortfolioError(
                        f"tax: lot id {lot.lot_id} is used by both {owner[lot.lot_id]} and {symbol}",
                        field="lots",
                        symbol=symbol,
                    )
            ids[symbol] = {lot.lot_id for lot in holding.lots if lot.lot_id is not None}
        for kind in ("recent_sales", "recent_purchases"):
            for trade in getattr(tax, kind):
                if trade.lot_id is not None and trade.lot_id not in ids.get(trade.symbol, set()):
                    raise InvalidPortfolioError(
                        f"tax.{kind}: unknown lot {trade.lot_id} of {trade.symbol} (no held lot has that id)",
                        field=kind,
                        symbol=trade.symbol,
                    )

    @property
    def gross_exposure_limit(self) -> float | None:
        """The gross-exposure limit that applies (None: none, or one that cannot bind without
        shorting)."""
        return self.max_gross_exposure if self.allow_short else None

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

    def band_width(self, target_weight: Any) -> Any:
        """Half-width of an asset's tolerance band (``target_weight`` a number or an array):
        ``tolerance``, or with ``relative_tolerance`` the tighter of ``tolerance`` and
        ``relative_tolerance x target_weight`` (the "5/25" rule: 5 points or 25 % of the target,
        whichever is less; each limb alone fails somewhere: 5 points never trips on a 0.2 % target,
        25 % of a 60 % target lets it drift 15 points; a zero target has a zero band)."""
        if self.relative_tolerance is None:
            return self.tolerance
        import numpy as np

        # |target|: a short target's band is as wide as a long one's.
        return np.minimum(self.tolerance, self.relative_tolerance * np.abs(np.asarray(target_weight, dtype=float)))

    def position_cap(self, symbol: str) -> float | None:
        """The max weight of ``symbol``: its own cap, else ``max_position_weight``, else None."""
        return self.max_position_weights.get(symbol, self.max_position_weight)

    def shares_by_symbol(self) -> dict[str, float]:
        """Shares held per symbol (0 for targeted symbols not held)."""
        out = dict.fromkeys(self.symbols, 0.0)
        out.update({h.symbol: h.shares for h in self.holdings})
        return out


def other_currencies(quotes: Mapping[str, object] | pd.Series, currency: str) -> dict[str, str]:
    """The quotes (objects with a ``currency``, e.g. :class:`PriceData`) in another currency than
    ``currency`` (the portfolio's), each symbol with why: ``"priced in USD, the portfolio is in
    EUR"``. Numbers and quotes of unknown currency (None) are taken to be in the portfolio's."""
    return {
        str(symbol).strip().upper(): f"priced in {quoted}, the portfolio is in {currency}"
        for symbol, quote in quotes.items()
        if (quoted := getattr(quote, "currency", None)) is not None and quoted != currency
    }


def refuse_other_currencies(
    quotes: Mapping[str, object] | pd.Series, currency: str, provider: str | None = None
) -> None:
    """Refuse quotes in another currency than ``currency`` (the portfolio's): an
    :class:`~finwiz.errors.InsufficientPriceDataError` naming each such symbol and its currency
    (``provider``: the source to name). Plain numbers (a numeric Series too) and quotes of unknown
    currency pass: they are taken to be in the portfolio's."""
    dtype = getattr(quotes, "dtype", None)
    if dtype is not None and dtype.kind in "biufc":  # a numeric Series: numbers only
        return
    foreign = other_currencies(quotes, currency)
    if foreign:
        raise InsufficientPriceDataError(foreign, provider=provider)
