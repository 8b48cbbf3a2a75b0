"""Alpha Vantage over ``httpx.AsyncClient``: GLOBAL_QUOTE and TIME_SERIES_DAILY.

Alpha Vantage answers nearly every failure with HTTP 200 and a JSON body: ``{"Error Message"}``
for a bad symbol, ``{"Information"}`` for the daily quota, premium endpoints or a burst limit,
``{"Note"}`` for the old per-minute throttle and ``{"Global Quote": {}}`` for an unknown symbol.
Every number arrives as a string. So the body is classified before anything is read as data,
and every field is parsed strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pandas as pd

from finwiz.data._parsing import as_price_data, clean_price_frame, close_timestamp, parse_date
from finwiz.data._providers import DateLike, PriceDataProvider, day_bound, gather_each
from finwiz.errors import ConfigurationError, PriceDataError
from finwiz.schemas import PriceData, canonical_symbol
from finwiz.settings import RebalancingSettings

__all__ = ["DEFAULT_ALPHA_VANTAGE_URL", "AlphaVantagePriceProvider", "RetryPolicy"]

logger = logging.getLogger(__name__)

DEFAULT_ALPHA_VANTAGE_URL = "https://www.alphavantage.co/query"
_COMPACT_DAYS = 100  # TIME_SERIES_DAILY "compact" returns the last 100 trading days
_BURST = re.compile(r"per (second|minute)|spreading out|burst", re.IGNORECASE)
_DAILY = re.compile(r"per day|daily", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, honouring ``Retry-After``.

    Attempt ``k`` (from 0) waits ``U(b/2, b)`` seconds with ``b = min(max_delay,
    base_delay * 2**k)``, or the server's ``Retry-After`` when that is longer; a ``Retry-After``
    above ``max_retry_after`` ends the request instead of stalling the whole fetch.

    Hand-written rather than tenacity or stamina: what is specific here (the ``Retry-After``
    floor and cap, the daily quota's short-circuit between attempts, final messages that give
    the reason and the attempt count, an injected sleep and seeded jitter for tests) stays ours
    either way, and the loop around it is a dozen lines; a library would add a dependency and
    spread the same logic over callbacks.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**attempt)
        wait = rng.uniform(ceiling / 2.0, ceiling)
        return wait if retry_after is None else max(wait, retry_after)


class _RetryableError(Exception):
    """A failure worth another attempt (transport, 429, 5xx, throttle)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _ApiKeyTransport(httpx.AsyncBaseTransport):
    """Adds the API key on the wire only, so request objects that httpx logs never carry it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, api_key: str) -> None:
        self._inner = inner
        self._api_key = api_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        keyed = httpx.Request(
            request.method,
            request.url.copy_merge_params({"apikey": self._api_key}),
            headers=request.headers,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(keyed)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _key_pattern(key: str) -> re.Pattern[str]:
    """The key as a server may echo it back: raw, or with any character other than a letter or
    digit percent-encoded (``quote``, ``quote_plus``, either hex case) and a space as ``+``."""
    parts = []
    for char in key:
        if char.isascii() and char.isalnum():
            parts.append(re.escape(char))
            continue
        forms = [re.escape(char), "".join(f"%{b:02X}" for b in char.encode())]
        if char == " ":
            forms.append(r"\+")
        parts.append("(?:" + "|".join(forms) + ")")
    return re.compile("".join(parts), re.IGNORECASE)


class _Unclosed(httpx.AsyncBaseTransport):
    """A caller's transport, shared by the clients of every loop and left open when one closes."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)


@dataclass
class _LoopClient:
    client: httpx.AsyncClient
    users: int = 0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class AlphaVantagePriceProvider(PriceDataProvider):
    """Prices from Alpha Vantage: GLOBAL_QUOTE for current prices, TIME_SERIES_DAILY for history.

    Transport errors, timeouts, HTTP 429 and 5xx, and throttle messages are retried under
    ``retry``; bad symbols, premium endpoints and the daily quota are final. After a quota
    message every request fails fast for ``quota_cooldown_seconds`` instead of burning more
    calls. The API key never appears in logs, errors or ``repr``. Daily closes from
    TIME_SERIES_DAILY are *not* split-adjusted (adjusted series are a premium endpoint); run
    :func:`~finwiz.data.check_price_quality` on them.

    Parameters
    ----------
    api_key, base_url
        Credentials and endpoint (point ``base_url`` at a mock server in tests).
    timeout
        Seconds allowed for one attempt, connection to last byte.
    transport
        An ``httpx`` transport, e.g. ``httpx.MockTransport`` in tests.
    """

    name = "alpha_vantage"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_ALPHA_VANTAGE_URL,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 5,
        quota_cooldown_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigurationError("Alpha Vantage needs an API key (REBALANCING_ALPHA_VANTAGE_API_KEY)")
        self._api_key = api_key.strip()
        self._key_pattern = _key_pattern(self._api_key)
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.quota_cooldown_seconds = quota_cooldown_seconds
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._quota_hit: tuple[float, str] | None = None
        self._transport = transport
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._clients_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: RebalancingSettings) -> AlphaVantagePriceProvider:
        """A provider configured from ``REBALANCING_ALPHA_VANTAGE_*`` and the request settings."""
        if not settings.alpha_vantage_api_key:
            raise ConfigurationError("set REBALANCING_ALPHA_VANTAGE_API_KEY to use Alpha Vantage")
        return cls(
            settings.alpha_vantage_api_key,
            settings.alpha_vantage_base_url,
            timeout=settings.request_timeout_seconds,
            retry=RetryPolicy(max_retries=settings.max_retries),
            max_concurrency=settings.max_concurrent_requests,
        )

    def __repr__(self) -> str:
        return f"AlphaVantagePriceProvider(base_url={self.base_url!r}, api_key=***)"

    async def aclose(self) -> None:
        """Nothing to release: each fetch closes the HTTP client it opened (see :meth:`_client`)."""

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The running loop's HTTP client, opened by the first fetch on this loop and closed by
        the last one to finish.

        Connections belong to the event loop that opened them: a client kept across loops (a
        script calling ``asyncio.run`` per account, a threaded server) failed every later fetch
        with "Event loop is closed". Concurrent fetches on one loop share one connection pool.
        """
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            entry = self._clients.get(loop)
            if entry is None:
                entry = self._clients[loop] = _LoopClient(self._open_client())
            entry.users += 1
        try:
            yield entry.client
        finally:
            with self._clients_lock:
                entry.users -= 1
                last = entry.users == 0
                if last:
                    del self._clients[loop]
            if last:
                await entry.client.aclose()

    def _open_client(self) -> httpx.AsyncClient:
        # A transport passed in is the caller's (closed by them); our own is made per client.
        inner = _Unclosed(self._transport) if self._transport is not None else httpx.AsyncHTTPTransport()
        return httpx.AsyncClient(
            transport=_ApiKeyTransport(inner, self._api_key),
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": "finwiz"},
        )

    async def get_current_price(self, symbol: str) -> PriceData:
        """The latest price from GLOBAL_QUOTE, with its trading day and volume."""
        symbol = canonical_symbol(symbol)
        async with self._client() as client:
            body = await self._query(client, symbol, {"function": "GLOBAL_QUOTE", "symbol": symbol})
        quote = body.get("Global Quote")
        if not isinstance(quote, Mapping):
            raise self._error(symbol, f"unexpected payload with keys {sorted(body)[:5]}")
        if not quote:
            raise self._error(symbol, "unknown symbol (empty Global Quote)")
        fields = {str(k).split(". ", 1)[-1]: v for k, v in quote.items()}
        missing = [f for f in ("symbol", "price", "latest trading day") if f not in fields]
        if missing:
            raise self._error(symbol, f"Global Quote lacks {', '.join(missing)}")
        if str(fields["symbol"]).strip().upper() != symbol:
            raise self._error(symbol, f"payload is for {fields['symbol']!r}")
        day = parse_date(fields["latest trading day"], symbol, provider=self.name)
        return as_price_data(
            symbol,
            fields["price"],
            close_timestamp(day),
            provider=self.name,
            volume=self._volume(symbol, fields.get("volume")),
        )

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        """Daily closes (unadjusted) from TIME_SERIES_DAILY, one request per symbol."""
        lo, hi = day_bound(start), day_bound(end)
        recent = date.today() - timedelta(days=_COMPACT_DAYS)
        size = "full" if lo is not None and lo.date() < recent else "compact"

        async with self._client() as client:

            async def one(symbol: str) -> pd.Series:
                return await self._daily(client, symbol, size)

            outcomes = await gather_each(symbols, one, self.max_concurrency)
        failures = {s: o for s, o in outcomes.items() if isinstance(o, PriceDataError)}
        series = {s: o.loc[lo:hi] for s, o in outcomes.items() if isinstance(o, pd.Series)}
        for symbol, values in list(series.items()):
            if not values.notna().any():
                failures[symbol] = self._error(symbol, "no prices in range")
                del series[symbol]
        frame = pd.DataFrame(series, dtype=float).sort_index()
        frame.index.name, frame.columns.name = "date", "symbol"
        return frame, failures

    async def _daily(self, client: httpx.AsyncClient, symbol: str, size: str) -> pd.Series:
        symbol = canonical_symbol(symbol)
        params = {"function": "TIME_SERIES_DAILY", "symbol": symbol, "outputsize": size}
        body = await self._query(client, symbol, params)
        series = body.get("Time Series (Daily)")
        if not isinstance(series, Mapping) or not series:
            raise self._error(symbol, f"unexpected payload with keys {sorted(body)[:5]}")
        meta = body.get("Meta Data", {})
        named = meta.get("2. Symbol") if isinstance(meta, Mapping) else None
        if named is not None and str(named).strip().upper() != symbol:
            raise self._error(symbol, f"payload is for {named!r}")
        closes = {}
        for day, row in series.items():
            if not isinstance(row, Mapping) or "4. close" not in row:
                raise self._error(symbol, f"no close on {day}")
            closes[day] = row["4. close"]
        frame = pd.DataFrame({symbol: pd.Series(closes, dtype=object)})
        clean, problems = clean_price_frame(frame, provider=self.name)
        if symbol in problems:
            raise problems[symbol]
        return clean[symbol]

    def _volume(self, symbol: str, value: object) -> float | None:
        if value is None:
            return None
        text = str(value).strip()
        if not text.isdigit():
            raise self._error(symbol, f"refused volume {value!r}")
        return float(text)

    def _error(self, symbol: str, message: str) -> PriceDataError:
        return PriceDataError(symbol, self._redact(message), provider=self.name)

    async def _query(self, client: httpx.AsyncClient, symbol: str, params: Mapping[str, str]) -> dict[str, Any]:
        """One API call with retries; the classified JSON body, or a final PriceDataError."""
        attempt = 0
        while True:
            self._refuse_during_quota(symbol)
            try:
                async with asyncio.timeout(self.timeout):
                    response = await client.get(self.base_url, params=dict(params))
                return self._classify(symbol, response)
            except (_RetryableError, httpx.TransportError, TimeoutError) as exc:
                if isinstance(exc, _RetryableError):
                    reason, retry_after = exc.reason, exc.retry_after
                elif isinstance(exc, TimeoutError):
                    reason, retry_after = f"timed out after {self.timeout:g} s", None
                else:
                    reason, retry_after = f"{type(exc).__name__}: {exc}", None
                if retry_after is not None and retry_after > self.retry.max_retry_after:
                    raise self._error(symbol, f"{reason}; server asks to wait {retry_after:.0f} s") from exc
                if attempt >= self.retry.max_retries:
                    raise self._error(symbol, f"{reason} (gave up after {attempt + 1} attempts)") from exc
                wait = self.retry.delay(attempt, retry_after, self._rng)
                logger.warning(
                    "alpha_vantage %s: %s; retry %d in %.2f s",
                    symbol,
                    self._redact(reason),
                    attempt + 1,
                    wait,
                )
                attempt += 1
                await self._sleep(wait)

    def _redact(self, text: str) -> str:
        return self._key_pattern.sub("***", text)

    def _refuse_during_quota(self, symbol: str) -> None:
        if self._quota_hit is None:
            return
        since, message = self._quota_hit
        if time.monotonic() - since < self.quota_cooldown_seconds:
            raise self._error(symbol, f"daily quota exhausted: {message}")
        self._quota_hit = None

    def _classify(self, symbol: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableError(f"HTTP {status}", _retry_after(response))
        if status != 200:
            raise self._error(symbol, f"HTTP {status}")
        try:
            body = response.json()
        except ValueError as exc:
            raise self._error(symbol, "response is not JSON") from exc
        if not isinstance(body, dict):
            raise self._error(symbol, "response is not a JSON object")
        if "Error Message" in body:
            raise self._error(symbol, f"rejected: {body['Error Message']}")
        if "Note" in body:
            raise _RetryableError(f"throttled: {self._redact(str(body['Note']))}")
        if "Information" in body:
            message = self._redact(str(body["Information"]))
            if _DAILY.search(message):
                self._quota_hit = (time.monotonic(), message)
                raise self._error(symbol, f"daily quota exhausted: {message}")
            if _BURST.search(message):
                raise _RetryableError(f"throttled: {message}")
            raise self._error(symbol, f"refused: {message}")
        return body
