"""Sectors and ESG scores per symbol, from CSV files (``symbol,sector``, ``symbol,esg_score``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import pandas as pd

from finwiz.data._parsing import parse_symbols
from finwiz.data.sample import sample_sectors
from finwiz.errors import ConfigurationError, InvalidPortfolioError
from finwiz.schemas import canonical_symbol, is_unclassified

__all__ = ["MarketDataProvider"]

V = TypeVar("V")


def _read_pairs(path: Path, value: str) -> dict[str, str]:
    """``symbol -> value`` text from a two-column CSV; refuses duplicates and a missing column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "symbol" not in columns or value not in columns:
        raise ConfigurationError(f"{path} needs columns 'symbol' and '{value}'")
    out: dict[str, str] = {}
    for raw, text in zip(frame[columns["symbol"]], frame[columns[value]], strict=True):
        symbol = canonical_symbol(raw)
        if symbol in out:
            raise InvalidPortfolioError(f"{path}: {symbol} is listed twice", field=value, symbol=symbol)
        out[symbol] = str(text).strip()
    return out


class MarketDataProvider:
    """Sector and ESG score of each symbol, read once from CSV files.

    Labels such as ``Unclassified`` or ``N/A`` (:data:`finwiz.schemas.UNCLASSIFIED_SECTORS`)
    mean *no sector*, the same rule the optimizer applies: such a symbol is left out of
    :meth:`get_sectors`, so it is in no sector and no sector cap applies to it. A symbol the
    file does not list at all is another matter (an incomplete or wrong file): asked for, it
    raises :class:`InvalidPortfolioError` naming it; pass ``required=False`` to get only the
    known ones. ESG scores have no such label: an ESG floor needs a score for every asset.

    Parameters
    ----------
    sectors_path
        CSV with columns ``symbol,sector``; ``None`` uses the bundled 20-stock sample's sectors.
    esg_path
        CSV with columns ``symbol,esg_score`` (finite numbers); optional.
    """

    def __init__(self, sectors_path: str | Path | None = None, esg_path: str | Path | None = None) -> None:
        if sectors_path is None:
            raw = {str(k): str(v) for k, v in sample_sectors().items()}
        else:
            raw = _read_pairs(Path(sectors_path), "sector")
        self._sectors = {s: v for s, v in raw.items() if not is_unclassified(v)}
        self._unclassified = frozenset(s for s, v in raw.items() if is_unclassified(v))
        self._esg: dict[str, float] = {}
        if esg_path is not None:
            for symbol, text in _read_pairs(Path(esg_path), "esg_score").items():
                try:
                    score = float(text)
                except ValueError:
                    score = math.nan
                if not math.isfinite(score):
                    raise InvalidPortfolioError(
                        f"ESG score of {symbol} is {text!r}, not a finite number",
                        field="esg_scores",
                        symbol=symbol,
                    )
                self._esg[symbol] = score

    def get_sectors(self, symbols: Iterable[str] | None = None, *, required: bool = True) -> dict[str, str]:
        """Sector per classified symbol (all of them when ``symbols`` is None); symbols listed as
        unclassified are left out, unlisted ones raise unless ``required=False``."""
        return self._lookup(self._sectors, symbols, required, "sectors", known=self._unclassified)

    def get_esg_scores(self, symbols: Iterable[str] | None = None, *, required: bool = True) -> dict[str, float]:
        """ESG score per symbol (all known ones when ``symbols`` is None)."""
        return self._lookup(self._esg, symbols, required, "esg_scores")

    @staticmethod
    def _lookup(
        table: dict[str, V],
        symbols: Iterable[str] | None,
        required: bool,
        field: str,
        known: frozenset[str] = frozenset(),
    ) -> dict[str, V]:
        if symbols is None:
            return dict(table)
        wanted = parse_symbols(symbols)
        missing = [s for s in wanted if s not in table and s not in known]
        if missing and required:
            raise InvalidPortfolioError(f"{field}: no data for {', '.join(missing)}", field=field, symbol=missing[0])
        return {s: table[s] for s in wanted if s in table}
