"""The settle's HiGHS on one thread, and on the process's thread pool as it is where another HiGHS
started it with more. HiGHS's pool is per process: each case runs in a fresh one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_KNAPSACK = (
    "import numpy as np\n"
    "import highspy\n"
    "from finwiz.optimizer.discrete import _highs\n"
    "from tests.optimizer.discrete.test_rounding_program import _knapsack\n"
    "def empty(threads):\n"
    "    h = highspy._Highs()\n"
    "    h.setOptionValue('output_flag', False)\n"
    "    h.setOptionValue('threads', threads)\n"
    "    h.passModel(highspy.HighsLp())\n"
    "    return h.run() == highspy.HighsStatus.kOk\n"
    "def best():\n"
    "    found = _highs._program(*_knapsack(), np.ones(6, bool), 5.0)\n"
    "    assert found.x is not None and not found.infeasible\n"
    "    assert np.flatnonzero(found.x[:6] > 0.5).tolist() == [0, 1, 5], found.x\n"
)


def _run(script: str) -> None:
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", _KNAPSACK + script], capture_output=True, text=True, check=True, cwd=root)


def test_the_settle_starts_highs_on_one_thread() -> None:
    """After a settle's program the pool has one thread: a run asking for two is refused."""
    _run("best()\nassert _highs._ONE_THREAD[0]\nassert not empty(2)\nassert empty(1)\n")


def test_the_settle_runs_on_a_pool_another_highs_started() -> None:
    """A pool of two threads started first: the program still answers, every time, on that pool."""
    _run("assert empty(2)\nbest()\nassert not _highs._ONE_THREAD[0]\nbest()\nassert empty(2)\n")
