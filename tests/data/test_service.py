"""PortfolioPriceService: limits, batching, fallback, cache, stale serving, progress, hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finwiz.data import (
    CSVPriceProvider,
    DateLike,
    InMemoryPriceProvider,
    PortfolioPriceService,
    PriceCache,
    PriceDataProvider,
    PriceState,
    SamplePriceProvider,
)
from finwiz.errors import ConfigurationError, InsufficientPriceDataError, PriceDataError
from finwiz.schemas import PriceData
from finwiz.settings import RebalancingSettings
from tests.data.conftest import make_prices


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording(PriceDataProvider):
    """Prices every symbol in ``prices`` after ``latency`` seconds; records load and batches."""

    name = "recording"

    def __init__(
        self,
        prices: dict[str, float],
        *,
        latency: float = 0.0,
        batch_size: int = 1,
        name: str = "recording",
        hang: bool = False,
    ) -> None:
        self.prices, self.latency, self.batch_size, self.name = prices, latency, batch_size, name
        self.hang = hang
        self.in_flight = self.peak = 0
        self.batches: list[list[str]] = []
        self.closed = False

    async def get_current_price(self, symbol: str) -> PriceData:
        if symbol not in self.prices:
            raise PriceDataError(symbol, "unknown symbol", provider=self.name)
        return PriceData(symbol=symbol, price=self.prices[symbol], source=self.name)

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
        self.batches.append(list(symbols))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hang:
                await asyncio.Event().wait()
            await asyncio.sleep(self.latency)
            return await super().fetch_prices(symbols)
        finally:
            self.in_flight -= 1

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


async def test_concurrency_limit_and_batching_are_respected() -> None:
    provider = Recording({f"S{i}": 1.0 + i for i in range(40)}, latency=0.01, batch_size=3)
    service = PortfolioPriceService(provider, max_concurrency=4)
    prices = await service.get_current_prices([f"S{i}" for i in range(40)])
    assert len(prices) == 40
    assert provider.peak == 4
    assert max(len(b) for b in provider.batches) == 3
    assert len(provider.batches) == 14


async def test_fallback_chain_records_status_and_reasons() -> None:
    primary = Recording({"AAA": 10.0}, name="primary")
    backup = Recording({"AAA": 99.0, "BBB": 20.0}, name="backup")
    service = PortfolioPriceService([primary, backup])
    result = await service.fetch_prices(["AAA", "bbb", "CCC", "AAA"])
    assert result.prices["AAA"].price == 10.0
    assert result.prices["BBB"].price == 20.0
    assert list(result.status) == ["AAA", "BBB", "CCC"]
    assert result.status["BBB"].provider == "backup"
    assert result.status["BBB"].errors == {"primary": "unknown symbol"}
    assert result.status["CCC"].state is PriceState.FAILED
    assert result.failures == {"CCC": "primary: unknown symbol; backup: unknown symbol"}
    with pytest.raises(InsufficientPriceDataError) as info:
        await service.get_current_prices(["AAA", "CCC", "DDD"])
    assert info.value.symbols == ["CCC", "DDD"]
    assert info.value.provider == "primary -> backup"


async def test_get_price_with_fallback() -> None:
    service = PortfolioPriceService([Recording({}, name="a"), Recording({"X": 5.0}, name="b")])
    assert (await service.get_price_with_fallback("x")).price == 5.0
    with pytest.raises(PriceDataError) as info:
        await service.get_price_with_fallback("Y")
    assert info.value.symbol == "Y"
    assert "a: unknown symbol; b: unknown symbol" in info.value.reason


async def test_hanging_provider_times_out_and_falls_back() -> None:
    hung = Recording({"X": 1.0}, hang=True, name="hung")
    service = PortfolioPriceService([hung, Recording({"X": 2.0})], provider_timeout_seconds=0.05)
    result = await service.fetch_prices(["X"])
    assert result.prices["X"].price == 2.0
    assert "no answer within 0.05 s" in result.status["X"].errors["hung"]


async def test_provider_bug_is_reported_per_symbol_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recording):
        async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
            raise RuntimeError("boom")

    service = PortfolioPriceService([Broken({}, name="broken"), Recording({"X": 3.0})])
    assert (await service.get_price_with_fallback("X")).price == 3.0
    assert "RuntimeError: boom" in service.last_status["X"].errors["broken"]
    assert "broken failed on X" in caplog.text


async def test_answer_for_another_symbol_is_not_accepted() -> None:
    class Confused(Recording):
        async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, PriceData | PriceDataError]:
            return {s: PriceData(symbol="OTHER", price=1.0) for s in symbols}

    service = PortfolioPriceService(Confused({}))
    result = await service.fetch_prices(["X"])
    assert result.failures == {"X": "recording: answered for OTHER instead"}


async def test_cache_serves_fresh_prices_then_refetches_after_ttl() -> None:
    clock = Clock()
    provider = Recording({"X": 1.0})
    service = PortfolioPriceService(provider, cache_ttl_seconds=300, clock=clock)
    await service.get_current_prices(["X"])
    clock.now += 299
    result = await service.fetch_prices(["X"])
    assert result.status["X"].state is PriceState.CACHED
    assert result.status["X"].age_seconds == 299
    assert len(provider.batches) == 1
    clock.now += 1
    result = await service.fetch_prices(["X"])
    assert result.status["X"].state is PriceState.FETCHED
    assert len(provider.batches) == 2


async def test_stale_price_only_when_asked_and_with_its_age() -> None:
    clock = Clock()
    provider = Recording({"X": 1.0})
    service = PortfolioPriceService(provider, cache_ttl_seconds=60, clock=clock)
    await service.get_current_prices(["X"])
    provider.prices.clear()  # the source goes away
    clock.now += 600
    with pytest.raises(InsufficientPriceDataError, match="X"):
        await service.get_current_prices(["X"])
    result = await service.fetch_prices(["X"], allow_stale=True)
    status = result.status["X"]
    assert (status.state, status.age_seconds, result.prices["X"].price) == (
        PriceState.STALE,
        600,
        1.0,
    )
    assert status.errors == {"recording": "unknown symbol"}


@given(
    ttl=st.floats(0, 1e4),
    steps=st.lists(st.tuples(st.booleans(), st.floats(0, 1e4)), max_size=20),
    allow_stale=st.booleans(),
)
def test_cache_never_serves_expired_entries_unless_asked(
    ttl: float, steps: list[tuple[bool, float]], allow_stale: bool
) -> None:
    clock = Clock()
    cache = PriceCache(ttl, clock=clock)
    stored_at: float | None = None
    for put, advance in steps:
        if put:
            cache.put(PriceData(symbol="X", price=1.0))
            stored_at = clock.now
        clock.now += advance
        hit = cache.get("X", allow_stale=allow_stale)
        if stored_at is None:
            assert hit is None
            continue
        age = clock.now - stored_at
        if age >= ttl and not allow_stale:
            assert hit is None
        else:
            assert hit is not None
            assert hit.age_seconds == pytest.approx(age)
            assert hit.stale == (age >= ttl)


async def test_progress_callback_counts_every_symbol_once() -> None:
    calls: list[tuple[int, int]] = []
    provider = Recording({f"S{i}": 1.0 for i in range(7)}, batch_size=2)
    service = PortfolioPriceService(provider, progress=lambda d, t: calls.append((d, t)))
    await service.fetch_prices([f"S{i}" for i in range(9)])
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (9, 9)
    assert {t for _, t in calls} == {9}


async def test_historical_prices_fall_back_per_symbol() -> None:
    history = make_prices(30, 3)
    first = InMemoryPriceProvider(history=history[["S0"]])
    second = InMemoryPriceProvider(history=history[["S1", "S2"]])
    service = PortfolioPriceService([first, second])
    frame = await service.get_historical_prices(["S2", "S0"], "2020-01-10")
    assert list(frame.columns) == ["S2", "S0"]
    pd.testing.assert_series_equal(frame["S2"], history.loc["2020-01-10":, "S2"], check_names=False, check_freq=False)
    assert (await service.get_historical_prices([])).empty
    with pytest.raises(InsufficientPriceDataError) as info:
        await service.get_historical_prices(["S0", "S9"])
    assert info.value.symbols == ["S9"]
    assert "memory: unknown symbol" in info.value.failures["S9"]


async def test_service_closes_its_providers() -> None:
    provider = Recording({"X": 1.0})
    async with PortfolioPriceService(provider) as service:
        await service.get_current_prices(["X"])
    assert provider.closed


async def test_from_settings_builds_the_chain(tmp_path: Path) -> None:
    service = PortfolioPriceService.from_settings(RebalancingSettings(price_provider="sample"))
    assert isinstance(service.providers[0], SamplePriceProvider)
    assert service.cache.ttl_seconds == 300
    assert (await service.get_price_with_fallback("KO")).price > 0
    with pytest.raises(ConfigurationError, match="CSV_PRICE_PATH"):
        PortfolioPriceService.from_settings(RebalancingSettings(price_provider="csv"))
    path = tmp_path / "p.csv"
    path.write_text("Date,AAA\n2024-01-02,5\n")
    built = PortfolioPriceService.from_settings(RebalancingSettings(price_provider="csv", csv_price_path=str(path)))
    assert isinstance(built.providers[0], CSVPriceProvider)
    assert datetime(2024, 1, 2, tzinfo=UTC) == (await built.get_price_with_fallback("AAA")).timestamp


def test_one_provider_registry_for_settings_service_and_factory() -> None:
    from typing import get_args

    import finwiz.orchestrator
    from finwiz.data import PRICE_PROVIDERS, provider_from_name
    from finwiz.service._factory import RebalancingServiceFactory
    from finwiz.settings import ProviderName

    assert finwiz.orchestrator.PRICE_PROVIDERS is PRICE_PROVIDERS
    assert set(get_args(ProviderName)) == set(PRICE_PROVIDERS)  # settings validate the same names
    settings = RebalancingSettings(_env_file=None)  # type: ignore[call-arg]
    assert isinstance(provider_from_name("sample", settings), SamplePriceProvider)
    for build in (provider_from_name, lambda name, s: RebalancingServiceFactory(s).create_provider(name)):
        with pytest.raises(ConfigurationError, match="unknown price provider 'bloomberg'; choose one of yahoo"):
            build("bloomberg", settings)


@pytest.mark.parametrize("history", [False, True])
async def test_prices_and_history_walk_the_same_fallback_chain(history: bool) -> None:
    class Backup(InMemoryPriceProvider):
        name = "backup"

    frame = make_prices(n_days=10, n_assets=4)
    first = InMemoryPriceProvider(frame.iloc[-1][["S1"]], history=frame[["S1"]])
    second = Backup(frame.iloc[-1][["S1", "S2"]] * 2, history=frame[["S1", "S2"]] * 2)
    service = PortfolioPriceService([first, second])
    fetch = service.get_historical_prices if history else service.get_current_prices
    with pytest.raises(InsufficientPriceDataError) as info:
        await fetch(["S1", "S2", "S3"])
    # S3: every provider in chain order gave its reason; S1 and S2 were found.
    assert list(info.value.failures) == ["S3"]
    reason = info.value.failures["S3"]
    assert reason.startswith("memory: ")
    assert reason.index("memory: ") < reason.index("; backup: ")
    service = PortfolioPriceService([first, second])  # a fresh cache
    if history:
        got = await service.get_historical_prices(["S1", "S2"])
        pd.testing.assert_series_equal(got["S1"], frame["S1"], check_names=False, check_freq=False)
        pd.testing.assert_series_equal(got["S2"], frame["S2"] * 2, check_names=False, check_freq=False)
    else:
        prices = await service.get_current_prices(["S1", "S2"])
        assert prices["S1"].price == pytest.approx(frame["S1"].iloc[-1])  # the first provider answers
        assert prices["S2"].price == pytest.approx(frame["S2"].iloc[-1] * 2)  # the fallback answers
        assert service.last_status["S2"].provider == "backup"
        assert service.last_status["S2"].errors.keys() == {"memory"}
