"""Look-through exposures of a :class:`~finwiz.schemas.PortfolioConfiguration`: the table
``exposures`` (symbol -> exposure name -> fraction of the symbol's value: a stock is 1 in its
sector, a fund its breakdown; ``"issuer:Apple"`` names an exposure of classification ``issuer``,
so one table may hold several, each row summing to at most 1 within each) and the limits
``exposure_caps`` / ``exposure_floors`` on the post-trade look-through weights ``E'w``.

:func:`coerce_exposures` reads the table (a pandas DataFrame, symbols as index and exposure names
as columns, or a mapping of mappings) before pydantic sees it; :func:`check_exposures` refuses what
cannot be meant once the universe is known: a row above 1, a symbol neither held nor targeted, a
limit on an exposure no asset has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas._base import _WEIGHT_SLACK, _number, canonical_symbol

__all__ = [
    "check_exposures",
    "coerce_exposure_field",
    "coerce_exposure_limits",
    "coerce_exposures",
    "exposure_matrix",
    "exposures_frame",
]


def _name(raw: object, field: str) -> str:
    text = raw.strip() if isinstance(raw, str) else None
    if not text:
        raise InvalidPortfolioError(f"{field}: exposure name {raw!r} is not a non-empty text", field=field)
    return text


def coerce_exposures(value: Any) -> Any:
    """The table as ``{symbol: {exposure: fraction}}`` (canonical symbols, stripped names, zero and
    missing cells dropped); every cell a finite number in [0, 1]. A DataFrame is read row by row
    (index: symbols, columns: exposure names; NaN is an empty cell)."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        value = {
            symbol: {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for symbol, row in value.to_dict(orient="index").items()
        }
    if not isinstance(value, Mapping):
        raise InvalidPortfolioError(
            "exposures must be a DataFrame (symbols x exposure names) or a mapping symbol -> {exposure: fraction}",
            field="exposures",
        )
    table: dict[str, dict[str, float]] = {}
    for raw_symbol, row in value.items():
        symbol = canonical_symbol(raw_symbol)
        if symbol in table:
            raise InvalidPortfolioError(f"exposures: symbol {symbol} is listed twice", field="exposures", symbol=symbol)
        if not isinstance(row, Mapping):
            raise InvalidPortfolioError(
                f"exposures: the row of {symbol} is not a mapping exposure -> fraction",
                field="exposures",
                symbol=symbol,
            )
        cells: dict[str, float] = {}
        for raw_name, raw_value in row.items():
            name = _name(raw_name, "exposures")
            number = float(_number(raw_value, "exposures", symbol))
            if not math.isfinite(number) or not 0.0 <= number <= 1.0:
                raise InvalidPortfolioError(
                    f"exposures: {symbol} has {number} of {name}, outside [0, 1]", field="exposures", symbol=symbol
                )
            if number > 0:
                cells[name] = cells.get(name, 0.0) + number
        _check_row(symbol, cells)
        table[symbol] = cells
    return table


def _check_row(symbol: str, cells: Mapping[str, float]) -> None:
    """A row sums to at most 1 within each classification (``"issuer:Apple"`` is in ``issuer``; a
    name without ``:`` in the default one), so a table may hold sectors and issuers side by side."""
    totals: dict[str, float] = {}
    for name, fraction in cells.items():
        dimension = name.split(":", 1)[0] if ":" in name else ""
        totals[dimension] = totals.get(dimension, 0.0) + fraction
    for dimension, total in totals.items():
        if total > 1.0 + _WEIGHT_SLACK:
            within = f" in {dimension!r}" if dimension else ""
            raise InvalidPortfolioError(
                f"exposures: the row of {symbol} sums to {total:.6g}{within}, above 1 (a row is the fraction "
                f"of the symbol's value in each exposure)",
                field="exposures",
                symbol=symbol,
            )


def coerce_exposure_limits(value: Any, field: str) -> Any:
    """``exposure_caps`` / ``exposure_floors``: exposure name -> a finite fraction (caps in (0, 1],
    floors in [0, 1])."""
    if not isinstance(value, Mapping):
        raise InvalidPortfolioError(f"{field} must be a mapping exposure name -> fraction", field=field)
    out: dict[str, float] = {}
    for raw, limit in value.items():
        name = _name(raw, field)
        number = float(_number(limit, field, key=name))
        low_ok = number > 0 if field == "exposure_caps" else number >= 0
        if not math.isfinite(number) or not low_ok or number > 1:
            bounds = "(0, 1]" if field == "exposure_caps" else "[0, 1]"
            raise InvalidPortfolioError(f"{field}: {name} has {number}, outside {bounds}", field=field)
        out[name] = number
    return out


def coerce_exposure_field(value: Any, field: str) -> Any:
    """The configuration's before-validator of ``exposures``, ``exposure_caps`` and ``exposure_floors``."""
    return coerce_exposures(value) if field == "exposures" else coerce_exposure_limits(value, field)


def check_exposures(
    symbols: list[str],
    table: Mapping[str, Mapping[str, float]],
    caps: Mapping[str, float],
    floors: Mapping[str, float],
) -> None:
    """Refuse a table naming a symbol not in ``symbols`` (neither held nor targeted), a limit on an
    exposure no asset of the table has (a misspelt name would otherwise limit nothing), and a floor
    above its cap."""
    known = set(symbols)
    for symbol in table:
        if symbol not in known:
            raise InvalidPortfolioError(
                f"exposures: unknown symbol {symbol} (neither held nor targeted)", field="exposures", symbol=symbol
            )
    present = {name for row in table.values() for name in row}
    for field, limits in (("exposure_caps", caps), ("exposure_floors", floors)):
        for name in limits:
            if name not in present:
                why = "no exposures table is given" if not table else "no asset has that exposure"
                raise InvalidPortfolioError(f"{field}: {name!r}: {why}", field=field)
    for name, floor in floors.items():
        cap = caps.get(name)
        if cap is not None and floor > cap + _WEIGHT_SLACK:
            raise InvalidPortfolioError(
                f"exposure_floors: {name} floor {floor} is above its cap {cap}", field="exposure_floors"
            )


def exposure_matrix(
    table: Mapping[str, Mapping[str, float]], symbols: list[str] | tuple[str, ...], names: list[str] | tuple[str, ...]
) -> list[tuple[int, int, float]]:
    """The nonzero cells of ``E`` (exposure row, symbol column, fraction) for ``names`` x ``symbols``."""
    row_of = {name: r for r, name in enumerate(names)}
    cells = []
    for col, symbol in enumerate(symbols):
        for name, fraction in table.get(symbol, {}).items():
            if name in row_of:
                cells.append((row_of[name], col, fraction))
    return cells


def exposures_frame(
    table: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, Mapping[str, float]],
    limits: Mapping[str, Mapping[str, float]],
) -> Any:
    """Per exposure name (index ``exposure``): the look-through weight ``sum_i E_ik w_i`` of each
    of ``weights`` (column -> symbol -> weight, e.g. before, target, after) and each of ``limits``
    (column -> exposure -> bound, NaN where none)."""
    import pandas as pd

    names = sorted({name for row in table.values() for name in row})
    data: dict[str, list[float]] = {}
    for column, by_symbol in weights.items():
        totals = dict.fromkeys(names, 0.0)
        for symbol, row in table.items():
            w = by_symbol.get(symbol, 0.0)
            for name, fraction in row.items():
                totals[name] += fraction * w
        data[column] = [totals[name] for name in names]
    for column, bounds in limits.items():
        data[column] = [bounds.get(name, math.nan) for name in names]
    return pd.DataFrame(data, index=pd.Index(names, name="exposure"), dtype=float)
