"""Look-through exposures as a CSV file (``finwiz rebalance ... --exposures PATH``): one row per
symbol and exposure, the columns ``symbol,exposure,weight`` (any order, any case), ``weight`` the
fraction of the symbol's value in that exposure (``0.07`` for 7 %). A fund's breakdown is several
rows; a stock is one row of weight 1 per classification (``issuer:Apple``, ``sector:...``).

The table replaces the portfolio file's ``exposures``; the limits stay in the portfolio file
(``[exposure_caps]``, ``[exposure_floors]``). A row with an empty or non-numeric cell, or a
symbol and exposure given twice, is refused naming the file and the row; the configuration then
refuses a row above 1 or a symbol neither held nor targeted, naming the symbol.
"""

from __future__ import annotations

from pathlib import Path

from finwiz.cli._holdings_csv import csv_rows
from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import canonical_symbol

__all__ = ["EXPOSURE_COLUMNS", "read_exposures_csv"]

EXPOSURE_COLUMNS = ("symbol", "exposure", "weight")
"""The columns of an exposures CSV, all required."""


def read_exposures_csv(path: str | Path, text: str) -> dict[str, dict[str, float]]:
    """The ``exposures`` table of exposures CSV ``text`` (read from ``path``)."""
    file = Path(path)
    table: dict[str, dict[str, float]] = {}
    for line, cells in csv_rows(file, text, "exposures CSV", EXPOSURE_COLUMNS, EXPOSURE_COLUMNS, "exposures"):
        where = f"{file}, row {line}"
        try:
            symbol = canonical_symbol(cells["symbol"])
        except InvalidPortfolioError as exc:
            raise InvalidPortfolioError(f"{where}, column symbol: {exc}", field="exposures") from exc
        name = cells["exposure"]
        if not name:
            raise InvalidPortfolioError(f"{where}, column exposure: empty ({symbol})", field="exposures", symbol=symbol)
        try:
            weight = float(cells["weight"])
        except ValueError:
            raise InvalidPortfolioError(
                f"{where}, column weight: {cells['weight']!r} is not a number ({symbol})",
                field="exposures",
                symbol=symbol,
            ) from None
        row = table.setdefault(symbol, {})
        if name in row:
            raise InvalidPortfolioError(
                f"{where}: {symbol} has exposure {name!r} twice", field="exposures", symbol=symbol
            )
        row[name] = weight
    if not table:
        raise InvalidPortfolioError(f"{file}: the exposures CSV has no rows", field="exposures")
    return table
