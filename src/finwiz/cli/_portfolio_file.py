"""Reading a :class:`~finwiz.PortfolioConfiguration` from a TOML or YAML file.

Errors are :class:`~finwiz.errors.InvalidPortfolioError` whose message starts with the file
name and names the line (syntax errors) or the key (unknown keys, wrong types) at fault.

The file holds the fields of ``PortfolioConfiguration``; ``holdings`` may be a list of tables
(``[[holdings]]`` with ``symbol`` and ``shares``) or, for short files, a table of symbol to
shares::

    cash = 25000.0
    max_sector_weight = 0.30

    [holdings]
    AAPL = 120
    MSFT = 80

    [target_weights]
    AAPL = 0.45
    MSFT = 0.45

    [sectors]
    AAPL = "Information Technology"
    MSFT = "Information Technology"

Tax lots (for a tax-aware rebalance, see :class:`~finwiz.schemas.TaxSettings`): a ``[tax]`` table
of the settings (dates as TOML/YAML dates or ISO text, ``[[tax.recent_sales]]`` and
``[[tax.recent_purchases]]`` tables), ``[[holdings.lots]]`` tables under a ``[[holdings]]`` entry,
or a top-level ``lots = "lots.csv"`` naming a CSV file (relative to the portfolio file) with the
columns ``symbol,shares,cost_basis,acquired`` and optionally ``lot_id``. A holding with lots may
leave out ``shares``: it holds the sum of its lots; a symbol with lots in the CSV but no entry in
``holdings`` is a holding of those lots. Lots of one symbol come from one place (the file or the
CSV, not both). A bad CSV row is refused naming the CSV file, the row (its line, the header
being line 1) and the column. The portfolio file and the lots CSV must be regular files of at most
:data:`MAX_INPUT_FILE_BYTES` (64 MiB).

YAML is read with booleans ``true``/``false`` only and every mapping key as text, so tickers such
as ``ON``, ``NO``, ``Y`` or ``TRUE`` (YAML 1.1 booleans) stay tickers.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from finwiz.cli._holdings_csv import csv_rows, read_holdings_csv, read_targets_csv
from finwiz.cli._models_file import MODELS_KEY, resolve_models
from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import PortfolioConfiguration, TaxLot, canonical_symbol

__all__ = [
    "LOT_COLUMNS",
    "MAX_INPUT_FILE_BYTES",
    "PORTFOLIO_FILE_SUFFIXES",
    "LotsFile",
    "check_input_file",
    "input_files",
    "load_lots_csv",
    "load_portfolio_file",
    "parse_portfolio_text",
]

PORTFOLIO_FILE_SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}

LOT_COLUMNS = ("symbol", "shares", "cost_basis", "acquired")
"""The columns a lots CSV must have; ``lot_id`` may follow (an empty cell: numbered lots)."""
_OPTIONAL_LOT_COLUMNS = ("lot_id",)
_LOTS_KEY = "lots"  # the top-level key naming a lots CSV (not a PortfolioConfiguration field)

MAX_INPUT_FILE_BYTES = 64 * 2**20
"""The largest portfolio, lots or price file read (64 MiB): a path naming ``/dev/zero``, a FIFO or
a huge file is refused before reading rather than filling memory."""

# Objects, not data: a file cannot express them, and silently dropping them would be worse.
_CODE_ONLY_FIELDS = {"custom_constraints"}


def _key_line(text: str, key: str, fmt: str) -> int | None:
    """1-based line where ``key`` is defined in ``text``, when a plain scan can tell."""
    name = re.escape(key)
    if fmt == "toml":
        pattern = rf"^\s*(?:{name}\s*=|\[\[?\s*{name}\s*\]\]?)"
    else:
        pattern = rf"^\s*(?:-\s*)?['\"]?{name}['\"]?\s*:"
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(pattern, line):
            return number
    return None


def _parse(text: str, fmt: str, where: str) -> Any:
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidPortfolioError(f"{where}: invalid TOML: {exc}", field="file") from exc
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidPortfolioError(f"{where}: invalid YAML{at}: {problem}", field="file") from exc


_YAML_LOADER: Any = None
_BOOL = "tag:yaml.org,2002:bool"


def _yaml_loader() -> Any:
    """A ``SafeLoader`` reading YAML as a portfolio file needs: every mapping key as its text
    (tickers ``ON``, ``TRUE`` or ``7203`` stay tickers) and only ``true``/``false`` as booleans
    (YAML 1.2; YAML 1.1 also reads ``on``, ``off``, ``yes``, ``no`` as booleans)."""
    global _YAML_LOADER
    if _YAML_LOADER is not None:
        return _YAML_LOADER
    import yaml

    class PortfolioLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            self.flatten_mapping(node)  # merge keys (<<) first: they are not text keys
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key_node.tag = "tag:yaml.org,2002:str"
            return super().construct_mapping(node, deep=deep)

    PortfolioLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    PortfolioLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    _YAML_LOADER = PortfolioLoader
    return PortfolioLoader


def _symbols_as_text(data: Any) -> None:
    """A YAML ticker ``TRUE`` or ``false`` read as a boolean, or ``7203`` read as a number, where a
    symbol belongs (a holding's ``symbol``, the restricted lists, recent sales and purchases) is
    that ticker."""
    if not isinstance(data, dict):
        return

    def text(value: Any) -> Any:
        if isinstance(value, bool):
            return str(value).upper()
        return str(value) if isinstance(value, int) else value  # a numeric ticker (7203)

    entries = (
        [e for e in data.get("holdings") or [] if isinstance(e, dict)] if isinstance(data.get("holdings"), list) else []
    )
    tax = data.get("tax")
    if isinstance(tax, dict):
        for kind in ("recent_sales", "recent_purchases"):
            if isinstance(tax.get(kind), list):
                entries += [e for e in tax[kind] if isinstance(e, dict)]
    for entry in entries:
        if "symbol" in entry:
            entry["symbol"] = text(entry["symbol"])
    for key in ("no_buy", "no_sell", "no_trade"):
        if isinstance(data.get(key), list):
            data[key] = [text(v) for v in data[key]]


def check_input_file(path: str | Path, what: str, *, field: str = "file") -> Path:
    """``path`` if it names a regular file of at most :data:`MAX_INPUT_FILE_BYTES`; else an
    :class:`InvalidPortfolioError` naming ``what`` and the path (no such file, a device, a FIFO, a
    directory, too large). Checked without opening, so a FIFO cannot block."""
    file = Path(path)
    try:
        info = os.stat(file)
    except FileNotFoundError as exc:
        raise InvalidPortfolioError(f"{file}: no such {what}", field=field) from exc
    except OSError as exc:
        raise InvalidPortfolioError(f"{file}: cannot read {what}: {exc.strerror or exc}", field=field) from exc
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise InvalidPortfolioError(f"{file}: the {what} is {kind}", field=field)
    if info.st_size > MAX_INPUT_FILE_BYTES:
        raise InvalidPortfolioError(
            f"{file}: the {what} is {info.st_size / 2**20:,.1f} MiB, over the "
            f"{MAX_INPUT_FILE_BYTES // 2**20} MiB limit",
            field=field,
        )
    return file


def _read_input(path: str | Path, what: str, field: str, encoding: str) -> str:
    file = check_input_file(path, what, field=field)
    try:
        with file.open("r", encoding=encoding) as handle:
            text = handle.read(MAX_INPUT_FILE_BYTES + 1)  # grown since the check: still bounded
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPortfolioError(f"{file}: cannot read {what}: {exc}", field=field) from exc
    if len(text) > MAX_INPUT_FILE_BYTES:
        raise InvalidPortfolioError(
            f"{file}: the {what} is over the {MAX_INPUT_FILE_BYTES // 2**20} MiB limit", field=field
        )
    return text


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


def load_lots_csv(path: str | Path, *, max_lots: int | None = None) -> LotsFile:
    """Read a CSV of tax lots, one lot a row: ``symbol,shares,cost_basis,acquired[,lot_id]``.

    ``acquired`` is an ISO date (``2021-03-01``); ``cost_basis`` is per share. Every bad row is
    refused with an :class:`InvalidPortfolioError` naming the file, the row (its line number, the
    header being line 1) and the column; nothing is returned half-read. With ``max_lots`` (the
    CLI passes ``RebalancingSettings.max_lots``) a file with more lots is refused at the first
    row past it.
    """
    file = Path(path)
    text = _read_input(file, "lots file", "lots", "utf-8-sig")  # a byte-order mark is not a column
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


def _attach_lots(data: dict[str, Any], lots_file: LotsFile | None, where: str) -> None:
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


def _normalise_holdings(data: dict[str, Any], where: str) -> None:
    holdings = data.get("holdings")
    if isinstance(holdings, Mapping):
        # Short form: a table of symbol -> shares.
        data["holdings"] = [{"symbol": symbol, "shares": shares} for symbol, shares in holdings.items()]
    elif holdings is not None and not isinstance(holdings, list):
        raise InvalidPortfolioError(
            f"{where}: holdings must be a list of {{symbol, shares}} tables or a table of "
            f"symbol to shares, not {type(holdings).__name__}",
            field="holdings",
        )


def _lots_path(data: dict[str, Any], lots: str | Path | None, base_dir: Path, where: str) -> Path | None:
    """The lots CSV to read: ``lots`` (the caller's, e.g. ``--lots``) over the file's ``lots`` key,
    which is relative to ``base_dir`` (the portfolio file's folder)."""
    named = data.pop(_LOTS_KEY, None)
    if lots is not None:
        return Path(lots)
    if named is None:
        return None
    if not isinstance(named, str) or not named.strip():
        raise InvalidPortfolioError(
            f"{where}: lots must be the path of a lots CSV ({','.join(LOT_COLUMNS)}[,lot_id]), "
            f"not {named!r}; give lots under their holding as [[holdings.lots]] tables",
            field="lots",
        )
    path = Path(named.strip())
    return path if path.is_absolute() else base_dir / path


def parse_portfolio_text(
    text: str,
    fmt: str,
    *,
    source: str = "<text>",
    lots: str | Path | None = None,
    base_dir: str | Path | None = None,
    max_lots: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PortfolioConfiguration:
    """Build a configuration from TOML (``fmt="toml"``) or YAML (``fmt="yaml"``) text.

    ``source`` names the text in error messages (usually the file path). ``lots`` is a lots CSV
    that replaces the text's own ``lots`` key; a relative ``lots`` key is read from ``base_dir``
    (default: the current directory); ``max_lots`` bounds the lots read from that CSV;
    ``overrides`` replace the text's fields (the command line's ``--targets``, ``--cash``).
    """
    if fmt not in ("toml", "yaml"):
        raise InvalidPortfolioError(f"{source}: unknown format {fmt!r} (use toml or yaml)", field="file")
    data = _parse(text, fmt, source)
    if fmt == "yaml":
        _symbols_as_text(data)
    if not isinstance(data, dict):
        raise InvalidPortfolioError(
            f"{source}: expected a table of portfolio fields at the top level, found {type(data).__name__}",
            field="file",
        )
    known = PortfolioConfiguration.model_fields.keys() - _CODE_ONLY_FIELDS
    for key in data:
        if key in _CODE_ONLY_FIELDS or (key not in known and key not in (_LOTS_KEY, MODELS_KEY)):
            line = _key_line(text, str(key), fmt)
            at = f" (line {line})" if line else ""
            hint = (
                "custom constraints are Python objects; use max_sector_weight, sector_caps or min_esg_score in a file"
                if key in _CODE_ONLY_FIELDS
                else f"known keys: {', '.join(sorted(known | {_LOTS_KEY, MODELS_KEY}))}"
            )
            raise InvalidPortfolioError(f"{source}: unknown key {key!r}{at}; {hint}", field=str(key))
    lots_path = _lots_path(data, lots, Path(base_dir) if base_dir is not None else Path(), source)
    lots_file = load_lots_csv(lots_path, max_lots=max_lots) if lots_path is not None else None
    _normalise_holdings(data, source)
    _attach_lots(data, lots_file, source)
    data.update(overrides or {})
    resolve_models(data, source, targets_replaced="target_weights" in (overrides or {}))
    return _configuration(data, text, fmt, source, lots_file)


def _configuration(
    data: dict[str, Any], text: str, fmt: str, source: str, lots_file: LotsFile | None
) -> PortfolioConfiguration:
    try:
        return PortfolioConfiguration(**data)
    except InvalidPortfolioError as exc:
        # Point at the symbol's line when there is one (the most specific), else the field's;
        # a symbol whose lots came from the CSV is pointed at there.
        if lots_file is not None and exc.symbol and lots_file.rows_of(exc.symbol):
            at = f" ({lots_file.path} {lots_file.rows_of(exc.symbol)})"
        else:
            candidates = [exc.symbol, (exc.field or "").split(".")[0]]
            lines = [_key_line(text, key, fmt) for key in candidates if key]
            line = next((found for found in lines if found), None)
            at = f" (line {line})" if line else ""
        raise InvalidPortfolioError(f"{source}{at}: {exc}", field=exc.field, symbol=exc.symbol) from exc


def load_portfolio_file(
    path: str | Path,
    *,
    lots: str | Path | None = None,
    max_lots: int | None = None,
    targets: str | Path | None = None,
    cash: float | None = None,
    exposures: str | Path | None = None,
) -> PortfolioConfiguration:
    """Read a portfolio configuration from a ``.toml``, ``.yaml`` or ``.yml`` file, or from a
    holdings ``.csv`` (``symbol,shares[,target_weight][,sector]``, see
    :mod:`finwiz.cli._holdings_csv`).

    ``lots`` names a lots CSV to use instead of the file's own ``lots`` key (which is read
    relative to the file's folder); ``targets`` a ``symbol,target_weight`` CSV that replaces the
    file's target weights (a holdings CSV with a ``target_weight`` column refuses it: targets
    given twice); ``cash`` replaces the file's cash (a holdings CSV has none: default 0);
    ``exposures`` a ``symbol,exposure,weight`` CSV that replaces the file's look-through exposures
    (see :mod:`finwiz.cli._exposures_csv`)."""

    file = Path(path)
    suffix = file.suffix.lower()
    fmt = PORTFOLIO_FILE_SUFFIXES.get(suffix)
    if fmt is None and suffix != ".csv":
        raise InvalidPortfolioError(
            f"{file}: unsupported portfolio file type {file.suffix or '(none)'!r}; "
            "use .toml, .yaml, .yml or a holdings .csv (symbol,shares[,target_weight][,sector])",
            field="file",
        )
    overrides: dict[str, Any] = {}
    if cash is not None:
        overrides["cash"] = cash
    if exposures is not None:
        from finwiz.cli._exposures_csv import read_exposures_csv

        overrides["exposures"] = read_exposures_csv(
            exposures, _read_input(exposures, "exposures CSV", "exposures", "utf-8-sig")
        )
    if fmt is not None:
        if targets is not None:
            overrides["target_weights"] = _read_targets(targets)
        text = _read_input(file, "portfolio file", "file", "utf-8")
        return parse_portfolio_text(
            text, fmt, source=str(file), lots=lots, base_dir=file.parent, max_lots=max_lots, overrides=overrides
        )
    data = read_holdings_csv(file, _read_input(file, "holdings CSV", "file", "utf-8-sig"))
    if targets is not None:
        if "target_weights" in data:
            raise InvalidPortfolioError(
                f"{file}: target weights given twice, in its target_weight column and in {targets}; "
                "give them in one place",
                field="target_weights",
            )
        data["target_weights"] = _read_targets(targets)
    elif "target_weights" not in data:
        raise InvalidPortfolioError(
            f"{file}: no target weights; add a target_weight column or give a targets CSV "
            "(symbol,target_weight) with --targets",
            field="target_weights",
        )
    lots_file = load_lots_csv(lots, max_lots=max_lots) if lots is not None else None
    _attach_lots(data, lots_file, str(file))
    data.update(overrides)
    return _configuration(data, "", "csv", str(file), lots_file)


def _read_targets(path: str | Path) -> dict[str, float]:

    return read_targets_csv(path, _read_input(path, "targets CSV", "target_weights", "utf-8-sig"))


def input_files(path: str | Path, *, lots: str | Path | None = None) -> list[Path]:
    """The files :func:`load_portfolio_file` would read: the portfolio file and its lots CSV
    (``lots``, else the file's ``lots`` key), so that a caller can keep outputs off them."""
    file = Path(path)
    found = [file]
    if lots is not None:
        return [*found, Path(lots)]
    fmt = PORTFOLIO_FILE_SUFFIXES.get(file.suffix.lower())
    if fmt is None:
        return found  # a holdings CSV names no other file
    try:
        data = _parse(_read_input(file, "portfolio file", "file", "utf-8"), fmt or "toml", str(file))
        named = _lots_path(data, None, file.parent, str(file)) if isinstance(data, dict) else None
    except InvalidPortfolioError:
        return found  # the load itself says what is wrong
    return [*found, named] if named is not None else found
