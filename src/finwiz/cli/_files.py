"""What the command line may write, and how: outputs kept off its inputs and off each other, CSV
cells a spreadsheet cannot run, terminal text without control characters.

* :func:`check_outputs` refuses (:class:`UsageError`, exit status 2) an output option naming an
  input file (the portfolio file, its lots CSV, a price or volume CSV) or the same file as
  another output option, before any work: ``--csv book.toml`` cannot overwrite the book.
* :func:`csv_safe` prefixes ``'`` to every text cell starting with ``=``, ``+``, ``-``, ``@``
  (or a tab or carriage return), which a spreadsheet would read as a formula; numbers, negative
  ones included, stay numbers.
* :func:`terminal_text` drops escape sequences and control characters (tab and newline kept)
  from anything printed that came from input (symbols, sectors, error messages).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from finwiz.errors import ConfigurationError

__all__ = ["UsageError", "check_outputs", "csv_safe", "source_file", "terminal_text", "write_text"]


class UsageError(ConfigurationError):
    """A bad command line (an unknown price source, outputs on inputs or on each other): exit 2."""


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Refuse an output (``{"--csv": path}``) on an input (``("the portfolio file", path)``) or two
    outputs on one file, naming both."""
    given = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    read = [(what, Path(path)) for what, path in inputs if path is not None]
    for i, (option, path) in enumerate(given):
        for what, source in read:
            if _same(path, source):
                raise UsageError(f"{option} {str(path)!r} would overwrite {what} {str(source)!r}; choose another path")
        for other, second in given[:i]:
            if _same(path, second):
                raise UsageError(f"{other} and {option} name the same file {str(path)!r}; give each its own path")


def source_file(path: str, option: str) -> Path:
    """The file an input option (``--prices csv:PATH``, ``--volumes``) names: it must exist and be a
    regular file of at most 64 MiB, else :class:`UsageError` (a bad command line, exit 2)."""
    from finwiz.cli._portfolio_file import check_input_file
    from finwiz.errors import InvalidPortfolioError

    if not Path(path).exists():
        raise UsageError(f"{option}: no such file {path!r}")
    try:
        return check_input_file(path, f"{option} file", field="prices")
    except InvalidPortfolioError as exc:
        raise UsageError(str(exc)) from exc


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA) else value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (index and labels too) that a spreadsheet would read as a
    formula prefixed by ``'``; numeric columns are left as they are."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(_cell)
    out.index = out.index.map(_cell)
    out.columns = out.columns.map(_cell)
    return out


# CSI/OSC and other escape sequences first (so their parameters go with them), then any C0/C1
# control character but tab and newline.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab, newline kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def write_text(path: Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` (UTF-8); a failure is a :class:`ConfigurationError` naming ``what``."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {what} to {str(path)!r}: {exc.strerror or exc}") from exc
