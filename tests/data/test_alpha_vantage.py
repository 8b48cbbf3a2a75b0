"""Alpha Vantage: every HTTP-200 error shape, retries, Retry-After, quota, strict fields, key."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finwiz.data import AlphaVantagePriceProvider, RetryPolicy
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from finwiz.settings import RebalancingSettings
from tests.data.conftest import (
    API_KEY,
    AV_BURST,
    AV_ERROR,
    AV_NOTE,
    AV_PREMIUM,
    AV_QUOTA,
    Handler,
    Sleeps,
    av_daily,
    av_quote,
)

Build = Callable[..., AlphaVantagePriceProvider]


def script(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


async def test_quote_is_parsed_strictly_and_key_stays_on_the_wire(
    alpha_vantage: Build, caplog: pytest.LogCaptureFixture
) -> None:
    handler, seen = script(ok(av_quote("IBM")))
    caplog.set_level(logging.DEBUG)
    async with alpha_vantage(handler) as provider:
        price = await provider.get_current_price("ibm")
    assert price.price == 123.45
    assert price.volume == 4123456.0
    assert price.source == "alpha_vantage"
    assert price.timestamp == datetime(2024, 1, 5, tzinfo=UTC)
    params = seen[0].url.params
    assert (params["function"], params["symbol"], params["apikey"]) == (
        "GLOBAL_QUOTE",
        "IBM",
        API_KEY,
    )
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(provider)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (AV_ERROR, "rejected: Invalid API call"),
        (AV_PREMIUM, "refused: Thank you"),
        ({"Global Quote": {}}, "unknown symbol"),
        (av_quote("IBM", price="0.0000"), "not positive"),
        (av_quote("IBM", price="N/A"), "'N/A' is not a plain decimal"),
        (av_quote("IBM", price="1,234.50"), "not a plain decimal"),
        (av_quote("IBM", price="-3.2"), "not positive"),
        (av_quote("MSFT"), "payload is for 'MSFT'"),
        (av_quote("IBM", day="yesterday"), "bad date"),
        ({"Global Quote": {"01. symbol": "IBM"}}, "lacks price"),
        ({"Time Series (Daily)": {}}, "unexpected payload"),
    ],
)
async def test_error_shapes_are_final_and_never_a_price(
    alpha_vantage: Build, body: dict[str, Any], reason: str
) -> None:
    handler, seen = script(ok(body))
    provider = alpha_vantage(handler)
    with pytest.raises(PriceDataError) as info:
        await provider.get_current_price("IBM")
    assert info.value.symbol == "IBM"
    assert info.value.provider == "alpha_vantage"
    assert reason in info.value.reason
    assert len(seen) == 1  # final: not retried


async def test_daily_quota_is_final_redacted_and_stops_further_calls(alpha_vantage: Build) -> None:
    handler, seen = script(ok(AV_QUOTA))
    provider = alpha_vantage(handler)
    with pytest.raises(InsufficientPriceDataError) as info:
        await provider.get_multiple_prices(["IBM"])
    assert "daily quota" in info.value.failures["IBM"]
    assert API_KEY not in str(info.value)
    with pytest.raises(PriceDataError, match="daily quota"):
        await provider.get_current_price("MSFT")
    assert len(seen) == 1  # the second symbol never reached the server


@pytest.mark.parametrize("throttle", [AV_NOTE, AV_BURST])
async def test_throttle_messages_are_retried(alpha_vantage: Build, sleeps: Sleeps, throttle: dict[str, str]) -> None:
    handler, seen = script(ok(throttle), ok(av_quote("IBM")))
    price = await alpha_vantage(handler).get_current_price("IBM")
    assert price.price == 123.45
    assert len(seen) == 2
    assert len(sleeps.delays) == 1


async def test_429_honours_retry_after(alpha_vantage: Build, sleeps: Sleeps) -> None:
    handler, seen = script(httpx.Response(429, headers={"Retry-After": "2"}), ok(av_quote("IBM")))
    assert (await alpha_vantage(handler).get_current_price("IBM")).price == 123.45
    assert sleeps.delays[0] >= 2.0
    assert len(seen) == 2


async def test_retry_after_beyond_the_cap_fails_at_once(alpha_vantage: Build) -> None:
    handler, seen = script(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(PriceDataError, match="wait 3600 s"):
        await alpha_vantage(handler).get_current_price("IBM")
    assert len(seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
    ],
)
async def test_transient_failures_retry_then_give_up(
    alpha_vantage: Build, sleeps: Sleeps, failure: httpx.Response | Exception
) -> None:
    handler, seen = script(failure)
    with pytest.raises(PriceDataError, match="gave up after 3 attempts"):
        await alpha_vantage(handler).get_current_price("IBM")
    assert len(seen) == 3
    assert len(sleeps.delays) == 2
    assert sleeps.delays[0] <= sleeps.delays[1] * 2 + 1e-9


async def test_transient_failure_then_success(alpha_vantage: Build) -> None:
    handler, seen = script(httpx.ConnectError("refused"), ok(av_quote("IBM")))
    assert (await alpha_vantage(handler).get_current_price("IBM")).price == 123.45
    assert len(seen) == 2


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401),
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
async def test_client_errors_and_non_json_are_final(alpha_vantage: Build, response: httpx.Response) -> None:
    handler, seen = script(response)
    with pytest.raises(PriceDataError):
        await alpha_vantage(handler).get_current_price("IBM")
    assert len(seen) == 1


async def test_daily_history_parsed_sorted_and_sliced(alpha_vantage: Build) -> None:
    closes = {"2024-01-02": "10.5", "2024-01-03": "11.0", "2024-01-04": "11.5"}
    handler, seen = script(ok(av_daily("IBM", closes)))
    frame = await alpha_vantage(handler).get_historical_prices(["IBM"], "2024-01-03")
    assert frame["IBM"].tolist() == [11.0, 11.5]
    assert seen[0].url.params["function"] == "TIME_SERIES_DAILY"


async def test_daily_history_with_a_bad_close_refuses_the_symbol(alpha_vantage: Build) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        symbol = request.url.params["symbol"]
        if symbol == "BAD":
            return ok(av_daily("BAD", {"2024-01-02": "10", "2024-01-03": "N/A"}))
        return ok(av_daily(symbol, {"2024-01-02": "10"}))

    frame, failures = await alpha_vantage(handler).fetch_history(["IBM", "BAD"])
    assert list(frame.columns) == ["IBM"]
    assert "N/A" in failures["BAD"].reason
    assert "2024-01-03" in failures["BAD"].reason


def test_key_is_required_and_read_from_settings() -> None:
    with pytest.raises(ConfigurationError):
        AlphaVantagePriceProvider("  ")
    with pytest.raises(ConfigurationError):
        AlphaVantagePriceProvider.from_settings(RebalancingSettings(alpha_vantage_api_key=None))
    provider = AlphaVantagePriceProvider.from_settings(
        RebalancingSettings(alpha_vantage_api_key="k", max_retries=5, request_timeout_seconds=3)
    )
    assert provider.retry.max_retries == 5
    assert provider.timeout == 3


@given(
    attempt=st.integers(0, 20),
    retry_after=st.one_of(st.none(), st.floats(0, 100)),
    seed=st.integers(0, 1000),
)
def test_backoff_is_capped_jittered_and_honours_retry_after(attempt: int, retry_after: float | None, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    wait = policy.delay(attempt, retry_after, random.Random(seed))
    ceiling = min(8.0, 0.5 * 2**attempt)
    if retry_after is None:
        assert ceiling / 2 <= wait <= ceiling
    else:
        assert wait >= retry_after
        assert wait <= max(ceiling, retry_after)


@pytest.mark.parametrize("field", ["Error Message", "Note"])  # final; retried (logged), then final
async def test_a_key_echoed_back_in_any_encoding_is_redacted(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    # A server that echoes the request URL puts the key there URL-encoded ("+" as %2B, "/" as
    # %2F, "=" as %3D): redacting only the raw key let it through in errors and log lines.
    key = "Ab+c/d=e f=="
    forms = {key, quote(key), quote(key, safe=""), quote_plus(key), quote_plus(key, safe="/")}

    def echo(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        text = f"bad request {url} (key {quote(key, safe='')} / {quote_plus(key)} / {key})"
        return httpx.Response(200, json={field: text.replace("%2F", "%2f")})

    caplog.set_level(logging.DEBUG)
    provider = AlphaVantagePriceProvider(
        key, transport=httpx.MockTransport(echo), sleep=sleeps, retry=RetryPolicy(max_retries=1)
    )
    async with provider:
        with pytest.raises(PriceDataError) as caught:
            await provider.get_current_price("IBM")
    text = f"{caught.value} {caught.value.reason} {caplog.text}"
    assert "***" in text
    for form in forms:  # percent-escapes in either case
        assert form.lower() not in text.lower(), form
