"""Validation machinery shared by every model: the base model that turns pydantic errors into
:class:`~finwiz.errors.InvalidPortfolioError`, number and symbol checks, constants and enums."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from itertools import repeat
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from finwiz.errors import InvalidPortfolioError

__all__ = [
    "CASH",
    "DEFAULT_MIN_TRADE_SIZE",
    "DEFAULT_TOLERANCE",
    "DEFAULT_TRANSACTION_COST_RATE",
    "UNCLASSIFIED_SECTORS",
    "RebalancingMethod",
    "TradeAction",
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


Symbol = Annotated[str, BeforeValidator(canonical_symbol)]
"""A ticker field, canonicalised by :func:`canonical_symbol` before validation."""


def require_data(symbols: Iterable[str], data: Mapping[str, Any], field: str, why: str) -> None:
    """Refuse when any of ``symbols`` has no entry in ``data`` (naming them all)."""
    missing = [s for s in symbols if s not in data]
    if missing:
        raise InvalidPortfolioError(f"{field}: {why} for {', '.join(missing)}", field=field, symbol=missing[0])


def _describe(exc: ValidationError, model: str) -> tuple[str, str | None]:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"]) or model
    return f"{model}: invalid {loc}: {first['msg']}", loc


# BaseModel's slots set through their own descriptors: object creation is the floor of the verify stage.
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_EVERY_FIELD: dict[type[BaseModel], set[str]] = {}
_drain: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend  # runs an iterator to its end, keeping nothing


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
        type, no validation. ``model_construct`` without its per-field loop (a 100-asset account
        makes ~210 such objects). Tests hold it equal to validation."""
        every = cls._every_field()
        obj = _new(cls)
        _set_dict(obj, values)
        _set_fields_set(obj, every if len(values) == len(every) else set(values))
        _set_extra(obj, None)
        _set_private(obj, None)
        return obj

    @classmethod
    def _every_field(cls) -> set[str]:
        """One set of every field name per class, shared by the instances built with every field:
        pydantic only ever adds field names to a fields set, and all are already in this one."""
        every = _EVERY_FIELD.get(cls)
        if every is None:
            every = _EVERY_FIELD[cls] = set(cls.model_fields)
        return every

    @classmethod
    def _from_states(
        cls, states: Iterable[dict[str, Any]], fields_sets: Iterable[set[str]] | None = None
    ) -> list[Self]:
        """One instance per dict of every field's value, with no Python code run per object;
        ``fields_sets`` one per state, by default one shared set of every field (as :meth:`trusted`)."""
        values = states if isinstance(states, list) else list(states)
        if fields_sets is None:
            sets: Iterable[set[str]] = repeat(cls._every_field(), len(values))
        else:
            sets = list(fields_sets)
            values = values[: len(sets)]  # as zip would stop
        n = len(values)
        # map over the slots' setters: each step a C call, no bytecode per object
        out = list(map(_new, repeat(cls, n)))
        _drain(map(_set_dict, out, values))
        _drain(map(_set_fields_set, out, sets))
        _drain(map(_set_extra, out, repeat(None, n)))
        _drain(map(_set_private, out, repeat(None, n)))
        return out

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


def _optional_number(value: Any, info: Any) -> Any:
    """A ``mode="before"`` field validator: the field's value as :func:`_number` checks it, None kept."""
    return value if value is None else _number(value, info.field_name)


def _number(value: Any, field: str, symbol: str | None = None, *, key: str | None = None) -> Any:
    """Refuse what pydantic would quietly turn into a number: ``True`` (1 share), text such as
    ``"110.3"``, and non-finite floats (named as such, before any ``>= 0`` bound speaks)."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value  # the usual case first
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
            if type(value) is int or (type(value) is float and math.isfinite(value)):
                continue  # the usual case, without naming the key
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
