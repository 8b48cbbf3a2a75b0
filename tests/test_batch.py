"""rebalance_many: order, failure isolation, executors (in process, process pool, Dask)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finwiz import Holding, PortfolioConfiguration
from finwiz.batch import AccountOutcome, BatchResult, iter_rebalance_many, rebalance_many
from finwiz.data.sample import sample_latest_prices, sample_sectors
from finwiz.errors import ConfigurationError
from finwiz.optimizer import rebalance
from tests._unloadable import NotLoadableInWorker
from tests._worker_killer import InterruptsItsWorker, KillsItsWorker

try:
    import distributed
except ImportError:  # pragma: no cover - dask is in the dev extra; CI must have it
    if os.environ.get("CI"):
        raise
    distributed = None

needs_dask = pytest.mark.skipif(distributed is None, reason="dask[distributed] is not installed (finwiz[dask])")

PRICES = sample_latest_prices()
SECTORS = sample_sectors().to_dict()
SYMBOLS = list(PRICES.index)


def account(seed: int, **overrides: Any) -> PortfolioConfiguration:
    """A drifted 20-stock account: random holdings, equal-weight target, sector cap, turnover cap."""
    rng = np.random.default_rng(seed)
    shares = rng.integers(5, 60, len(SYMBOLS))
    fields: dict[str, Any] = {
        "holdings": [Holding(symbol=s, shares=float(q)) for s, q in zip(SYMBOLS, shares, strict=True)],
        "target_weights": dict.fromkeys(SYMBOLS, 0.049),
        "cash": float(rng.uniform(0, 20_000)),
        "tolerance": 0.0,
        "min_trade_size": 0.0,
        "sectors": SECTORS,
        "max_sector_weight": 0.35,
        "max_turnover": 0.8,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


def infeasible_account() -> PortfolioConfiguration:
    # 30 % must be raised in cash but turnover may not exceed 1 %.
    return account(99, cash=0.0, min_cash_weight=0.3, max_turnover=0.01)


def missing_symbol_account() -> PortfolioConfiguration:
    return account(
        7, target_weights={**dict.fromkeys(SYMBOLS, 0.045), "ZZZZ": 0.05}, sectors={**SECTORS, "ZZZZ": "Energy"}
    )


def same_trades(a: Any, b: Any) -> bool:
    return bool(a.post_trade_holdings == b.post_trade_holdings and abs(a.cash_after - b.cash_after) < 1e-9)


@pytest.fixture
def mixed_batch() -> list[Any]:
    return [
        account(1),
        infeasible_account(),
        account(2),
        missing_symbol_account(),
        {"holdings": [], "target_weights": {"AAPL": 1.5}},  # bad data: refused, by this account only
        account(3),
    ]


def check_mixed(batch: BatchResult) -> None:
    assert [o.index for o in batch] == list(range(6))
    assert [o.ok for o in batch] == [True, False, True, False, False, True]
    assert batch[1].error_type == "InfeasibleRebalanceError"
    assert "turnover_cap" in (batch[1].error or "")
    assert batch[3].error_type == "InsufficientPriceDataError"
    assert "ZZZZ" in (batch[3].error or "")
    assert batch[4].error_type == "InvalidPortfolioError"
    assert "target_weights" in (batch[4].error or "")
    for outcome in batch.successes:
        assert outcome.result is not None
        assert outcome.result.is_compliant
        assert outcome.result.max_constraint_residual <= 1e-6


# --------------------------------------------------------------------------- in process


def test_order_is_preserved_and_results_equal_one_by_one() -> None:
    configs = [account(seed) for seed in range(5)]
    ids = [f"acct-{seed}" for seed in range(5)]
    batch = rebalance_many(configs, PRICES, portfolio_ids=ids, progress=False)
    assert isinstance(batch, BatchResult)
    assert [o.portfolio_id for o in batch] == ids
    assert [o.index for o in batch] == list(range(5))
    for config, outcome in zip(configs, batch, strict=True):
        assert outcome.result is not None
        assert outcome.result.portfolio_id == outcome.portfolio_id
        assert same_trades(outcome.result, rebalance(config, PRICES))


def test_one_failure_never_stops_the_others(mixed_batch: list[Any]) -> None:
    batch = rebalance_many(mixed_batch, PRICES, progress=False)
    check_mixed(batch)
    assert len(batch.successes) == 3
    assert len(batch.failures) == 3
    summary = batch.summary()
    assert "6 accounts: 3 rebalanced, 3 failed" in summary
    assert "#3: InsufficientPriceDataError" in summary
    assert "ZZZZ" in summary
    assert "InfeasibleRebalanceError 1" in summary


def test_mapping_of_accounts_names_failures_by_id() -> None:
    batch = rebalance_many({"alice": account(1), "bob": missing_symbol_account()}, PRICES.to_dict(), progress=False)
    assert [o.portfolio_id for o in batch] == ["alice", "bob"]
    assert batch.failures[0].label == "bob"
    assert "bob: InsufficientPriceDataError" in batch.summary()


def test_empty_batch_returns_an_empty_result() -> None:
    calls: list[tuple[int, int]] = []
    batch = rebalance_many([], PRICES, progress=lambda done, total: calls.append((done, total)))
    assert len(batch) == 0
    assert batch.successes == []
    assert batch.failures == []
    assert batch.summary().startswith("0 accounts: 0 rebalanced, 0 failed")
    assert batch.to_frame().empty
    assert calls == [(0, 0)]


def test_progress_callback_counts_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    rebalance_many([account(s) for s in range(4)], PRICES, chunk_size=1, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_progress_bar_draws_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    rebalance_many([account(1), account(2)], PRICES)
    out, err = capsys.readouterr()
    assert out == ""  # the bar never touches stdout
    assert "rebalance_many: 100%" in err  # tqdm's bar, closed at the total
    assert "2/2" in err
    assert "account" in err  # tqdm's unit
    assert err.endswith("\n")


def test_no_progress_output_when_off(capsys: pytest.CaptureFixture[str]) -> None:
    rebalance_many([account(1)], PRICES, progress=False)
    list(iter_rebalance_many([account(1)], PRICES, progress=False))
    assert capsys.readouterr() == ("", "")


def test_an_abandoned_stream_closes_its_bar(capsys: pytest.CaptureFixture[str]) -> None:
    stream = iter_rebalance_many([account(s) for s in range(3)], PRICES, chunk_size=1)
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    out, err = capsys.readouterr()
    assert out == ""
    assert "1/3" in err
    assert err.endswith("\n")


def test_to_frame_has_one_row_per_account(mixed_batch: list[Any]) -> None:
    frame = rebalance_many(mixed_batch, PRICES, progress=False).to_frame()
    assert list(frame.index) == list(range(6))
    assert frame["ok"].tolist() == [True, False, True, False, False, True]
    assert frame.loc[3, "error_type"] == "InsufficientPriceDataError"
    assert frame.loc[0, "trades"] > 0


def test_per_account_prices() -> None:
    cheaper = (PRICES * 0.9).to_dict()
    configs = [account(1), account(1)]
    batch = rebalance_many(configs, [PRICES, cheaper], progress=False)
    assert all(o.ok for o in batch)
    first, second = batch.results
    assert first is not None
    assert second is not None
    assert first.prices["AAPL"] != second.prices["AAPL"]
    assert same_trades(second, rebalance(configs[1], cheaper))


def test_streaming_yields_in_input_order() -> None:
    configs = [account(s) for s in range(4)]
    stream = iter_rebalance_many(configs, PRICES, chunk_size=1, progress=False)
    assert isinstance(stream, Iterator)
    outcomes = list(stream)
    assert all(isinstance(o, AccountOutcome) for o in outcomes)
    assert [o.index for o in outcomes] == [0, 1, 2, 3]


def test_options_reach_every_account() -> None:
    batch = rebalance_many([account(1), account(2)], PRICES, solver="OSQP", progress=False)
    assert all(o.ok for o in batch)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "threads"}, "executor must be"),
        ({"prices": [PRICES]}, "price tables for 2 accounts"),
        ({"prices": 3.0}, "prices must be"),
        ({"portfolio_ids": ["a"]}, "portfolio_ids has 1"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"progress": "yes"}, "progress must be"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"prices": PRICES, "progress": False, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        rebalance_many([account(1), account(2)], **args)


def test_configs_must_be_a_collection() -> None:
    with pytest.raises(ConfigurationError, match="configs must be"):
        rebalance_many(account(1), PRICES)  # type: ignore[arg-type]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    chunk=st.integers(1, 3),
    cap=st.sampled_from([None, 0.3, 0.6]),
)
def test_batch_equals_one_by_one(seeds: list[int], chunk: int, cap: float | None) -> None:
    configs = [account(s, max_turnover=cap) for s in seeds]
    batch = rebalance_many(configs, PRICES, chunk_size=chunk, progress=False)
    for config, outcome in zip(configs, batch, strict=True):
        alone: Any
        try:
            alone = rebalance(config, PRICES)
        except Exception as exc:
            alone = exc
        if isinstance(alone, Exception):
            assert outcome.error_type == type(alone).__name__
            continue
        assert outcome.result is not None
        assert same_trades(outcome.result, alone)


# --------------------------------------------------------------------------- executors


def test_user_thread_pool() -> None:
    with cf.ThreadPoolExecutor(2) as pool:
        batch = rebalance_many(
            [account(1), missing_symbol_account(), account(2)], PRICES, executor=pool, progress=False
        )
    assert [o.ok for o in batch] == [True, False, True]
    assert batch.executor == "ThreadPoolExecutor"


def test_process_pool(mixed_batch: list[Any]) -> None:
    local = rebalance_many(mixed_batch, PRICES, progress=False)
    pooled = rebalance_many(mixed_batch, PRICES, executor="processes", max_workers=2, chunk_size=2, progress=False)
    assert pooled.executor == "processes"
    assert pooled.workers == 2
    check_mixed(pooled)
    for a, b in zip(local, pooled, strict=True):
        assert a.ok == b.ok
        if a.result is not None and b.result is not None:
            assert same_trades(a.result, b.result)


def small_account(i: int, **overrides: Any) -> PortfolioConfiguration:
    """Two assets: quick to compile in every fresh worker process."""
    return PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=10 + i), Holding(symbol="BBB", shares=5)],
        target_weights={"AAA": 0.5, "BBB": 0.5},
        cash=100.0 * i,
        tolerance=0.0,
        min_trade_size=0.0,
        **overrides,
    )


def on_two_workers(configs: dict[str, PortfolioConfiguration], prices: dict[str, float], own_pool: bool) -> BatchResult:
    """The batch on two worker processes in chunks of two: ``rebalance_many``'s pool, or one of the caller's."""
    options: dict[str, Any] = {"max_workers": 2, "chunk_size": 2, "progress": False}
    if own_pool:
        with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
            return rebalance_many(configs, prices, executor=pool, **options)
    return rebalance_many(configs, prices, executor="processes", **options)


@pytest.mark.parametrize("own_pool", [False, True], ids=["processes", "user-process-pool"])
def test_an_account_a_worker_cannot_load_fails_by_name_and_the_others_return(own_pool: bool) -> None:
    # A custom constraint a worker cannot import (a class defined in a notebook): only the account
    # using it fails, saying why, where a failed load of its task used to kill the worker, so that
    # it failed as a dead worker after three runs on fresh pools.
    prices = {"AAA": 10.0, "BBB": 20.0}
    configs = {f"acct-{i}": small_account(i) for i in range(4)}
    configs["acct-1"] = small_account(1, custom_constraints=[NotLoadableInWorker()])
    batch = on_two_workers(configs, prices, own_pool)
    assert [o.label for o in batch.failures] == ["acct-1"]
    (failed,) = batch.failures
    assert failed.error_type == "ConfigurationError"
    assert failed.error is not None
    assert "could not load this account's inputs" in failed.error
    assert "NotLoadableInWorker" in failed.error
    assert all(o.result is not None for o in batch if o.label != "acct-1")


def test_shared_options_a_worker_cannot_load_fail_every_account_saying_why() -> None:
    configs = {f"acct-{i}": small_account(i) for i in range(3)}
    batch = rebalance_many(
        configs,
        {"AAA": 10.0, "BBB": 20.0},
        executor="processes",
        max_workers=2,
        progress=False,
        market_impact=NotLoadableInWorker(),
    )
    assert len(batch.failures) == 3
    for failed in batch.failures:
        assert failed.error_type == "ConfigurationError"
        assert failed.error is not None
        assert "could not load the batch's shared inputs" in failed.error


@pytest.mark.parametrize("own_pool", [False, True], ids=["processes", "user-process-pool"])
def test_a_worker_killed_mid_batch_fails_only_its_account(own_pool: bool) -> None:
    # One account's constraint ends its worker process (as the OOM killer would): the pool breaks
    # and every pending chunk is lost. The lost accounts run again on a fresh pool, one per task;
    # the account that kills its worker again is the only failure, named, and the others return.
    prices = {"AAA": 10.0, "BBB": 20.0}
    configs = {f"acct-{i}": small_account(i) for i in range(6)}
    configs["acct-3"] = small_account(3, custom_constraints=[KillsItsWorker()])
    batch = on_two_workers(configs, prices, own_pool)
    assert [o.label for o in batch.failures] == ["acct-3"]
    (dead,) = batch.failures
    assert dead.error_type == "BrokenProcessPool"
    assert dead.error is not None
    assert "account acct-3: the worker process died" in dead.error
    healthy = {k: v for k, v in configs.items() if k != "acct-3"}
    for outcome in rebalance_many(healthy, prices, progress=False):
        assert same_trades(outcome.result, next(o.result for o in batch if o.label == outcome.label))


class BreaksAfterOneChunk(cf.Executor):
    """A process pool whose worker dies while the batch is still submitting chunks."""

    _max_workers = 2

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.submitted += 1
        if self.submitted > 1:
            raise BrokenProcessPool("A child process terminated abruptly")
        future: cf.Future[Any] = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_a_pool_broken_while_chunks_are_submitted_loses_no_account() -> None:
    configs = [small_account(i) for i in range(5)]
    pool = BreaksAfterOneChunk()
    batch = rebalance_many(configs, {"AAA": 10.0, "BBB": 20.0}, executor=pool, chunk_size=2, progress=False)
    assert pool.submitted == 2
    assert [o.ok for o in batch] == [True] * 5  # chunk 1 here, the rest on fresh pools


def test_ctrl_c_in_a_worker_stops_the_batch() -> None:
    # KeyboardInterrupt is not one account's failure: the batch stops instead of going on.
    configs = [small_account(i) for i in range(4)]
    configs[1] = small_account(1, custom_constraints=[InterruptsItsWorker()])
    with pytest.raises(KeyboardInterrupt):
        rebalance_many(configs, {"AAA": 10.0, "BBB": 20.0}, executor="processes", max_workers=2, progress=False)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    assert distributed is not None
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


DASK_WARNINGS = [
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
    "ignore:.*[Pp]ort.*:UserWarning",
]


def dask_marks(func: Any) -> Any:
    for mark in DASK_WARNINGS:
        func = pytest.mark.filterwarnings(mark)(func)
    return needs_dask(func)


@dask_marks
def test_dask_local_cluster(dask_client: Any, mixed_batch: list[Any]) -> None:
    batch = rebalance_many(mixed_batch, PRICES, executor=dask_client, chunk_size=2, progress=False)
    assert batch.executor == "dask"
    assert batch.workers == 2
    check_mixed(batch)
    local = rebalance_many(mixed_batch, PRICES, progress=False)
    for a, b in zip(local, batch, strict=True):
        if a.result is not None and b.result is not None:
            assert same_trades(a.result, b.result)


@dask_marks
def test_dask_cache_lives_per_worker(dask_client: Any) -> None:
    from finwiz.optimizer import cache_info

    rebalance_many([account(s) for s in range(8)], PRICES, executor=dask_client, chunk_size=2, progress=False)
    infos = dask_client.run(cache_info)
    assert len(infos) == 2
    assert sum(i["hits"] for i in infos.values()) >= 4  # like accounts reuse each worker's compiled problem


@dask_marks
def test_closed_dask_client_is_refused_before_any_work() -> None:
    assert distributed is not None
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        client = distributed.Client(cluster)
        client.close()
        with pytest.raises(ConfigurationError, match="closed"):
            rebalance_many([account(1)], PRICES, executor=client, progress=False)
        with pytest.raises(ConfigurationError, match="closed"):
            iter_rebalance_many([account(1)], PRICES, executor=client, progress=False)


_SCRIPT_HEAD = """
from finwiz import PortfolioConfiguration
from finwiz.batch import rebalance_many

def run():
    configs = [
        PortfolioConfiguration(holdings=[{"symbol": "AAA", "shares": 10 + i}], target_weights={"AAA": 0.5}, cash=100.0)
        for i in range(4)
    ]
    batch = rebalance_many(configs, {"AAA": 10.0}, executor="processes", max_workers=2, progress=False)
    print(batch.summary().splitlines()[0])
"""


@pytest.mark.parametrize(
    ("tail", "refused"),
    [
        ("run()\n", True),  # the user's mistake: the batch runs at import time
        ("if True:\n    run()\n", True),
        ('if __name__ == "__main__":\n    run()\n', False),
        ("if '__main__' == __name__:\n    run()\n", False),
    ],
)
def test_a_process_pool_from_an_unguarded_script_is_one_clear_error(tmp_path: Path, tail: str, refused: bool) -> None:
    script = tmp_path / "batch_script.py"
    script.write_text(_SCRIPT_HEAD + tail, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False
    )
    if refused:
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.count("BrokenProcessPool") == 1  # named once, in the hint, never raised
        assert done.stderr.count("finwiz.errors.ConfigurationError: ") == 1  # one error, raised once
        assert 'if __name__ == "__main__":' in done.stderr
        assert str(script) in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("4 accounts: 4 rebalanced, 0 failed")
        assert "BrokenProcessPool" not in done.stderr
