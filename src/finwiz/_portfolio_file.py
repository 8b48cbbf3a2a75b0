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
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import PortfolioConfiguration

__all__ = ["PORTFOLIO_FILE_SUFFIXES", "load_portfolio_file", "parse_portfolio_text"]

PORTFOLIO_FILE_SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}

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
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidPortfolioError(f"{where}: invalid YAML{at}: {problem}", field="file") from exc


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


def parse_portfolio_text(text: str, fmt: str, *, source: str = "<text>") -> PortfolioConfiguration:
    """Build a configuration from TOML (``fmt="toml"``) or YAML (``fmt="yaml"``) text.

    ``source`` names the text in error messages (usually the file path).
    """
    if fmt not in ("toml", "yaml"):
        raise InvalidPortfolioError(f"{source}: unknown format {fmt!r} (use toml or yaml)", field="file")
    data = _parse(text, fmt, source)
    if not isinstance(data, dict):
        raise InvalidPortfolioError(
            f"{source}: expected a table of portfolio fields at the top level, found {type(data).__name__}",
            field="file",
        )
    known = PortfolioConfiguration.model_fields.keys() - _CODE_ONLY_FIELDS
    for key in data:
        if key in _CODE_ONLY_FIELDS or key not in known:
            line = _key_line(text, str(key), fmt)
            at = f" (line {line})" if line else ""
            hint = (
                "custom constraints are Python objects; use max_sector_weight, sector_caps or min_esg_score in a file"
                if key in _CODE_ONLY_FIELDS
                else f"known keys: {', '.join(sorted(known))}"
            )
            raise InvalidPortfolioError(f"{source}: unknown key {key!r}{at}; {hint}", field=str(key))
    _normalise_holdings(data, source)
    try:
        return PortfolioConfiguration(**data)
    except InvalidPortfolioError as exc:
        # Point at the symbol's line when there is one (the most specific), else the field's.
        candidates = [exc.symbol, (exc.field or "").split(".")[0]]
        lines = [_key_line(text, key, fmt) for key in candidates if key]
        line = next((found for found in lines if found), None)
        at = f" (line {line})" if line else ""
        raise InvalidPortfolioError(f"{source}{at}: {exc}", field=exc.field, symbol=exc.symbol) from exc


def load_portfolio_file(path: str | Path) -> PortfolioConfiguration:
    """Read a portfolio configuration from a ``.toml``, ``.yaml`` or ``.yml`` file."""
    file = Path(path)
    fmt = PORTFOLIO_FILE_SUFFIXES.get(file.suffix.lower())
    if fmt is None:
        raise InvalidPortfolioError(
            f"{file}: unsupported portfolio file type {file.suffix or '(none)'!r}; use .toml, .yaml or .yml",
            field="file",
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidPortfolioError(f"{file}: no such portfolio file", field="file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPortfolioError(f"{file}: cannot read portfolio file: {exc}", field="file") from exc
    return parse_portfolio_text(text, fmt, source=str(file))
