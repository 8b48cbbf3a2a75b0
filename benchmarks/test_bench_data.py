"""Data-layer benchmarks: concurrent fetch against the ideal, and risk-model pipeline against numpy.

Run with ``pytest benchmarks/test_bench_data.py`` (not collected by the plain ``pytest`` run).
The 431-asset returns come from ``--shared-data`` (default ``../shared/data`` beside the
repository root); the pipeline benchmark is skipped, saying so, when that folder is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finwiz.data import (
    DateLike,
    PortfolioPriceService,
    PriceDataProvider,
    estimate_covariance,
    pca_factor_model,
)
from finwiz.errors import PriceDataError
from finwiz.schemas import PriceData

N_SYMBOLS, LATENCY, LIMIT = 500, 0.020, 10
N_FACTORS = 10


class LatencyProvider(PriceDataProvider):
    """A local mock source: every request (one symbol) answers after ``LATENCY`` seconds."""

    name = "mock"

    async def get_current_price(self, symbol: str) -> PriceData:
        await asyncio.sleep(LATENCY)
        return PriceData(symbol=symbol, price=100.0, source=self.name)

    async def fetch_history(
        self, symbols: Sequence[str], start: DateLike = None, end: DateLike = None
    ) -> tuple[pd.DataFrame, dict[str, PriceDataError]]:
        raise NotImplementedError


def test_fetch_500_symbols_with_limit_10(benchmark: Any) -> None:
    symbols = [f"SYM{i:03d}" for i in range(N_SYMBOLS)]

    def fetch() -> dict[str, PriceData]:
        # TTL 0: nothing is served from the cache, every round makes all 500 requests.
        service = PortfolioPriceService(LatencyProvider(), max_concurrency=LIMIT, cache_ttl_seconds=0)
        return asyncio.run(service.get_current_prices(symbols))

    async def bare_asyncio() -> None:
        # The floor on this machine: the same sleeps under a bare semaphore, no service at all.
        gate = asyncio.Semaphore(LIMIT)

        async def one() -> None:
            async with gate:
                await asyncio.sleep(LATENCY)

        await asyncio.gather(*(one() for _ in symbols))

    prices = benchmark.pedantic(fetch, rounds=5, iterations=1, warmup_rounds=1)
    assert len(prices) == N_SYMBOLS
    ideal = N_SYMBOLS * LATENCY / LIMIT
    floor = _best_of(lambda: asyncio.run(bare_asyncio()), repeats=3)
    ratio = benchmark.stats.stats.mean / ideal
    benchmark.extra_info.update(
        {"ideal_seconds": ideal, "ratio_to_ideal": round(ratio, 3), "bare_asyncio_seconds": floor}
    )
    print(
        f"\nfetch {N_SYMBOLS} symbols: mean {benchmark.stats.stats.mean:.3f} s, "
        f"ideal {ideal:.3f} s, ratio {ratio:.3f} (target < 1.2); bare asyncio {floor:.3f} s"
    )


@pytest.fixture(scope="module")
def returns_431(request: pytest.FixtureRequest) -> pd.DataFrame:
    path = Path(request.config.getoption("--shared-data")) / "sp500_431_returns.csv.gz"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path} (pass --shared-data=FOLDER holding it)")
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    return frame.drop(columns="USDOLLAR", errors="ignore")


def numpy_covariance_and_factors(x: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """The same maths in plain numpy: Ledoit-Wolf shrinkage, then a k-factor PCA model."""
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    mu = np.trace(s) / p
    d2 = np.sum(s**2) - 2 * mu * np.trace(s) + mu * mu * p
    b2 = (np.sum(np.einsum("ij,ij->i", xc, xc) ** 2) - n * np.sum(s**2)) / n**2
    delta = min(1.0, max(0.0, b2) / d2)
    sigma = (1 - delta) * s + delta * mu * np.eye(p)
    values, vectors = np.linalg.eigh(sigma)
    top, loadings = values[::-1][:k], vectors[:, ::-1][:, :k]
    idio = np.clip(np.diag(sigma) - (loadings**2) @ top, 0, None)
    return loadings, np.diag(top), idio


def finwiz_covariance_and_factors(returns: pd.DataFrame, k: int) -> Any:
    return pca_factor_model(estimate_covariance(returns, "ledoit_wolf"), k)


def _best_of(call: Callable[[], object], repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def _interleaved_best(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Best times of two calls run alternately, so machine load hits both alike."""
    pairs = [(_best_of(first, 1), _best_of(second, 1)) for _ in range(30)]
    return min(a for a, _ in pairs), min(b for _, b in pairs)


def test_covariance_and_factor_model_431_assets(benchmark: Any, returns_431: pd.DataFrame) -> None:
    x = returns_431.to_numpy()
    model = benchmark.pedantic(finwiz_covariance_and_factors, args=(returns_431, N_FACTORS), rounds=7, warmup_rounds=1)
    loadings, _, idio = numpy_covariance_and_factors(x, N_FACTORS)
    np.testing.assert_allclose(np.abs(model.loadings.to_numpy()), np.abs(loadings), atol=1e-8)
    np.testing.assert_allclose(model.idiosyncratic_variance.to_numpy(), idio, rtol=1e-8)
    ours, baseline = _interleaved_best(
        lambda: finwiz_covariance_and_factors(returns_431, N_FACTORS),
        lambda: numpy_covariance_and_factors(x, N_FACTORS),
    )
    ratio = ours / baseline
    benchmark.extra_info.update({"finwiz_best_seconds": ours, "numpy_best_seconds": baseline, "ratio_to_numpy": ratio})
    print(
        f"\ncovariance + {N_FACTORS}-factor model, {x.shape[1]} assets x {x.shape[0]} days: "
        f"finwiz {ours * 1e3:.1f} ms, numpy {baseline * 1e3:.1f} ms, "
        f"ratio {ratio:.3f} (target <= 1.2)"
    )
