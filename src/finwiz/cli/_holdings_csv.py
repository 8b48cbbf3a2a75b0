"""Holdings and targets as CSV files, what custodians export.

A holdings CSV has one row per position and the columns (any order, any case):

* ``symbol`` and ``shares`` (required; ``shares`` a plain number such as ``120`` or ``12.5``);
* ``target_weight`` (optional: the position's target, a fraction of total value, ``0.05`` for
  5 %; an empty cell is a target of 0);
* ``sector`` (optional: an empty cell is no sector).

Targets come from the ``target_weight`` column or from a separate targets CSV (``--targets``,
columns ``symbol,target_weight``), not both; a symbol may have a target without a holding (it is
bought) and a holding without a target (its target is 0). Cash is not a row: the command line's
``--cash`` gives it (default 0). Any other column, a symbol listed twice, an empty or non-numeric
cell is refused with an :class:`~finwiz.errors.InvalidPortfolioError` naming the file, the row
(its line, the header being line 1) and the column. Limits, bands and methods need a TOML or YAML
portfolio file.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import canonical_symbol

__all__ = ["HOLDINGS_COLUMNS", "TARGETS_COLUMNS", "add_holdings_options", "read_holdings_csv", "read_targets_csv"]

HOLDINGS_COLUMNS = ("symbol", "shares", "target_weight", "sector")
"""The columns a holdings CSV may have; ``symbol`` and ``shares`` are required."""
TARGETS_COLUMNS = ("symbol", "target_weight")
"""The columns of a targets CSV (``--targets``)."""


def csv_rows(
    path: Path, text: str, what: str, known: tuple[str, ...], required: tuple[str, ...], field: str = "file"
) -> Iterator[tuple[int, dict[str, str]]]:
    """The non-blank rows of CSV ``text`` (read from ``path``) as (line, {column: cell}), one at a
    time, after checking its header: every column ``required``, none outside ``known``, none
    twice. ``field`` names the input in the errors of a malformed row."""
    reader = csv.reader(text.splitlines(keepends=True))
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidPortfolioError(
            f"{path}, row 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(a {what} has the columns {', '.join(known)}; {' and '.join(required)} required)",
            field=missing[0],
        )
    for position, name in enumerate(header, start=1):
        if name not in known:
            raise InvalidPortfolioError(
                f"{path}, row 1, column {position}: unknown column {name!r} (a {what} has {', '.join(known)})",
                field=name or field,
            )
        if header.index(name) != position - 1:
            raise InvalidPortfolioError(f"{path}, row 1: column {name!r} appears twice", field=name)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvalidPortfolioError(
                f"{path}, row {reader.line_num}: {len(row)} cells for {len(header)} columns ({','.join(header)})",
                field=field,
            )
        yield reader.line_num, {name: cell.strip() for name, cell in zip(header, row, strict=True)}


def _symbol(cells: dict[str, str], where: str, seen: dict[str, int]) -> str:
    try:
        symbol = canonical_symbol(cells["symbol"])
    except InvalidPortfolioError as exc:
        raise InvalidPortfolioError(f"{where}, column symbol: {exc}", field="symbol") from exc
    if symbol in seen:
        raise InvalidPortfolioError(
            f"{where}: {symbol} is listed twice (also row {seen[symbol]})", field="symbol", symbol=symbol
        )
    return symbol


def _number(cells: dict[str, str], column: str, where: str, symbol: str, *, empty: float | None) -> float:
    text = cells[column]
    if not text:
        if empty is None:
            raise InvalidPortfolioError(f"{where}, column {column}: empty ({symbol})", field=column, symbol=symbol)
        return empty
    try:
        return float(text)
    except ValueError:
        raise InvalidPortfolioError(
            f"{where}, column {column}: {text!r} is not a number ({symbol})", field=column, symbol=symbol
        ) from None


def read_holdings_csv(path: str | Path, text: str) -> dict[str, Any]:
    """The ``PortfolioConfiguration`` fields holdings CSV ``text`` (read from ``path``) gives:
    ``holdings`` and, from its optional columns, ``target_weights`` and ``sectors`` (see the
    module docstring)."""
    file = Path(path)
    holdings: list[dict[str, Any]] = []
    targets: dict[str, float] = {}
    sectors: dict[str, str] = {}
    seen: dict[str, int] = {}
    rows = list(csv_rows(file, text, "holdings CSV", HOLDINGS_COLUMNS, ("symbol", "shares")))
    has_targets = False
    for line, cells in rows:
        where = f"{file}, row {line}"
        symbol = _symbol(cells, where, seen)
        seen[symbol] = line
        holdings.append({"symbol": symbol, "shares": _number(cells, "shares", where, symbol, empty=None)})
        if "target_weight" in cells:
            has_targets = True
            targets[symbol] = _number(cells, "target_weight", where, symbol, empty=0.0)
        if cells.get("sector"):
            sectors[symbol] = cells["sector"]
    if not holdings:
        raise InvalidPortfolioError(f"{file}: the holdings CSV has no rows", field="holdings")
    fields: dict[str, Any] = {"holdings": holdings, "sectors": sectors}
    if has_targets:
        fields["target_weights"] = targets
    return fields


def read_targets_csv(path: str | Path, text: str) -> dict[str, float]:
    """Target weights from ``symbol,target_weight`` CSV ``text`` (read from ``path``)."""
    file = Path(path)
    targets: dict[str, float] = {}
    seen: dict[str, int] = {}
    for line, cells in csv_rows(file, text, "targets CSV", TARGETS_COLUMNS, TARGETS_COLUMNS):
        where = f"{file}, row {line}"
        symbol = _symbol(cells, where, seen)
        seen[symbol] = line
        targets[symbol] = _number(cells, "target_weight", where, symbol, empty=None)
    if not targets:
        raise InvalidPortfolioError(f"{file}: the targets CSV has no rows", field="target_weights")
    return targets


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite amount >= 0")
    return value


def add_holdings_options(parser: argparse.ArgumentParser) -> None:
    """``--targets`` and ``--cash``, which complete a holdings CSV (or override a file's)."""
    parser.add_argument(
        "--targets",
        metavar="PATH",
        help="target weights CSV (symbol,target_weight); replaces the file's targets",
    )
    parser.add_argument(
        "--cash", type=_amount, metavar="AMOUNT", help="cash held (replaces the file's; a holdings CSV: default 0)"
    )
