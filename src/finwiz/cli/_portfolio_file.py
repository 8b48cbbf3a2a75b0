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

The text's syntax is read by ``_file_syntax``, a lots CSV by ``_lots_csv``, a holdings CSV by
``_holdings_csv``; this module reads the files (bounded) and puts the pieces together.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finwiz.cli._file_syntax import key_line, parse_text, symbols_as_text
from finwiz.cli._holdings_csv import read_holdings_csv, read_targets_csv
from finwiz.cli._lots_csv import LOT_COLUMNS, LotsFile, attach_lots, read_lots_csv
from finwiz.cli._models_file import MODELS_KEY, resolve_models
from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import PortfolioConfiguration

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
_LOTS_KEY = "lots"  # the top-level key naming a lots CSV (not a PortfolioConfiguration field)

MAX_INPUT_FILE_BYTES = 64 * 2**20
"""The largest portfolio, lots or price file read (64 MiB): a path naming ``/dev/zero``, a FIFO or
a huge file is refused before reading rather than filling memory."""

# Objects, not data: a file cannot express them, and silently dropping them would be worse.
_CODE_ONLY_FIELDS = {"custom_constraints"}


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


def load_lots_csv(path: str | Path, *, max_lots: int | None = None) -> LotsFile:
    """Read the lots CSV at ``path`` (bounded, like every input file): the lots as
    :func:`~finwiz.cli._lots_csv.read_lots_csv` reads and checks them, at most ``max_lots``."""
    file = Path(path)
    text = _read_input(file, "lots file", "lots", "utf-8-sig")  # a byte-order mark is not a column
    return read_lots_csv(file, text, max_lots=max_lots)


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
    data = parse_text(text, fmt, source)
    if fmt == "yaml":
        symbols_as_text(data)
    if not isinstance(data, dict):
        raise InvalidPortfolioError(
            f"{source}: expected a table of portfolio fields at the top level, found {type(data).__name__}",
            field="file",
        )
    known = PortfolioConfiguration.model_fields.keys() - _CODE_ONLY_FIELDS
    for key in data:
        if key in _CODE_ONLY_FIELDS or (key not in known and key not in (_LOTS_KEY, MODELS_KEY)):
            line = key_line(text, str(key), fmt)
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
    attach_lots(data, lots_file, source)
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
            lines = [key_line(text, key, fmt) for key in candidates if key]
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
    overrides = _overrides(cash, exposures)
    if fmt is not None:
        if targets is not None:
            overrides["target_weights"] = _read_targets(targets)
        text = _read_input(file, "portfolio file", "file", "utf-8")
        return parse_portfolio_text(
            text, fmt, source=str(file), lots=lots, base_dir=file.parent, max_lots=max_lots, overrides=overrides
        )
    data = read_holdings_csv(file, _read_input(file, "holdings CSV", "file", "utf-8-sig"))
    _holdings_csv_targets(data, file, targets)
    lots_file = load_lots_csv(lots, max_lots=max_lots) if lots is not None else None
    attach_lots(data, lots_file, str(file))
    data.update(overrides)
    return _configuration(data, "", "csv", str(file), lots_file)


def _overrides(cash: float | None, exposures: str | Path | None) -> dict[str, Any]:
    """The fields the command line replaces in any portfolio file: ``--cash``, ``--exposures``."""
    overrides: dict[str, Any] = {}
    if cash is not None:
        overrides["cash"] = cash
    if exposures is not None:
        from finwiz.cli._exposures_csv import read_exposures_csv

        overrides["exposures"] = read_exposures_csv(
            exposures, _read_input(exposures, "exposures CSV", "exposures", "utf-8-sig")
        )
    return overrides


def _holdings_csv_targets(data: dict[str, Any], file: Path, targets: str | Path | None) -> None:
    """A holdings CSV's targets: its ``target_weight`` column or a targets CSV, exactly one."""
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
        data = parse_text(_read_input(file, "portfolio file", "file", "utf-8"), fmt or "toml", str(file))
        named = _lots_path(data, None, file.parent, str(file)) if isinstance(data, dict) else None
    except InvalidPortfolioError:
        return found  # the load itself says what is wrong
    return [*found, named] if named is not None else found
