"""Where a batch's chunks run: in this process, on a local process pool (rerunning the chunks a dead
worker lost), on a user's pool, or on a Dask cluster."""

from __future__ import annotations

import ast
import concurrent.futures as cf
import importlib
import multiprocessing
import pickle
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType
from typing import Any

from finwiz.batch._work import AccountOutcome, _Account, _failure, _init_worker, _run_chunk, _run_packed, _Shared
from finwiz.errors import ConfigurationError

__all__: list[str] = []  # private helpers of finwiz.batch


def _is_dask_client(executor: object) -> bool:
    module = type(executor).__module__ or ""
    return module.split(".")[0] == "distributed" and hasattr(executor, "submit") and hasattr(executor, "scatter")


def _executor_name(executor: object) -> str:
    if executor is None or executor == "local":
        return "local"
    if executor == "processes":
        return "processes"
    if _is_dask_client(executor):
        return "dask"
    if isinstance(executor, cf.Executor):
        return type(executor).__name__
    raise ConfigurationError(
        f"executor must be None/'local', 'processes', a concurrent.futures.Executor or a dask Client, not {executor!r}"
    )


_GUARD_HELP = (
    "executor='processes' was called from the top level of {script} (line {line}) outside an "
    "'if __name__ == \"__main__\":' block. Worker processes import that script again, and each "
    "would start its own batch (Python stops them: every chunk then fails with BrokenProcessPool). "
    'Put the batch under the guard:\n\n    if __name__ == "__main__":\n        batch = rebalance_many(...)\n'
)


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either side of the ``==``)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]


def _check_main_guard(frame: FrameType | None) -> None:
    """Refuse a process pool started from a script's unguarded top level, before any work.

    Worker processes (forkserver or spawn) import the main script again; a batch at its top level
    then runs once more in every worker, which Python refuses, and each chunk fails with
    ``BrokenProcessPool`` -- hundreds of identical lines instead of one hint. The check finds the
    script's top-level statement on the call stack and whether it sits under the guard; it says
    nothing (never refuses) when there is no script (a notebook, ``python -c``, a REPL) or its
    source cannot be read.
    """
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    top: FrameType | None = None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            top = frame
        frame = frame.f_back
    if script is None or top is None or top.f_code.co_filename != script:
        return
    line = top.f_lineno
    try:
        tree = ast.parse(Path(script).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            if _is_main_guard(node):
                return
            raise ConfigurationError(_GUARD_HELP.format(script=script, line=line))


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers fork from a clean server that has the optimizer imported already, so they
    # start fast and never inherit the parent's threads (fork with threads can deadlock).
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["finwiz.optimizer", "finwiz.batch"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - platforms without forkserver


def _local(chunks: list[list[_Account]], shared: _Shared) -> Iterator[list[AccountOutcome]]:
    for chunk in chunks:
        yield _run_chunk(chunk, shared)


def _pool(
    chunks: list[list[_Account]], shared: _Shared, pool: cf.Executor, *, initialized: bool
) -> Generator[list[AccountOutcome], None, list[_Account]]:
    """Run the chunks on ``pool``; return the accounts of chunks lost with a dead worker process
    (``BrokenProcessPool``), for :func:`_rerun`. Any other chunk error fails its accounts."""
    packed = isinstance(pool, cf.ProcessPoolExecutor)  # a thread pool takes the objects as they are
    futures: dict[cf.Future[Any], list[_Account]] = {}
    lost: list[_Account] = []
    run: Callable[..., Any] = _run_packed if packed else _run_chunk
    for number, chunk in enumerate(chunks):
        try:
            task: Any = pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL) if packed else chunk
        except Exception as exc:  # an account that cannot be sent (unpicklable input): its chunk fails
            yield [_failure(a, exc, 0.0) for a in chunk]
            continue
        try:
            futures[pool.submit(run, task, None if initialized else shared)] = chunk
        except BrokenProcessPool:  # a worker died while chunks were still being submitted
            lost += [a for c in chunks[number:] for a in c]
            break
    try:
        for future in cf.as_completed(futures):
            chunk = futures[future]
            try:
                outcomes = future.result()
                yield pickle.loads(outcomes) if packed else outcomes
            except BrokenProcessPool:  # a worker died: this chunk, and every pending one, is lost
                lost += chunk
            except Exception as exc:  # the chunk could not run (e.g. unpicklable input): fail its accounts
                yield [_failure(a, exc, 0.0) for a in chunk]
    finally:
        for future in futures:
            future.cancel()
    return sorted(lost, key=lambda a: a.index)


def _new_pool(shared: _Shared, workers: int) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(shared,))


_DIED = (
    "the worker process died while rebalancing this account, alone on a fresh pool after its chunk "
    "was lost the same way (killed by a signal, out of memory, or a crash in native code); "
    "the other accounts were run again"
)


def _rerun(accounts: list[_Account], shared: _Shared, workers: int) -> Iterator[list[AccountOutcome]]:
    """Run again, on fresh pools, accounts lost when a worker process died, and fail only the one
    that kills its worker.

    One account per task, at most ``workers`` in flight, so a death loses only the accounts then
    running. When a death loses a single account, that account killed its worker: it fails with
    ``BrokenProcessPool`` and a message naming it. When it loses several, each of them runs once
    more alone, where a death can only be its own. An account therefore runs at most three times
    (its chunk, the retry, alone); a healthy one always comes back.
    """
    queue = deque(accounts)
    suspects: deque[_Account] = deque()  # lost beside others on a retry: each runs alone
    while queue or suspects:
        source, width = (suspects, 1) if suspects else (queue, workers)
        pool = _new_pool(shared, width)
        try:
            running: dict[cf.Future[list[AccountOutcome]], _Account] = {}
            lost: list[_Account] = []
            while (source or running) and not lost:
                while source and len(running) < width:
                    account = source.popleft()
                    try:
                        running[pool.submit(_run_chunk, [account])] = account
                    except BrokenProcessPool:  # broken by a task already running: it is lost below
                        source.appendleft(account)
                        break
                if not running:  # pragma: no cover - a fresh pool broken before its first task
                    break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    done, _ = cf.wait(running)  # the pool is broken: every task ends now
                for future in done:
                    account = running.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        lost.append(account)
                    elif isinstance(error, Exception):
                        yield [_failure(account, error, 0.0)]
                    else:  # the result, or KeyboardInterrupt (Ctrl-C reached the worker): it stops the batch
                        yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if len(lost) == 1:
            (killer,) = lost
            yield [_failure(killer, BrokenProcessPool(f"account {killer.label}: {_DIED}"), 0.0)]
        else:
            suspects.extend(lost)


def _own_pool(chunks: list[list[_Account]], shared: _Shared, workers: int) -> Iterator[list[AccountOutcome]]:
    pool = _new_pool(shared, workers)
    try:
        lost = yield from _pool(chunks, shared, pool, initialized=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if lost:
        yield from _rerun(lost, shared, workers)


def _user_pool(
    chunks: list[list[_Account]], shared: _Shared, pool: cf.Executor, workers: int
) -> Iterator[list[AccountOutcome]]:
    lost = yield from _pool(chunks, shared, pool, initialized=False)
    if lost:  # the caller's process pool is broken now: the lost accounts run on fresh pools of ours
        yield from _rerun(lost, shared, workers)


def _dask_client_status(client: Any) -> str:
    return str(getattr(client, "status", "unknown"))


def _dask(chunks: list[list[_Account]], shared: _Shared, client: Any) -> Iterator[list[AccountOutcome]]:
    # Imported by name so the module (and mypy) never need dask unless a client is given.
    as_completed: Callable[[list[Any]], Iterator[Any]] = importlib.import_module("distributed").as_completed

    try:
        shared_future = client.scatter(shared, broadcast=True, hash=False)
        futures = [client.submit(_run_chunk, chunk, shared_future, pure=False) for chunk in chunks]
    except Exception as exc:
        raise ConfigurationError(f"the Dask client cannot run the batch ({type(exc).__name__}: {exc})") from exc
    by_key = {f.key: chunk for f, chunk in zip(futures, chunks, strict=True)}
    try:
        for future in as_completed(futures):
            chunk = by_key[future.key]
            try:
                yield future.result()
            except Exception as exc:  # a worker lost or killed: fail its accounts, keep going
                yield [_failure(a, exc, 0.0) for a in chunk]
    finally:
        for future in futures:
            future.release()
        shared_future.release()


def _check_dask_client(client: Any) -> int:
    """Refuse a closed or unreachable client before any work; return its number of worker threads."""
    status = _dask_client_status(client)
    if status != "running":
        raise ConfigurationError(f"the Dask client is {status}, not running: nothing was submitted")
    try:
        info = client.scheduler_info()
    except Exception as exc:
        raise ConfigurationError(f"the Dask scheduler is unreachable ({type(exc).__name__}: {exc})") from exc
    workers = info.get("workers", {}) if isinstance(info, Mapping) else {}
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
