"""The real Alpha Vantage provider and the service against a real HTTP server on 127.0.0.1.

The server runs in a thread of the test process and answers like Alpha Vantage: good quotes,
the daily-quota message, 429 with Retry-After, and replies slower than the client's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from finwiz.data import (
    AlphaVantagePriceProvider,
    InMemoryPriceProvider,
    PortfolioPriceService,
    PriceState,
    RetryPolicy,
)
from tests.data.conftest import API_KEY, AV_QUOTA, av_quote


class FakeAlphaVantage(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real server: the client pools connections
    hits: ClassVar[dict[str, int]] = {}
    keys: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        symbol = query["symbol"][0]
        self.keys.add(query["apikey"][0])
        count = self.hits[symbol] = self.hits.get(symbol, 0) + 1
        if symbol == "QUOTA":
            self._reply(200, AV_QUOTA)
        elif symbol == "BUSY" and count == 1:
            self._reply(429, {"message": "slow down"}, retry_after="0")
        elif symbol == "SLOW":
            time.sleep(0.4)
            self._reply(200, av_quote(symbol))
        else:
            self._reply(200, av_quote(symbol, price=f"{10 + len(symbol)}.25"))

    def _reply(self, status: int, body: object, retry_after: str | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        # The client gives up on a slow reply, as it should; the broken pipe is expected.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    FakeAlphaVantage.hits, FakeAlphaVantage.keys = {}, set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAlphaVantage)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/query"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_provider_and_service_against_a_local_alpha_vantage(server_url: str) -> None:
    provider = AlphaVantagePriceProvider(
        API_KEY,
        server_url,
        timeout=0.2,
        retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02),
    )
    backup = InMemoryPriceProvider({"SLOW": 99.0})
    async with PortfolioPriceService([provider, backup], max_concurrency=4) as service:
        result = await service.fetch_prices(["IBM", "MSFT", "BUSY", "SLOW"])
        assert result.prices["IBM"].price == 13.25
        assert result.prices["MSFT"].price == 14.25
        assert result.prices["BUSY"].price == 14.25  # 429 then success
        assert FakeAlphaVantage.hits["BUSY"] == 2
        slow = result.status["SLOW"]
        assert slow.provider == "memory"
        assert slow.state is PriceState.FETCHED
        assert "timed out" in slow.errors["alpha_vantage"]
        assert FakeAlphaVantage.hits["SLOW"] == 2  # one retry, then the fallback

        quota = await service.fetch_prices(["QUOTA"])
        assert quota.status["QUOTA"].state is PriceState.FAILED
        assert "daily quota" in quota.status["QUOTA"].errors["alpha_vantage"]
        after = await service.fetch_prices(["AAPL"])  # fails fast: the quota is spent
        assert "daily quota" in after.status["AAPL"].errors["alpha_vantage"]
        assert "AAPL" not in FakeAlphaVantage.hits
    assert FakeAlphaVantage.keys == {API_KEY}
    assert not provider._clients  # every fetch closed the client it opened


def test_one_provider_serves_event_loop_after_event_loop(server_url: str) -> None:
    # A script calling asyncio.run per account, or a threaded server, runs every fetch on a new
    # loop; a client kept from the first loop failed the second with "Event loop is closed".
    provider = AlphaVantagePriceProvider(API_KEY, server_url, retry=RetryPolicy(max_retries=0))
    service = PortfolioPriceService(provider)
    for symbol in ["IBM", "MSFT", "AAPL"]:
        prices = asyncio.run(service.get_current_prices([symbol]))
        assert prices[symbol].price == 10 + len(symbol) + 0.25
    results: dict[str, float] = {}

    def in_a_thread(symbol: str) -> None:
        results[symbol] = asyncio.run(provider.get_current_price(symbol)).price

    threads = [threading.Thread(target=in_a_thread, args=(s,)) for s in ["GE", "XOM", "NVDA"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"GE": 12.25, "XOM": 13.25, "NVDA": 14.25}
