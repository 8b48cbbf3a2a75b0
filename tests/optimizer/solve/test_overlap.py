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
_GATE = _overlap._spare_core  # the real one (the autouse fixture replaces it)


@pytest.fixture(autouse=True)
def spare_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second core taken as free whatever the machine's load (the gate has a test of its own)."""
    _open_gate(monkeypatch)


def _open_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_overlap, "_spare_core", lambda: _overlap._CORES > 1)


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
    monkeypatch.setattr(_solve, "submit", lambda call: [_overlap.Job(call)])


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
    _open_gate(monkeypatch)
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
    assert job.result() is None  # and so it stays
    job = _overlap.Job(lambda: ran.append(2) or 8)
    job.run()
    assert job.result() == 8
    assert job.result() == 8
    assert ran == [2]
    if _overlap._CORES > 1:
        jobs = _overlap.submit(lambda: threading.current_thread().name)
        time.sleep(0.05)
        assert _overlap.collect(jobs) in (WORKER, None)
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
    _open_gate(monkeypatch)
    assert _answer(rebalance(binding, sample_prices)) == expected  # the worker still serves


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_starts_its_own_worker() -> None:
    if _overlap._CORES < 2:
        pytest.skip("one core: the worker never runs")
    _overlap.collect(_overlap.submit(lambda: None))  # the parent's worker exists
    pid = os.fork()
    if pid == 0:  # the child: its own worker runs its job
        jobs = _overlap.submit(lambda: threading.current_thread().name)
        time.sleep(0.1)
        os._exit(0 if _overlap.collect(jobs) == WORKER else 1)
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


def test_work_handed_over_beside_runs_during_the_first_cold_interior_solve_only(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _overlap._CORES < 2:
        pytest.skip("one core: the worker never runs")
    _slow_clarabel(monkeypatch)
    clear_cache()
    with _overlap.beside(threading.current_thread) as job, _overlap.beside(threading.current_thread, when=False) as off:
        rebalance(binding, sample_prices)  # its own stage hands its pieces over too
    assert job.result() is not None
    assert job.result().name == WORKER
    assert off.result() is None
    assert not _overlap._waiting()
    with _overlap.beside(threading.current_thread) as warm:
        rebalance(binding, sample_prices * 1.01)  # warm: no interior solve
    assert warm.result() is None  # taken back: the caller does the work itself
    assert not _overlap._waiting()


def test_a_job_runs_in_its_caller_s_context() -> None:
    from contextvars import ContextVar

    seen: ContextVar[str] = ContextVar("seen", default="worker's own")
    seen.set("caller's")
    job = _overlap.Job(seen.get)
    threading.Thread(target=job.run).start()
    time.sleep(0.05)
    assert job.result() == "caller's"


def test_the_stage_s_pieces_built_beside_give_the_same_result(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finwiz.optimizer.discrete import _pricing

    built: list[str] = []
    original = _pricing.Pieces.of

    def recording(model: Any) -> Any:
        built.append(threading.current_thread().name)
        return original(model)

    monkeypatch.setattr(_pricing.Pieces, "of", recording)
    _taken_back(monkeypatch)
    clear_cache()
    inline = rebalance(binding, sample_prices).model_dump(exclude={"solve_time_seconds", "timestamp", "stages"})
    assert built == ["MainThread"]
    monkeypatch.setattr(_solve, "submit", _overlap.submit)
    _slow_clarabel(monkeypatch)
    clear_cache()
    result = rebalance(binding, sample_prices)
    if _overlap._CORES > 1:
        assert built == ["MainThread", WORKER]  # built once, by the worker, and used
    assert result.model_dump(exclude={"solve_time_seconds", "timestamp", "stages"}) == inline


def test_a_job_that_submits_another_does_not_wait_for_itself() -> None:
    if _overlap._CORES < 2:
        pytest.skip("one core: the worker never runs")
    seen: list[Any] = []

    def nested() -> Any:
        seen.append(_overlap.collect(_overlap.submit(lambda: 5)))
        return seen[-1]

    jobs = _overlap.submit(nested)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [None]  # inside the worker the inner job is taken back, not waited for
    assert _overlap.collect(jobs) is None


def test_on_a_busy_machine_nothing_is_handed_over(
    binding: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = [0.2]
    monkeypatch.setattr(_overlap.os, "getloadavg", lambda: (load[0], 0.0, 0.0))
    monkeypatch.setattr(_overlap, "_spare_core", _GATE)
    assert _GATE() is (_overlap._CORES > 1)  # idle
    load[0] = _overlap._CORES - 0.5  # no core left
    assert not _GATE()
    clear_cache()
    expected = _answer(rebalance(binding, sample_prices))
    threads = _set_up_by(monkeypatch)
    _slow_clarabel(monkeypatch)
    clear_cache()
    assert _answer(rebalance(binding, sample_prices)) == expected
    assert threads == ["MainThread"]
    assert _overlap._jobs.empty()
