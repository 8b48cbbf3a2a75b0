"""PortfolioPriceService: concurrent, batched, cached price fetching over a fallback chain."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

import pandas as pd

from finwiz.data._parsing import parse_symbols
from finwiz.data._providers import (
    AsyncClosing,
    CSVPriceProvider,
    DateLike,
    PriceDataProvider,
    SamplePriceProvider,
)
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from finwiz.schemas import PriceData
from finwiz.settings import RebalancingSettings

__all__ = [
    "PRICE_PROVIDERS",
    "CachedPrice",
    "PortfolioPriceService",
    "PriceCache",
    "PriceFetchResult",
    "PriceState",
    "PriceStatus",
    "ProgressCallback",
    "provider_from_name",
    "providers_from_settings",
]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` whenever more symbols are settled (priced or failed)."""

R = TypeVar("R")


@dataclass(frozen=True)
class CachedPrice:
    """A cached price, how old it is (seconds since it was fetched) and whether it has expired."""

    price: PriceData
    age_seconds: float
    stale: bool


class PriceCache:
    """Symbol-keyed TTL cache of prices. An entry is fresh while ``age < ttl_seconds``.

    :meth:`get` never returns an expired entry unless ``allow_stale=True``, and then marks it
    ``stale`` with its age. ``ttl_seconds=0`` disables freshness (every entry is stale at once).

    Not ``cachetools.TTLCache``: it evicts an entry once it expires, and serving a stale price
    with its age (``allow_stale``) needs exactly that entry; a second store beside it would make
    this longer, not shorter.
    """

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds < 0:
            raise ConfigurationError(f"cache TTL must be >= 0, got {ttl_seconds}")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[PriceData, float]] = {}

    def get(self, symbol: str, *, allow_stale: bool = False) -> CachedPrice | None:
        """The entry for ``symbol`` if fresh (or, with ``allow_stale``, whatever its age)."""
        entry = self._entries.get(symbol)
        if entry is None:
            return None
        price, stored = entry
        age = max(0.0, self._clock() - stored)
        stale = age >= self.ttl_seconds
        if stale and not allow_stale:
            return None
        return CachedPrice(price, age, stale)

    def put(self, price: PriceData) -> None:
        """Store ``price`` under its symbol, aged zero."""
        self._entries[price.symbol] = (price, self._clock())

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class PriceState(StrEnum):
    """How a symbol's price was obtained in one fetch."""

    FETCHED = "fetched"
    CACHED = "cached"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True)
class PriceStatus:
    """Outcome for one symbol: its state, the provider that answered, the price's cache age,
    and the reason each provider tried before (or instead) gave for failing."""

    symbol: str
    state: PriceState
    provider: str | None = None
    age_seconds: float | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the symbol has a price."""
        return self.state is not PriceState.FAILED

    @property
    def reason(self) -> str:
        """Every provider's failure reason, in chain order."""
        return "; ".join(f"{name}: {why}" for name, why in self.errors.items())


@dataclass(frozen=True)
class PriceFetchResult:
    """Prices found and a status per requested symbol (partial failures included)."""

    prices: dict[str, PriceData]
    status: dict[str, PriceStatus]
    elapsed_seconds: float

    @property
    def failures(self) -> dict[str, str]:
        """Symbol to combined reason, for every symbol without a price."""
        return {s: st.reason for s, st in self.status.items() if not st.ok}


class _Progress:
    """Reports settled symbols to a callback and, on long fetches, to the log every 10 %."""

    _LOG_FROM = 50  # fetches this large are worth a progress line in the log

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self._callback, self._logged = total, 0, callback, 0

    def advance(self, count: int) -> None:
        if count <= 0:
            return
        self.done += count
        if self._callback is not None:
            self._callback(self.done, self.total)
        decile = 10 * self.done // max(self.total, 1)
        if self.total >= self._LOG_FROM and decile > self._logged:
            self._logged = decile
            logger.info("prices: %d/%d symbols settled", self.done, self.total)


class PortfolioPriceService(AsyncClosing):
    """Prices for a portfolio: concurrent, batched, cached, over an ordered fallback chain.

    Each provider gets at most ``max_concurrency`` requests in flight (and never more than its
    own ``max_concurrency``); symbols are sent in batches of the provider's ``batch_size``. A
    symbol a provider cannot price goes to the next one. Every call to a provider has a deadline
    (``provider_timeout_seconds``), so a hanging source becomes a failure, then a fallback.
    Prices are cached for ``cache_ttl_seconds`` (default from settings, 300 s); an expired price
    is served only when ``allow_stale=True`` and then reported as stale with its age.

    Parameters
    ----------
    providers
        One provider or the fallback chain, first choice first.
    settings
        Defaults for the TTL, concurrency and deadline (``RebalancingSettings()`` if omitted).
    progress
        Default progress callback ``(done, total)`` for every fetch.
    """

    def __init__(
        self,
        providers: PriceDataProvider | Sequence[PriceDataProvider],
        *,
        settings: RebalancingSettings | None = None,
        cache_ttl_seconds: float | None = None,
        max_concurrency: int | None = None,
        provider_timeout_seconds: float | None = None,
        progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        chain = [providers] if isinstance(providers, PriceDataProvider) else list(providers)
        if not chain:
            raise ConfigurationError("PortfolioPriceService needs at least one provider")
        settings = settings or RebalancingSettings()
        self.providers = chain
        self.max_concurrency = max_concurrency or settings.max_concurrent_requests
        self.provider_timeout_seconds = provider_timeout_seconds or settings.provider_timeout_seconds
        ttl = settings.price_cache_ttl_seconds if cache_ttl_seconds is None else cache_ttl_seconds
        self.cache = PriceCache(ttl, clock=clock)
        self.progress = progress
        self.last_status: dict[str, PriceStatus] = {}
        self._gates: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}

    @classmethod
    def from_settings(cls, settings: RebalancingSettings | None = None) -> PortfolioPriceService:
        """The chain ``price_provider`` then ``fallback_providers`` from settings."""
        settings = settings or RebalancingSettings()
        return cls(providers_from_settings(settings), settings=settings)

    @property
    def chain_name(self) -> str:
        """The providers' names in fallback order, e.g. ``"yahoo -> alpha_vantage"``."""
        return " -> ".join(p.name for p in self.providers)

    async def get_current_prices(
        self,
        symbols: Iterable[str],
        *,
        allow_stale: bool = False,
        progress: ProgressCallback | None = None,
    ) -> dict[str, PriceData]:
        """Prices of every symbol, or :class:`InsufficientPriceDataError` naming each one
        no provider (nor, with ``allow_stale``, the cache) could price."""
        result = await self.fetch_prices(symbols, allow_stale=allow_stale, progress=progress)
        if result.failures:
            raise InsufficientPriceDataError(result.failures, provider=self.chain_name)
        return result.prices

    async def get_price_with_fallback(self, symbol: str, *, allow_stale: bool = False) -> PriceData:
        """The price of ``symbol`` from the first provider in the chain that has one."""
        result = await self.fetch_prices([symbol], allow_stale=allow_stale)
        ((canonical, status),) = result.status.items()
        if not status.ok:
            raise PriceDataError(canonical, status.reason, provider=self.chain_name)
        return result.prices[canonical]

    async def fetch_prices(
        self,
        symbols: Iterable[str],
        *,
        allow_stale: bool = False,
        progress: ProgressCallback | None = None,
    ) -> PriceFetchResult:
        """Prices and a per-symbol :class:`PriceStatus`; never raises for a partial failure."""
        started = time.perf_counter()
        wanted = parse_symbols(symbols)
        tracker = _Progress(len(wanted), progress or self.progress)
        prices: dict[str, PriceData] = {}
        status: dict[str, PriceStatus] = {}
        errors: dict[str, dict[str, str]] = {}
        for symbol in wanted:
            hit = self.cache.get(symbol)
            if hit is None:
                errors[symbol] = {}
                continue
            prices[symbol] = hit.price
            status[symbol] = PriceStatus(symbol, PriceState.CACHED, hit.price.source, hit.age_seconds)
        tracker.advance(len(prices))

        def settle(
            provider: PriceDataProvider, batch: list[str], outcome: dict[str, PriceData | PriceDataError] | str
        ) -> None:
            fetched = 0
            for symbol in batch:
                got = outcome if isinstance(outcome, str) else outcome.get(symbol)
                if isinstance(got, PriceData) and got.symbol == symbol:
                    self.cache.put(got)
                    prices[symbol] = got
                    status[symbol] = PriceStatus(symbol, PriceState.FETCHED, provider.name, 0.0, errors[symbol])
                    fetched += 1
                else:
                    errors[symbol][provider.name] = _reason(got, symbol)
            tracker.advance(fetched)

        await self._over_chain(list(errors), prices, lambda provider, batch: provider.fetch_prices(batch), settle)

        for symbol in [s for s in errors if s not in prices]:
            stale = self.cache.get(symbol, allow_stale=True) if allow_stale else None
            if stale is not None:
                prices[symbol] = stale.price
                status[symbol] = PriceStatus(
                    symbol, PriceState.STALE, stale.price.source, stale.age_seconds, errors[symbol]
                )
                logger.warning("%s: serving a stale price %.0f s old", symbol, stale.age_seconds)
            else:
                status[symbol] = PriceStatus(symbol, PriceState.FAILED, None, None, errors[symbol])
        tracker.advance(len(wanted) - tracker.done)

        elapsed = time.perf_counter() - started
        ordered = {s: status[s] for s in wanted}
        self.last_status = ordered
        result = PriceFetchResult({s: prices[s] for s in wanted if s in prices}, ordered, elapsed)
        if result.failures:
            logger.warning("prices: no price for %s", ", ".join(result.failures))
        return result

    async def get_historical_prices(
        self, symbols: Iterable[str], start: DateLike = None, end: DateLike = None
    ) -> pd.DataFrame:
        """Daily prices (index: date, columns: symbols in request order) over the chain; raises
        :class:`InsufficientPriceDataError` naming every symbol no provider had."""
        wanted = parse_symbols(symbols)
        if not wanted:
            return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype=float)
        frames: list[pd.DataFrame] = []
        errors: dict[str, dict[str, str]] = {s: {} for s in wanted}
        found: set[str] = set()

        def settle(
            provider: PriceDataProvider,
            batch: list[str],
            outcome: tuple[pd.DataFrame, dict[str, PriceDataError]] | str,
        ) -> None:
            if isinstance(outcome, str):
                for symbol in batch:
                    errors[symbol][provider.name] = outcome
                return
            frame, failures = outcome
            usable = [s for s in batch if s not in failures and s in frame.columns]
            for symbol in batch:
                if symbol not in usable:
                    errors[symbol][provider.name] = _reason(failures.get(symbol), symbol)
            frames.append(frame[usable])
            found.update(usable)

        await self._over_chain(wanted, found, lambda provider, batch: provider.fetch_history(batch, start, end), settle)

        missing = {s: "; ".join(f"{n}: {w}" for n, w in errors[s].items()) for s in wanted}
        missing = {s: why for s, why in missing.items() if s not in found}
        if missing:
            raise InsufficientPriceDataError(missing, provider=self.chain_name)
        joined = pd.concat(frames, axis=1).sort_index()
        joined.index.name, joined.columns.name = "date", "symbol"
        return joined[wanted]

    async def aclose(self) -> None:
        """Close every provider in the chain."""
        await asyncio.gather(*(p.aclose() for p in self.providers))

    def _gate(self, provider: PriceDataProvider) -> asyncio.Semaphore:
        """The provider's concurrency limit, shared by all fetches on the running loop."""
        loop = asyncio.get_running_loop()
        entry = self._gates.get(id(provider))
        if entry is None or entry[0] is not loop:
            limit = max(1, min(self.max_concurrency, provider.max_concurrency))
            entry = (loop, asyncio.Semaphore(limit))
            self._gates[id(provider)] = entry
        return entry[1]

    async def _over_chain(
        self,
        symbols: list[str],
        settled: Container[str],
        call: Callable[[PriceDataProvider, list[str]], Awaitable[R]],
        settle: Callable[[PriceDataProvider, list[str], R | str], None],
    ) -> None:
        """The fallback chain, walked once for prices and history alike: each provider in order
        gets the symbols no earlier provider settled (``settled`` grows as ``settle`` records
        answers), in batches under its limit and deadline (:meth:`_each_batch`)."""
        for provider in self.providers:
            pending = [s for s in symbols if s not in settled]
            if not pending:
                return
            await self._each_batch(
                provider, pending, functools.partial(call, provider), functools.partial(settle, provider)
            )

    async def _each_batch(
        self,
        provider: PriceDataProvider,
        symbols: list[str],
        call: Callable[[list[str]], Awaitable[R]],
        settle: Callable[[list[str], R | str], None],
    ) -> None:
        """Run ``call`` on batches of ``symbols`` under the provider's limit and a deadline;
        ``settle`` gets each batch's result, or a reason string when the whole batch failed."""
        gate = self._gate(provider)
        size = max(1, provider.batch_size)
        deadline = self.provider_timeout_seconds

        async def run(batch: list[str]) -> None:
            outcome: R | str
            async with gate:
                try:
                    async with asyncio.timeout(deadline):
                        outcome = await call(batch)
                except TimeoutError:
                    outcome = f"no answer within {deadline:g} s"
                except PriceDataError as exc:
                    outcome = exc.reason
                except Exception as exc:
                    # A provider bug must not sink the other symbols or the fallback chain;
                    # it is logged with its traceback and reported per symbol.
                    logger.exception("%s failed on %s", provider.name, ", ".join(batch))
                    outcome = f"provider failed: {type(exc).__name__}: {exc}"
            settle(batch, outcome)

        batches = [symbols[i : i + size] for i in range(0, len(symbols), size)]
        await asyncio.gather(*(run(b) for b in batches))


def _reason(outcome: object, symbol: str) -> str:
    if isinstance(outcome, str):
        return outcome
    if isinstance(outcome, PriceDataError):
        return outcome.reason
    if isinstance(outcome, PriceData):
        return f"answered for {outcome.symbol} instead"
    return "no answer for this symbol"


ProviderFactory = Callable[[RebalancingSettings], PriceDataProvider]
"""Builds a provider from settings (API key, CSV path, timeouts)."""


def _sample(settings: RebalancingSettings) -> PriceDataProvider:
    return SamplePriceProvider()


def _csv(settings: RebalancingSettings) -> PriceDataProvider:
    if not settings.csv_price_path:
        raise ConfigurationError("price provider 'csv' needs REBALANCING_CSV_PRICE_PATH")
    return CSVPriceProvider(settings.csv_price_path)


def _alpha_vantage(settings: RebalancingSettings) -> PriceDataProvider:
    from finwiz.data._alpha_vantage import AlphaVantagePriceProvider

    return AlphaVantagePriceProvider.from_settings(settings)


def _yahoo(settings: RebalancingSettings) -> PriceDataProvider:
    from finwiz.data._yahoo import YahooFinancePriceProvider

    return YahooFinancePriceProvider(timeout=settings.request_timeout_seconds)


PRICE_PROVIDERS: Mapping[str, ProviderFactory] = MappingProxyType(
    {"yahoo": _yahoo, "alpha_vantage": _alpha_vantage, "csv": _csv, "sample": _sample}
)
"""The one registry of providers buildable by name from settings (``REBALANCING_PRICE_PROVIDER``,
``REBALANCING_FALLBACK_PROVIDERS``, :class:`~finwiz.RebalancingServiceFactory`). Read-only; an
in-memory provider has no data to build from settings and is passed as an object instead."""


def provider_from_name(name: str, settings: RebalancingSettings) -> PriceDataProvider:
    """Build the provider called ``name`` (a key of :data:`PRICE_PROVIDERS`) from settings; an
    unknown name, or a provider missing its configuration, raises ConfigurationError."""
    factory = PRICE_PROVIDERS.get(name)
    if factory is None:
        raise ConfigurationError(f"unknown price provider {name!r}; choose one of {', '.join(PRICE_PROVIDERS)}")
    return factory(settings)


def providers_from_settings(settings: RebalancingSettings) -> list[PriceDataProvider]:
    """The fallback chain of settings: ``price_provider`` then ``fallback_providers``."""
    return [provider_from_name(name, settings) for name in (settings.price_provider, *settings.fallback_providers)]
