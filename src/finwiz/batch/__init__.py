"""Many accounts per run: in process, on a local process pool, or on a Dask cluster.

:func:`rebalance_many` rebalances a batch of accounts and returns a :class:`BatchResult` with
one :class:`AccountOutcome` per account, in input order. One account's failure (infeasible
limits, a symbol missing from the price table, a malformed configuration) is recorded for that
account with the :class:`~finwiz.errors.FinwizError` message and never stops or loses the others.
On a process pool that holds for a worker process that dies too (the OOM killer, a signal, a
crash in native code): the accounts of the chunks lost with it run again on a fresh pool, and
only an account that kills its worker when run alone fails (``BrokenProcessPool``, naming it).
``KeyboardInterrupt`` is not a failure: it stops the batch.

Speed comes from the optimizer's compiled-problem cache, which lives per process: accounts are
sent to workers in *chunks* (never one task per account), grouped so that accounts of the same
problem structure land in the same chunk, and every account after the first of a structure in a
worker skips canonicalization and only sets Parameter values. Shared inputs (prices, a factor
model) are shipped once per worker, not once per account.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finwiz.batch._executors import (
    _check_dask_client,
    _check_main_guard,
    _dask,
    _executor_name,
    _local,
    _own_pool,
    _user_pool,
)
from finwiz.batch._work import AccountOutcome, BatchResult, _Account, _collector_paused, _Shared
from finwiz.errors import ConfigurationError
from finwiz.schemas import PortfolioConfiguration

__all__ = ["AccountOutcome", "BatchResult", "iter_rebalance_many", "rebalance_many"]

Progress = bool | Callable[[int, int], object]

_MAX_CHUNK = 256
_MIN_CHUNK = 4  # below this a chunk's round trip starts to count against ~15 ms accounts
_CHUNKS_PER_WORKER = 4  # the share of the remaining accounts a chunk takes: load balance and progress


# --------------------------------------------------------------------------- planning


def _structure_hint(config: Any) -> Hashable:
    """A cheap guess of the compiled problem's shape, to keep like accounts in one chunk.

    Only an ordering heuristic: the optimizer's own cache key decides what is reused.
    """
    if not isinstance(config, PortfolioConfiguration):
        return ("?",)
    symbols = config.symbols
    sectors = tuple(config.sectors.get(s, "") for s in symbols) if config.sector_constrained else ()
    return (
        str(config.method),
        len(symbols),
        sectors,
        config.max_position_weight is not None or bool(config.max_position_weights),
        bool(config.min_position_weights),
        config.esg_constrained,
        config.max_turnover is None,
    )


def _guided_size(remaining: int, workers: int) -> int:
    """Chunks shrink as the batch runs out, so the workers finish together: a worker that drew
    the last large chunk no longer leaves the others idle (accounts vary 3x in time)."""
    return max(_MIN_CHUNK, min(_MAX_CHUNK, -(-remaining // (workers * _CHUNKS_PER_WORKER))))


def _chunks(accounts: Sequence[_Account], workers: int, chunk_size: int | None) -> list[list[_Account]]:
    groups: dict[Hashable, list[_Account]] = {}
    for account in accounts:
        groups.setdefault(_structure_hint(account.config), []).append(account)
    out: list[list[_Account]] = []
    for group in groups.values():
        start = 0
        while start < len(group):
            # sized by the accounts left from this chunk's first one on, as chunks run in that order
            size = chunk_size or _guided_size(len(accounts) - group[start].index, workers)
            out.append(group[start : start + size])
            start += size
    out.sort(key=lambda chunk: chunk[0].index)  # earliest accounts first, so results stream early
    return out


def _accounts(
    configs: Sequence[Any] | Mapping[str, Any],
    prices: Any,
    portfolio_ids: Sequence[str | None] | None,
) -> tuple[list[_Account], Any]:
    if isinstance(configs, Mapping):
        ids: list[str | None] = [str(k) for k in configs]
        items = list(configs.values())
    elif isinstance(configs, Sequence) and not isinstance(configs, str | bytes):
        items = list(configs)
        ids = [None] * len(items)
    else:
        raise ConfigurationError("configs must be a sequence of PortfolioConfiguration or a mapping id -> config")
    if portfolio_ids is not None:
        if len(portfolio_ids) != len(items):
            raise ConfigurationError(f"portfolio_ids has {len(portfolio_ids)} entries for {len(items)} accounts")
        ids = [None if p is None else str(p) for p in portfolio_ids]
    per_account: list[Any] = [None] * len(items)
    shared_prices: Any = prices
    if _is_price_table(prices):
        pass
    elif isinstance(prices, Sequence) and not isinstance(prices, str | bytes):
        if len(prices) != len(items):
            raise ConfigurationError(f"prices has {len(prices)} price tables for {len(items)} accounts")
        per_account, shared_prices = list(prices), None
    else:
        raise ConfigurationError(
            "prices must be one mapping or pandas Series of symbol -> price, or one such table per account"
        )
    accounts = [_Account(i, ids[i], items[i], per_account[i]) for i in range(len(items))]
    return accounts, shared_prices


def _is_price_table(prices: Any) -> bool:
    if isinstance(prices, Mapping):
        return True
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return isinstance(prices, pd.Series)


# --------------------------------------------------------------------------- progress


class _ProgressBar:
    """tqdm's bar on stderr (``tqdm.auto``: a widget in notebooks), closed when the batch is done."""

    def __init__(self, total: int, label: str = "rebalance_many", unit: str = "account") -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        """End the bar (also when the batch stops early: an abandoned iterator, an error)."""
        self._bar.close()


def _progress_callback(progress: Progress, total: int) -> Callable[[int, int], object] | None:
    if progress is True:
        return _ProgressBar(total)
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise ConfigurationError("progress must be True, False or a callable (done, total)")


# --------------------------------------------------------------------------- entry points


@dataclass
class _Plan:
    accounts: list[_Account]
    executor: str
    workers: int
    stream: Callable[[], Iterator[list[AccountOutcome]]]


def _plan(
    configs: Sequence[Any] | Mapping[str, Any],
    prices: Any,
    executor: Any,
    portfolio_ids: Sequence[str | None] | None,
    chunk_size: int | None,
    max_workers: int | None,
    options: dict[str, Any],
) -> _Plan:
    """Validate everything and choose the executor before any account is run."""
    name = _executor_name(executor)
    if chunk_size is not None and chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be at least 1, not {chunk_size}")
    if max_workers is not None and max_workers < 1:
        raise ConfigurationError(f"max_workers must be at least 1, not {max_workers}")
    accounts, shared_prices = _accounts(configs, prices, portfolio_ids)
    shared = _Shared(shared_prices, options)
    if name == "local":
        chunks = _chunks(accounts, 1, chunk_size)
        return _Plan(accounts, name, 1, lambda: _local(chunks, shared))
    if name == "dask":
        workers = _check_dask_client(executor)
        chunks = _chunks(accounts, workers, chunk_size)
        return _Plan(accounts, name, workers, lambda: _dask(chunks, shared, executor))
    if name == "processes":
        _check_main_guard(sys._getframe(1))
        workers = max_workers or os.cpu_count() or 1
        chunks = _chunks(accounts, workers, chunk_size)
        return _Plan(accounts, name, workers, lambda: _own_pool(chunks, shared, workers))
    user_pool: cf.Executor = executor
    workers = int(getattr(user_pool, "_max_workers", 0) or os.cpu_count() or 1)
    chunks = _chunks(accounts, workers, chunk_size)
    return _Plan(accounts, name, workers, lambda: _user_pool(chunks, shared, user_pool, workers))


def _ordered(plan: _Plan, report: Callable[[int, int], object] | None) -> Iterator[AccountOutcome]:
    total = len(plan.accounts)
    pending: dict[int, AccountOutcome] = {}
    next_index = done = 0
    try:
        if report is not None and total == 0:
            report(0, 0)
        if total == 0:
            return
        for outcomes in plan.stream():
            for outcome in outcomes:
                pending[outcome.index] = outcome
            done += len(outcomes)
            if report is not None:
                report(done, total)
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1
    finally:
        pending.clear()
        if isinstance(report, _ProgressBar):
            report.close()


def iter_rebalance_many(
    configs: Sequence[Any] | Mapping[str, Any],
    prices: Any,
    *,
    executor: Any = None,
    progress: Progress = True,
    portfolio_ids: Sequence[str | None] | None = None,
    chunk_size: int | None = None,
    max_workers: int | None = None,
    **options: Any,
) -> Iterator[AccountOutcome]:
    """Like :func:`rebalance_many`, but yield each :class:`AccountOutcome` as soon as it and every
    account before it are done, in input order. Bad arguments raise here, before any work."""
    plan = _plan(configs, prices, executor, portfolio_ids, chunk_size, max_workers, dict(options))
    return _ordered(plan, _progress_callback(progress, len(plan.accounts)))


def rebalance_many(
    configs: Sequence[Any] | Mapping[str, Any],
    prices: Any,
    *,
    executor: Any = None,
    progress: Progress = True,
    portfolio_ids: Sequence[str | None] | None = None,
    chunk_size: int | None = None,
    max_workers: int | None = None,
    **options: Any,
) -> BatchResult:
    """Rebalance many accounts; one account's failure never stops or loses the others.

    Parameters
    ----------
    configs
        A sequence of :class:`~finwiz.PortfolioConfiguration` (or mappings that validate into
        one), or a mapping ``portfolio_id -> configuration``; a :class:`~finwiz.Household` is
        rebalanced with :func:`~finwiz.rebalance_household` (its outcome's result a
        :class:`~finwiz.HouseholdResult`).
    prices
        One mapping or pandas Series of symbol -> price shared by every account, or a sequence
        with one such table per account.
    executor
        ``None`` or ``"local"``: in this process. ``"processes"``: a local process pool with
        ``max_workers`` (default: all cores). A ``concurrent.futures.Executor`` you own. A
        ``dask.distributed.Client``: chunks run on its workers, each keeping its own cache of
        compiled problems; a closed or unreachable client raises
        :class:`~finwiz.errors.ConfigurationError` before any work.
    progress
        ``True`` draws a bar on stderr, ``False`` nothing, a callable gets ``(done, total)``.
    portfolio_ids
        Ids for the accounts (when ``configs`` is a sequence); they label results and failures.
    chunk_size
        Accounts per task (default: a quarter of a worker's share of the accounts not yet
        sent, from 4 to 256, so chunks shrink towards the end and the workers finish together).
    **options
        Passed to :func:`finwiz.optimizer.rebalance` for every account (``factor_model``,
        ``covariance``, ``market_impact``, ``solver``, ``engine``).

    Returns
    -------
    BatchResult
        One :class:`AccountOutcome` per account in input order; an empty batch gives an empty
        result.
    """
    start = time.perf_counter()
    plan = _plan(configs, prices, executor, portfolio_ids, chunk_size, max_workers, dict(options))
    with _collector_paused():
        outcomes = tuple(_ordered(plan, _progress_callback(progress, len(plan.accounts))))
    return BatchResult(outcomes, time.perf_counter() - start, plan.executor, plan.workers)
