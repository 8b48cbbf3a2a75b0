"""Prices for the command line: a fetch that fails in one short line naming a few unpriced
symbols per reason (:class:`UnpricedSymbolsError`), through an orchestrator closed after use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from finwiz.errors import InsufficientPriceDataError
from finwiz.settings import RebalancingSettings

if TYPE_CHECKING:
    from finwiz.orchestrator import PortfolioRebalancingOrchestrator

__all__ = ["UnpricedSymbolsError", "terminal_orchestrator"]


class Bar(Protocol):
    """A progress bar: told each symbol priced, ended when the fetch is over."""

    def __call__(self, done: int, total: int) -> None: ...

    def end(self) -> None: ...


_SHOWN_SYMBOLS = 5  # an unpriced-symbols line names this many per reason, then "and N more"


class UnpricedSymbolsError(InsufficientPriceDataError):
    """:class:`InsufficientPriceDataError` in one short line for the terminal: how many of the
    book's symbols have no price, a few of them per reason, and the option that fixes it (the
    full ``failures`` map is kept). A 431-symbol book on the 20-stock sample made a 14 kB line."""

    def __init__(self, failures: dict[str, str], *, provider: str | None, total: int) -> None:
        super().__init__(failures, provider=provider)
        self.total = total

    def __str__(self) -> str:
        prefix = f"{self.provider}: "
        groups: dict[str, list[str]] = {}
        for symbol, reason in self.failures.items():
            groups.setdefault(reason.removeprefix(prefix), []).append(symbol)

        def few(symbols: list[str]) -> str:
            more = len(symbols) - _SHOWN_SYMBOLS
            return ", ".join(symbols[:_SHOWN_SYMBOLS]) + (f" and {more:,} more" if more > 0 else "")

        count = f"{len(self.failures):,} of {self.total:,} symbol{'' if self.total == 1 else 's'}"
        source = self.provider or "the price source"
        if set(groups) == {"unknown symbol"}:
            text = f"{count} unknown to the {source} provider ({few(groups['unknown symbol'])})"
        else:
            reasons = "; ".join(f"{why}: {few(symbols)}" for why, symbols in groups.items())
            text = f"{count} have no usable price from {source} ({reasons})"
        if self.provider == "sample" and "unknown symbol" in groups:
            text += "; the sample holds only 20 S&P 500 stocks: use --prices csv:PATH, yahoo or alpha_vantage"
        return text


@contextlib.asynccontextmanager
async def terminal_orchestrator(
    settings: RebalancingSettings, progress: Bar | None = None, *, write_reports: bool = False
) -> AsyncIterator[PortfolioRebalancingOrchestrator]:
    """An orchestrator for the command line, its price service closed on exit: its price fetch
    closes the progress bar and fails in one short line (:class:`UnpricedSymbolsError`)."""
    from finwiz.service._factory import RebalancingServiceFactory

    orchestrator = RebalancingServiceFactory(settings).create_orchestrator(
        progress=progress, write_reports=write_reports
    )
    fetch = orchestrator.fetch_prices

    async def fetch_for_terminal(symbols: Sequence[str], **options: Any) -> dict[str, float]:
        try:
            return await fetch(symbols, **options)
        except InsufficientPriceDataError as exc:
            if isinstance(exc, UnpricedSymbolsError) or not exc.failures:
                raise
            raise UnpricedSymbolsError(exc.failures, provider=exc.provider, total=len(set(symbols))) from exc
        finally:
            if progress is not None:
                progress.end()  # before any error line, so that line starts on its own

    orchestrator.fetch_prices = fetch_for_terminal  # type: ignore[method-assign]
    try:
        yield orchestrator
    finally:
        if progress is not None:
            progress.end()
        await orchestrator.price_service.aclose()  # type: ignore[attr-defined]
