"""The real Alpha Vantage provider and the service against a real HTTP server on 127.0.0.1.

The server runs in a thread of the test process and answers like Alpha Vantage: good quotes,
the daily-quota message, 429 with Retry-After, and replies slower than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    hits: dict[str, int] = {}
    keys: set[str] = set()

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
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a slow reply, as it should

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # keep test output quiet
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
        assert result.prices["IBM"].price == 13.25 and result.prices["MSFT"].price == 14.25
        assert result.prices["BUSY"].price == 14.25  # 429 then success
        assert FakeAlphaVantage.hits["BUSY"] == 2
        slow = result.status["SLOW"]
        assert slow.provider == "memory" and slow.state is PriceState.FETCHED
        assert "timed out" in slow.errors["alpha_vantage"]
        assert FakeAlphaVantage.hits["SLOW"] == 2  # one retry, then the fallback

        quota = await service.fetch_prices(["QUOTA"])
        assert quota.status["QUOTA"].state is PriceState.FAILED
        assert "daily quota" in quota.status["QUOTA"].errors["alpha_vantage"]
        after = await service.fetch_prices(["AAPL"])  # fails fast: the quota is spent
        assert "daily quota" in after.status["AAPL"].errors["alpha_vantage"]
        assert "AAPL" not in FakeAlphaVantage.hits
    assert FakeAlphaVantage.keys == {API_KEY}
    assert provider._client.is_closed
