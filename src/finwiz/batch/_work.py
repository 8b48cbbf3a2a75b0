"""The batch's work units and their outcomes: an account, what a batch's accounts share, one account
or chunk rebalanced in this process (a pool worker's task), and the results in input order."""

from __future__ import annotations

import contextlib
import gc
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finwiz.errors import ConfigurationError
from finwiz.schemas import Household, HouseholdResult, PortfolioConfiguration, RebalancingResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["AccountOutcome", "BatchResult"]


@dataclass(frozen=True)
class AccountOutcome:
    """What happened to one account: its result, or the error that stopped it.

    ``index`` is the account's position in the input; ``error_type`` the exception class name
    (e.g. ``"InfeasibleRebalanceError"``); ``seconds`` the wall time of this account alone.
    """

    index: int
    portfolio_id: str | None
    result: RebalancingResult | HouseholdResult | None  # a Household's: HouseholdResult
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the account was rebalanced."""
        return self.result is not None

    @property
    def label(self) -> str:
        """The account's id, or ``#index`` when it has none."""
        return self.portfolio_id if self.portfolio_id is not None else f"#{self.index}"


@dataclass(frozen=True)
class BatchResult:
    """Per-account outcomes of :func:`rebalance_many`, in input order."""

    outcomes: tuple[AccountOutcome, ...]
    seconds: float = 0.0
    executor: str = "local"
    workers: int = 1

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Iterator[AccountOutcome]:
        return iter(self.outcomes)

    def __getitem__(self, index: int) -> AccountOutcome:
        return self.outcomes[index]

    @property
    def successes(self) -> list[AccountOutcome]:
        """Accounts that were rebalanced, in input order."""
        return [o for o in self.outcomes if o.ok]

    @property
    def failures(self) -> list[AccountOutcome]:
        """Accounts that failed, in input order, each with its error."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def results(self) -> list[RebalancingResult | HouseholdResult | None]:
        """The result of every account in input order (``None`` where it failed)."""
        return [o.result for o in self.outcomes]

    @property
    def throughput(self) -> float:
        """Accounts per second over the whole batch."""
        return len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A short text report: counts, time, and every failure with its reason."""
        total, good = len(self.outcomes), len(self.successes)
        lines = [
            f"{total} accounts: {good} rebalanced, {total - good} failed "
            f"in {self.seconds:.2f} s ({self.throughput:.1f} accounts/s, executor {self.executor}, "
            f"{self.workers} worker{'s' if self.workers != 1 else ''})"
        ]
        failures = self.failures
        if failures:
            by_type: dict[str, int] = {}
            for outcome in failures:
                key = outcome.error_type or "Error"
                by_type[key] = by_type.get(key, 0) + 1
            lines.append("failures by type: " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))
            lines += [f"  {o.label}: {o.error_type}: {o.error}" for o in failures]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per account (index: input position) with status, error and key figures."""
        import pandas as pd

        rows = []
        for o in self.outcomes:
            r = o.result
            rows.append(
                {
                    "portfolio_id": o.portfolio_id,
                    "ok": o.ok,
                    "error_type": o.error_type,
                    "error": o.error,
                    "trades": len(r.trades) if r is not None else None,
                    "total_cost": r.total_cost if r is not None else None,
                    "turnover": r.turnover if r is not None else None,
                    "tracking_distance_after": r.tracking_distance_after if r is not None else None,
                    "max_constraint_residual": r.max_constraint_residual if r is not None else None,
                    "solver": r.solver if r is not None else None,
                    "seconds": o.seconds,
                }
            )
        columns = [
            "portfolio_id",
            "ok",
            "error_type",
            "error",
            "trades",
            "total_cost",
            "turnover",
            "tracking_distance_after",
            "max_constraint_residual",
            "solver",
            "seconds",
        ]
        return pd.DataFrame(rows, columns=columns, index=pd.RangeIndex(len(rows), name="index"))


@dataclass(frozen=True)
class _Account:
    index: int
    portfolio_id: str | None
    config: Any  # a PortfolioConfiguration, or anything to validate into one
    prices: Any = None  # per-account prices; None means the shared ones

    @property
    def label(self) -> str:
        return self.portfolio_id if self.portfolio_id is not None else f"#{self.index}"

    def __reduce__(self) -> tuple[Any, ...]:
        # The inputs travel as bytes loaded by _account: one a worker cannot load fails this
        # account by name, where a failed load of the task would kill the worker process.
        return (_account, (self.index, self.portfolio_id, _packed((self.config, self.prices))))


@dataclass(frozen=True)
class _Shared:
    """What every account of a batch shares: sent once per worker, not once per account.
    ``unloadable`` says why a worker could not load the rest (every account then fails with it)."""

    prices: Any
    options: dict[str, Any] = field(default_factory=dict)
    unloadable: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_shared, (_packed((self.prices, self.options)),))


class _Unloadable:
    """An account's inputs a worker process could not load: why."""

    def __init__(self, why: str) -> None:
        self.why = why


_UNLOADABLE = (
    "a worker process could not load {what} ({error}): a custom term, constraint or strategy used on "
    "a process pool must be importable there, so define it in a module, not in a notebook or an "
    "interactive session"
)


def _packed(inputs: tuple[Any, Any]) -> bytes:
    return pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)


def _loaded(blob: bytes, what: str) -> tuple[Any, Any] | str:
    """The inputs in ``blob``, or why they could not be loaded (an import or attribute lookup of a
    class the worker does not have, or any error of its unpickling)."""
    try:
        inputs: tuple[Any, Any] = pickle.loads(blob)
    except Exception as exc:
        return _UNLOADABLE.format(what=what, error=f"{type(exc).__name__}: {exc}")
    return inputs


def _account(index: int, portfolio_id: str | None, blob: bytes) -> _Account:
    inputs = _loaded(blob, "this account's inputs")
    if isinstance(inputs, str):
        return _Account(index, portfolio_id, _Unloadable(inputs))
    return _Account(index, portfolio_id, *inputs)


def _shared(blob: bytes) -> _Shared:
    inputs = _loaded(blob, "the batch's shared inputs (prices and options)")
    return _Shared(None, unloadable=inputs) if isinstance(inputs, str) else _Shared(*inputs)


def _failure(account: _Account, exc: BaseException, seconds: float) -> AccountOutcome:
    return AccountOutcome(
        account.index,
        account.portfolio_id,
        None,
        error=str(exc) or repr(exc),
        error_type=type(exc).__name__,
        seconds=seconds,
    )


def _run_account(account: _Account, shared: _Shared) -> AccountOutcome:
    from finwiz.optimizer import rebalance, rebalance_household

    start = time.perf_counter()
    try:
        config = account.config
        why = shared.unloadable or (config.why if isinstance(config, _Unloadable) else None)
        if why is not None:
            raise ConfigurationError(why)
        prices = shared.prices if account.prices is None else account.prices
        result: RebalancingResult | HouseholdResult
        if isinstance(config, Household):  # households (#25): every account of it at once
            result = rebalance_household(config, prices, **shared.options)
        else:
            if not isinstance(config, PortfolioConfiguration):
                config = PortfolioConfiguration.model_validate(config)
            result = rebalance(config, prices, portfolio_id=account.portfolio_id, **shared.options)
    except Exception as exc:  # refused input, or bad data surfacing as anything: it fails this account only
        return _failure(account, exc, time.perf_counter() - start)
    return AccountOutcome(account.index, account.portfolio_id, result, seconds=time.perf_counter() - start)


def _run_chunk(chunk: Sequence[_Account], shared: _Shared | None = None) -> list[AccountOutcome]:
    """Rebalance a chunk in this process; ``shared`` None means the worker's initializer set it."""
    payload = shared if shared is not None else _worker_shared
    if payload is None:  # pragma: no cover - a pool worker started without its initializer
        raise ConfigurationError("batch worker has no shared inputs")
    with _collector_paused():  # a chunk's results are all held until it returns
        return [_run_account(account, payload) for account in chunk]


def _run_packed(chunk: bytes, shared: _Shared | None = None) -> bytes:
    """A process pool's task: the chunk arrives and its outcomes leave pickled here, under the paused
    collector; pickled by the pool after the task, a chunk's results (~200 objects each) were
    scanned by every collection their own pickling set off."""
    with _collector_paused():
        return pickle.dumps(_run_chunk(pickle.loads(chunk), shared), pickle.HIGHEST_PROTOCOL)


_worker_shared: _Shared | None = None


def _init_worker(shared: _Shared) -> None:
    """A pool worker's start: keep the shared inputs, and move the imported modules' objects out of
    the cycle collector's reach (they live as long as the worker): between chunks, every full
    collection walked them all, ~0.2 s each, several per 1,000 accounts, to free nothing."""
    global _worker_shared
    _worker_shared = shared
    gc.freeze()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while results pile up (a batch in the parent, a chunk in a
    worker) and restored after: every full collection walks all results held so far, and results
    hold no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
