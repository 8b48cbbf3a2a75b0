"""``Backtest``: one validated history, many policies, on the executors of ``rebalance_many``."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import importlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from finwiz.backtest._data import build_history
from finwiz.backtest._lots import TaxOptions, check_lot_dates
from finwiz.backtest._progress import DateProgress, scheduled_dates
from finwiz.backtest._results import BacktestComparison, BacktestResult
from finwiz.backtest._simulate import refuse_taxable, simulate
from finwiz.batch._executors import _check_dask_client, _executor_name, _pool_context
from finwiz.batch._work import _collector_paused
from finwiz.errors import ConfigurationError, FinwizError

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.backtest._data import MarketHistory
    from finwiz.optimizer import MarketImpactModel
    from finwiz.schemas import PortfolioConfiguration

__all__ = ["Backtest"]

Outcome = tuple[str, BacktestResult | None, str | None]


class Backtest:
    """A held book over a price history, ready to play rebalancing policies.

    Parameters
    ----------
    prices
        DataFrame of dates x symbols (daily closes; more columns than the book's are ignored).
    initial
        The :class:`~finwiz.PortfolioConfiguration` at the first date: holdings, cash, targets,
        limits and costs. Every rebalance starts from it with the drifted holdings and cash. A
        taxable account (``tax`` set, every position with its ``lots``) carries its lots through
        the simulation: buys open lots at the day's price and date, sales relieve the lots the
        rebalance names (``trade.lots``; else the ``lot_policy`` order), each rebalance sees
        ``tax.as_of`` = its date and the wash-sale window's trades, and the year's gains are
        taxed by the netting rule (``result.taxes``). Lots without ``tax`` are refused.
    volumes
        Optional DataFrame of daily traded dollar volume (same dates, symbols as columns): adds
        market impact ``k * sigma_i * |T_i|^1.5 / sqrt(ADV_i)`` to every trade, with ADV and
        sigma (daily return volatility) over the trailing 21 trading days, the day included.
    sectors
        Optional mapping symbol -> sector merged into ``initial.sectors`` (for sector caps).
    start, end
        Optional first and last dates (inclusive).
    cash_flows
        Optional Series date -> amount (deposit > 0, withdrawal < 0); a flow on a day without
        prices arrives on the next trading day; outside the range it is refused.
    market_impact
        The impact coefficient ``k`` (default 1 when ``volumes`` are given; 0 turns impact off),
        or a fixed :class:`~finwiz.MarketImpactModel` for every date (then no ``volumes``).
    periods_per_year
        Return periods per year for the annualised ``volatility`` and ``sharpe`` metrics
        (default: the price index's own frequency, ~252 for trading days).
    risk_free_rate
        Annual risk-free rate of the ``sharpe`` metric (default 0).
    pay_taxes
        A taxable account's yearly tax is paid from cash on the first trading day of the next year
        (default True; a net loss's ordinary deduction comes back as a refund); False only tracks
        it (``result.taxes``, and the after-tax metrics subtract it).
    outside_gains
        True: gains elsewhere absorb any loss, so each term's net is taxed at its own rate even when
        negative (a saving) and nothing carries forward -- the assumption of the tax-alpha
        literature; it needs ``initial.tax.tax_model="linear"`` (the engine prices that valuation).
        Default False: the account alone, by the netting rule with ``initial.tax``'s
        ``ordinary_rate`` and ``ordinary_loss_limit`` (the settings the engine optimises under).
    date_format
        The ``strftime`` format of text dates (in ``prices``, ``volumes`` and ``cash_flows``),
        e.g. ``"%d/%m/%Y"``. Without it ISO dates are read, and text dates whose day and month
        could be either way round (every day 12 or less) are refused, naming one.
    """

    def __init__(
        self,
        prices: pd.DataFrame,
        *,
        initial: PortfolioConfiguration,
        volumes: pd.DataFrame | None = None,
        sectors: Mapping[str, str] | pd.Series | None = None,
        start: Any = None,
        end: Any = None,
        cash_flows: pd.Series | None = None,
        market_impact: float | MarketImpactModel | None = None,
        date_format: str | None = None,
        periods_per_year: float | None = None,
        risk_free_rate: float = 0.0,
        pay_taxes: bool = True,
        outside_gains: bool = False,
    ) -> None:
        refuse_taxable(initial)
        if periods_per_year is not None and not (math.isfinite(periods_per_year) and periods_per_year > 0):
            raise ConfigurationError(f"periods_per_year must be a positive number, not {periods_per_year!r}")
        if not math.isfinite(risk_free_rate) or risk_free_rate <= -1:
            raise ConfigurationError(f"risk_free_rate must be an annual rate above -1, not {risk_free_rate!r}")
        self.periods_per_year, self.risk_free_rate = periods_per_year, float(risk_free_rate)
        options = _tax_options(pay_taxes, outside_gains, initial)
        history = build_history(
            prices,
            initial,
            volumes=volumes,
            sectors=sectors,
            start=start,
            end=end,
            cash_flows=cash_flows,
            market_impact=market_impact,
            date_format=date_format,
        )
        if history.initial.tax is not None:
            check_lot_dates(tuple(history.initial.holdings), history.dates[0].date())
        self.history: MarketHistory = dataclasses.replace(history, tax_options=options)

    @property
    def prices(self) -> pd.DataFrame:
        """The validated price table (dates x the book's symbols)."""
        return self.history.frame

    @property
    def initial(self) -> PortfolioConfiguration:
        """The initial configuration, with every symbol of the universe as a holding."""
        return self.history.initial

    def run(
        self, policy: Any, *, name: str | None = None, progress: bool | Callable[[int, int], object] = False
    ) -> BacktestResult:
        """Play ``policy`` over the history and return its :class:`BacktestResult`.

        A rebalance that fails (infeasible limits, solver failure) is recorded in
        ``result.rebalances`` with its reason and the book carries on; a policy that raises
        anything else, or returns trades that are not whole shares or would sell more than is
        held, raises :class:`~finwiz.errors.PolicyError` naming the policy and the date.
        ``progress=True`` draws a tqdm bar on stderr counting the policy's scheduled rebalance
        dates; a callable gets ``(done, total)`` instead.
        """
        label = name if name is not None else repr(policy)
        counter = DateProgress(progress, scheduled_dates(policy, self.history.dates) if progress else 0, label)
        try:
            return self._with_parameters(simulate(self.history, policy, label, counter.advance))
        finally:
            counter.close()

    def _with_parameters(self, result: BacktestResult) -> BacktestResult:
        result.periods_per_year, result.risk_free_rate = self.periods_per_year, self.risk_free_rate
        return result

    def compare(
        self,
        policies: Mapping[str, Any],
        *,
        executor: Any = None,
        max_workers: int | None = None,
        progress: bool | Callable[[int, int], object] = False,
    ) -> BacktestComparison:
        """Run every policy of ``{name: policy}`` and compare them.

        ``executor`` is that of :func:`finwiz.batch.rebalance_many`: ``None``/``"local"`` (in this
        process, one after the other, sharing the engine's warm caches), ``"processes"`` (a local
        pool of ``max_workers``), a ``concurrent.futures.Executor``, or a ``dask.distributed``
        ``Client``. The history is sent once per worker. A policy that cannot run is recorded in
        ``comparison.failures`` with its error; the others go on. ``progress=True`` draws a tqdm
        bar on stderr counting rebalance dates (each policy's scheduled dates, summed; in this
        process date by date, on other executors a policy's dates when it finishes); a callable
        gets ``(done, total)`` in the same units.
        """
        if not isinstance(policies, Mapping) or not policies:
            raise ConfigurationError("compare needs a non-empty mapping of name -> policy")
        if max_workers is not None and max_workers < 1:
            raise ConfigurationError(f"max_workers must be at least 1, not {max_workers}")
        kind = _executor_name(executor)
        tasks = [(str(name), policy) for name, policy in policies.items()]
        counts = {n: scheduled_dates(p, self.history.dates) for n, p in tasks} if progress else {}
        counter = DateProgress(progress, sum(counts.values()), f"Backtesting {len(tasks)} policies")
        start = time.perf_counter()
        workers = 1
        if kind == "local":
            stream: Iterator[Outcome] = (_run_counted(self.history, n, p, counter, counts.get(n, 0)) for n, p in tasks)
        elif kind == "dask":
            workers = _check_dask_client(executor)
            stream = _on_dask(executor, self.history, tasks)
        elif kind == "processes":
            workers = max_workers or os.cpu_count() or 1
            stream = _on_own_pool(self.history, tasks, workers)
        else:
            workers = int(getattr(executor, "_max_workers", 0) or 1)
            stream = _on_pool(executor, self.history, tasks)
        outcomes: dict[str, Outcome] = {}
        try:
            with _collector_paused():
                for outcome in stream:
                    outcomes[outcome[0]] = outcome
                    if kind != "local":  # a worker's policy: its dates all at once
                        counter.advance(counts.get(outcome[0], 0))
        finally:
            counter.close()
        results: dict[str, BacktestResult] = {}
        failures: dict[str, str] = {}
        for name, _ in tasks:
            _, result, error = outcomes[name]
            if result is None:
                failures[name] = error or "unknown failure"
            else:
                result.prices = self.history.frame  # left behind when it came from a worker
                results[name] = self._with_parameters(result)
        return BacktestComparison(results, failures, time.perf_counter() - start, kind, workers)


def _tax_options(pay: Any, outside: Any, initial: Any) -> TaxOptions:
    for label, flag in (("pay_taxes", pay), ("outside_gains", outside)):
        if not isinstance(flag, bool):
            raise ConfigurationError(f"{label} must be True or False, not {flag!r}")
    tax = getattr(initial, "tax", None)
    if outside and tax is not None and tax.tax_model != "linear":
        raise ConfigurationError(
            "outside_gains=True taxes each term's net at its own rate, the linear valuation: give "
            'initial.tax tax_model="linear" (the engine would optimise under the netting rule\'s loss limit)'
        )
    return TaxOptions(pay, outside)


def _run_counted(history: MarketHistory, name: str, policy: Any, counter: DateProgress, dates: int) -> Outcome:
    """:func:`_run_named` in this process, reporting its dates as they pass (the rest at the end,
    when it stopped part way)."""
    reported = 0

    def on_dates(n: int) -> None:
        nonlocal reported
        reported += n
        counter.advance(n)

    try:
        return _run_named(history, name, policy, on_dates)
    finally:
        counter.advance(dates - reported)


def _run_named(
    history: MarketHistory, name: str, policy: Any, on_dates: Callable[[int], object] | None = None
) -> Outcome:
    try:
        return name, simulate(history, policy, name, on_dates), None
    except FinwizError as exc:
        return name, None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a policy's bug fails that policy, never the sweep
        return name, None, f"{type(exc).__name__}: {exc}"


_worker_history: MarketHistory | None = None


def _init_worker(history: MarketHistory) -> None:
    global _worker_history
    _worker_history = history


def _run_in_worker(name: str, policy: Any) -> Outcome:
    if _worker_history is None:  # pragma: no cover - a pool worker started without its initializer
        return name, None, "ConfigurationError: backtest worker has no history"
    return _run_named(_worker_history, name, policy)


def _collect(futures: dict[Any, str]) -> Iterator[Outcome]:
    for future in cf.as_completed(futures):
        try:
            yield future.result()
        except Exception as exc:  # a worker died: fail its policy, keep going
            yield futures[future], None, f"{type(exc).__name__}: {exc}"


def _on_own_pool(history: MarketHistory, tasks: list[tuple[str, Any]], workers: int) -> Iterator[Outcome]:
    pool = cf.ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(history,))
    try:
        yield from _collect({pool.submit(_run_in_worker, n, p): n for n, p in tasks})
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _on_pool(pool: cf.Executor, history: MarketHistory, tasks: list[tuple[str, Any]]) -> Iterator[Outcome]:
    yield from _collect({pool.submit(_run_named, history, n, p): n for n, p in tasks})


def _on_dask(client: Any, history: MarketHistory, tasks: list[tuple[str, Any]]) -> Iterator[Outcome]:
    as_completed: Callable[[list[Any]], Iterator[Any]] = importlib.import_module("distributed").as_completed
    try:
        shared = client.scatter(history, broadcast=True, hash=False)
        futures = [client.submit(_run_named, shared, n, p, pure=False) for n, p in tasks]
    except Exception as exc:
        raise ConfigurationError(f"the Dask client cannot run the backtests ({type(exc).__name__}: {exc})") from exc
    names = {f.key: n for f, (n, _) in zip(futures, tasks, strict=True)}
    try:
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # a lost worker: fail its policy, keep going
                yield names[future.key], None, f"{type(exc).__name__}: {exc}"
    finally:
        for future in futures:
            future.release()
        shared.release()
