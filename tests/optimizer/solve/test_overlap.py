"""The cold first solve's OSQP workspace, set up by the kept worker thread while Clarabel iterates
(``_overlap``, ``_solve._interior``): the same answers as set up after Clarabel, the work taken back
where the worker has not started it, Ctrl-C and errors as without the worker, and a forked child or
an exiting interpreter not left waiting on it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import pandas as pd
import pytest

from finwiz import PortfolioConfiguration, RebalancingResult, rebalance
from finwiz.optimizer import clear_cache
from finwiz.optimizer.solve import _overlap, _solve, _solvers, _workspaces
from tests.conftest import drifted_config

WORKER = "finwiz-solve-overlap"


@pytest.fixture
def binding(sample_prices: pd.Series, sample_sector_map: dict[str, str]) -> PortfolioConfiguration:
    """Sector caps that trading straight to the target breaks: the first solve is Clarabel's."""
    return drifted_config(sample_prices, sectors=sample_sector_map, max_sector_weight=0.2)


def _answer(result: RebalancingResult) -> tuple[Any, ...]:
    return (
        [t.model_dump() for t in result.trades],
        result.objective_value,
        result.iterations,
        [(s.name, s.solver_calls) for s in result.stages],
    )


def _set_up_by(monkeypatch: pytest.MonkeyPatch, fail_in_worker: bool = False) -> list[str]:
    """The thread that set up each new workspace (the worker's raise where ``fail_in_worker``)."""
    threads: list[str] = []
    original = _workspaces.new_workspace

    def recording(*args: Any) -> Any:
        name = threading.current_thread().name
        threads.append(name)
        if fail_in_worker and name == WORKER:
            raise RuntimeError("set-up failed in the worker")
        return original(*args)

    monkeypatch.setattr(_workspaces, "new_workspace", recording)
    monkeypatch.setattr(_solve, "new_workspace", recording)
    return threads


def _slow_clarabel(monkeypatch: pytest.MonkeyPatch, raises: type[BaseException] | None = None) -> None:
    """Clarabel that gives the worker time to start first (it sleeps, as it iterates, without the GIL)."""
    original = _solvers.solve_clarabel

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        if raises is not None:
            raise raises
        return original(*args, **kwargs)

    monkeypatch.setattr(_solve, "solve_clarabel", slow)


def _taken_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a busy machine: the worker never starts a job before Clarabel returns."""
    monkeypatch.setattr(_solve, "submit", lambda call: _overlap.Job(call))


def test_the_worker_s_workspace_gives_the_same_answers(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _overlap._CORES < 2:
        pytest.skip("one core: the worker never runs")
    threads = _set_up_by(monkeypatch)
    _taken_back(monkeypatch)
    clear_cache()
    inline = _answer(rebalance(binding, sample_prices))
    assert threads == ["MainThread"]
    monkeypatch.undo()
    threads = _set_up_by(monkeypatch)
    _slow_clarabel(monkeypatch)
    clear_cache()
    overlapped = _answer(rebalance(binding, sample_prices))
    assert threads == [WORKER]
    assert overlapped == inline
    (kept,) = _workspaces._cache.values()
    assert kept.solved  # the worker's workspace is the one kept, warm
    assert kept.trusted


def test_a_job_is_run_once_by_whoever_claims_it() -> None:
    ran: list[int] = []
    job = _overlap.Job(lambda: ran.append(1) or 7)
    assert job.result() is None  # taken back before the worker saw it
    job.run()
    assert ran == []
    job = _overlap.Job(lambda: ran.append(2) or 8)
    job.run()
    assert job.result() == 8
    assert ran == [2]
    if _overlap._CORES > 1:
        done = _overlap.submit(lambda: threading.current_thread().name)
        time.sleep(0.05)
        assert done.result() in (WORKER, None)
    failed = _overlap.Job(lambda: 1 / 0)
    failed.run()
    assert failed.result() is None  # the caller does the work itself and meets the error there


def test_a_set_up_that_fails_in_the_worker_is_done_again_by_the_caller(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    expected = _answer(rebalance(binding, sample_prices))
    threads = _set_up_by(monkeypatch, fail_in_worker=True)
    _slow_clarabel(monkeypatch)
    clear_cache()
    assert _answer(rebalance(binding, sample_prices)) == expected
    assert threads[-1] == "MainThread"


def test_ctrl_c_in_clarabel_leaves_no_workspace_and_no_work_behind(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    expected = _answer(rebalance(binding, sample_prices))
    threads = _set_up_by(monkeypatch)
    _slow_clarabel(monkeypatch, raises=KeyboardInterrupt)
    clear_cache()
    with pytest.raises(KeyboardInterrupt):
        rebalance(binding, sample_prices)
    assert not _workspaces._cache  # kept only once polished, as before
    assert _overlap._jobs.empty()
    assert threads in ([], [WORKER])  # collected (or taken back) before the interrupt went on
    monkeypatch.undo()
    assert _answer(rebalance(binding, sample_prices)) == expected  # the worker still serves


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_starts_its_own_worker() -> None:
    if _overlap._CORES < 2:
        pytest.skip("one core: the worker never runs")
    _overlap.submit(lambda: None).result()  # the parent's worker exists
    pid = os.fork()
    if pid == 0:  # the child: its own worker runs its job
        job = _overlap.submit(lambda: threading.current_thread().name)
        time.sleep(0.1)
        os._exit(0 if job.result() == WORKER else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_interpreter_exits_after_a_cold_solve() -> None:
    code = (
        "from tests.conftest import drifted_config\n"
        "from finwiz.data import sample_latest_prices, sample_sectors\n"
        "from finwiz import rebalance\n"
        "p = sample_latest_prices()\n"
        "s = {str(k): str(v) for k, v in sample_sectors().items()}\n"
        "rebalance(drifted_config(p, sectors=s, max_sector_weight=0.2), p)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, env={**os.environ})
    assert done.returncode == 0, done.stderr
