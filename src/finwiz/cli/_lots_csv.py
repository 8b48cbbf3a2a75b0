"""Tax lots from a lots CSV (``symbol,shares,cost_basis,acquired[,lot_id]``) and onto the holdings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from finwiz.cli._holdings_csv import csv_rows
from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import TaxLot, canonical_symbol

__all__ = ["LOT_COLUMNS", "LotsFile", "attach_lots", "read_lots_csv"]

LOT_COLUMNS = ("symbol", "shares", "cost_basis", "acquired")
"""The columns a lots CSV must have; ``lot_id`` may follow (an empty cell: numbered lots)."""
_OPTIONAL_LOT_COLUMNS = ("lot_id",)


@dataclass
class LotsFile:
    """The lots of a lots CSV: per canonical symbol, its lots and the line of each (for errors)."""

    path: Path
    lots: dict[str, list[TaxLot]] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)

    def rows_of(self, symbol: str) -> str:
        """``"rows 2, 5"``: where ``symbol``'s lots are in the file ("" when it has none)."""
        lines = self.lines.get(symbol, [])
        return f"row{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" if lines else ""


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _lot_cell(text: str, column: str) -> Any:
    """A CSV cell as the value :class:`TaxLot` expects: numbers, an ISO date, text."""
    if column in ("shares", "cost_basis"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if column == "acquired":
        try:
            if _ISO_DATE.match(text):
                return date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date: {exc}") from None
        raise ValueError(f"{text!r} is not an ISO date such as 2021-03-01")
    return text


def read_lots_csv(file: Path, text: str, *, max_lots: int | None = None) -> LotsFile:
    """The tax lots in ``text`` (the content of ``file``), one lot a row:
    ``symbol,shares,cost_basis,acquired[,lot_id]``.

    ``acquired`` is an ISO date (``2021-03-01``); ``cost_basis`` is per share. Every bad row is
    refused with an :class:`InvalidPortfolioError` naming the file, the row (its line number, the
    header being line 1) and the column; nothing is returned half-read. With ``max_lots`` (the
    CLI passes ``RebalancingSettings.max_lots``) a file with more lots is refused at the first
    row past it.
    """
    out = LotsFile(file)
    known = (*LOT_COLUMNS, *_OPTIONAL_LOT_COLUMNS)
    rows = csv_rows(file, text, "lots CSV", known, LOT_COLUMNS, field="lots")
    for count, (line, cells) in enumerate(rows, start=1):
        where = f"{file}, row {line}"
        try:
            symbol = canonical_symbol(cells["symbol"])
        except InvalidPortfolioError as exc:
            raise InvalidPortfolioError(f"{where}, column symbol: {exc}", field="symbol") from exc
        values: dict[str, Any] = {}
        for column in LOT_COLUMNS[1:]:
            if not cells[column]:
                raise InvalidPortfolioError(f"{where}, column {column}: empty ({symbol})", field=column, symbol=symbol)
            try:
                values[column] = _lot_cell(cells[column], column)
            except ValueError as exc:
                raise InvalidPortfolioError(
                    f"{where}, column {column}: {exc} ({symbol})", field=column, symbol=symbol
                ) from exc
        if cells.get("lot_id"):
            values["lot_id"] = cells["lot_id"]
        try:
            lot = TaxLot(**values)
        except InvalidPortfolioError as exc:
            column = exc.field if exc.field in cells else "?"
            raise InvalidPortfolioError(
                f"{where}, column {column}: {exc} ({symbol})", field=exc.field, symbol=symbol
            ) from exc
        out.lots.setdefault(symbol, []).append(lot)
        out.lines.setdefault(symbol, []).append(line)
        if max_lots is not None and count > max_lots:
            raise InvalidPortfolioError(
                f"{file}, row {line}: more than max_lots {max_lots:,} lots (REBALANCING_MAX_LOTS raises it)",
                field="lots",
            )
    return out


def _shares_from_lots(entry: dict[str, Any]) -> None:
    """A holding given with lots but no shares holds the sum of its lots."""
    lots = entry.get("lots")
    if "shares" in entry or not isinstance(lots, list) or not lots:
        return
    sizes = [
        lot.shares if isinstance(lot, TaxLot) else lot.get("shares") if isinstance(lot, dict) else None for lot in lots
    ]
    if all(type(size) in (int, float) for size in sizes):  # anything else: validation names it
        entry["shares"] = sum(sizes)


def attach_lots(data: dict[str, Any], lots_file: LotsFile | None, where: str) -> None:
    """Fill holdings' shares from their lots, and give each holding its lots from the CSV (new
    holdings for symbols the file does not list)."""
    if lots_file is not None and lots_file.lots and data.get("holdings") is None:
        data["holdings"] = []  # every holding is in the CSV
    holdings = data.get("holdings")
    if not isinstance(holdings, list):
        return  # absent: validation says so
    entries = [entry for entry in holdings if isinstance(entry, dict)]
    if lots_file is not None:
        by_symbol: dict[str, dict[str, Any]] = {}
        for entry in entries:
            raw = entry.get("symbol")
            if isinstance(raw, str) and raw.strip():
                by_symbol.setdefault(raw.strip().upper(), entry)
        for symbol, lots in lots_file.lots.items():
            found = by_symbol.get(symbol)
            if found is None:
                entry = {"symbol": symbol}
                holdings.append(entry)
                entries.append(entry)
            elif found.get("lots"):
                raise InvalidPortfolioError(
                    f"{where}: the lots of {symbol} are given twice, in the file and in {lots_file.path} "
                    f"({lots_file.rows_of(symbol)}); give them in one place",
                    field="lots",
                    symbol=symbol,
                )
            else:
                entry = found
            entry["lots"] = list(lots)
    for entry in entries:
        _shares_from_lots(entry)
