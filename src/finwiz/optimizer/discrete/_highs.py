"""The settle's HiGHS calls: one program (an LP relaxation from a given basis, or a 0/1 program) on
a HiGHS of its own.

Not a HiGHS kept between programs: a run changes its options (it left the primal feasibility
tolerance at 1e-6, and a later program took another vertex), and clearing it saved ~0.07 ms a
call (docs/decisions/settle-and-descent.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy import sparse

from finwiz.optimizer._trace import count


def _solver() -> Any:
    """A new HiGHS, quiet."""
    import highspy

    # The bare binding: the wrapper class prints a banner on stdout when it is built.
    h = highspy._Highs()  # type: ignore[attr-defined]
    h.setOptionValue("output_flag", False)  # before the model: HiGHS logs on passModel
    if _ONE_THREAD[0]:
        h.setOptionValue("threads", 1)  # HiGHS's worker thread spins beside the MIP: twice the CPU, no gain
    return h


_ONE_THREAD = [True]
"""Whether HiGHS runs on one thread: its thread pool is the process's, started by the first run;
once another HiGHS started it with more threads, asking for one is an error (so, no more)."""


@dataclass(frozen=True)
class _Program:
    """What HiGHS said about one program: its point (None without a feasible one), whether it
    proved the program infeasible, the MIP gap and HiGHS's status name."""

    x: np.ndarray | None
    infeasible: bool = False
    gap: float | None = None
    status: str = ""


_FEASIBLE = 2  # HiGHS's primal_solution_status of a feasible point


def _program(
    objective: np.ndarray,
    matrix: sparse.csc_array,
    lo: np.ndarray,
    up: np.ndarray,
    binary: np.ndarray,
    time_limit: float,
    nonnegative: int = 0,
    basic: tuple[np.ndarray, np.ndarray] | None = None,
) -> _Program:
    """HiGHS on ``min objective'x, lo <= matrix x <= up`` with ``binary`` columns in {0, 1} (the
    rest: the scalar columns, free, then ``nonnegative`` columns >= 0); the relaxation when none is
    binary, its simplex started from the basis whose basic columns and rows are ``basic`` (masks)."""
    count("highs")
    import highspy

    k, rest = len(binary), len(objective) - len(binary)
    matrix = sparse.csc_array(matrix)
    if not matrix.has_canonical_format:  # HiGHS refuses repeated entries; sorted ones are cheaper to pass
        matrix = matrix.copy()  # the caller's matrix stays as it was
        matrix.sum_duplicates()
    col_lower = np.concatenate([np.zeros(k), np.full(rest - nonnegative, -np.inf), np.zeros(nonnegative)])
    col_upper = np.concatenate([np.ones(k), np.full(rest, np.inf)])
    integrality = np.concatenate([binary, np.zeros(rest, bool)]).astype(np.int32)  # 1: HiGHS's kInteger
    # The arrays as they are: HighsLp's attributes copy them element by element.
    model = (len(objective), matrix.shape[0], matrix.nnz, int(highspy.MatrixFormat.kColwise), 1, 0.0)
    given = (objective, col_lower, col_upper, lo, up, matrix.indptr, matrix.indices, matrix.data, integrality)
    arrays = [np.ascontiguousarray(a, np.int32 if a.dtype.kind in "iub" else np.float64) for a in given]
    found = _Program(None)
    # HiGHS's presolve fails ("Solve error") on some of these small, nearly degenerate
    # programs, and without it HiGHS has called a feasible one infeasible: without it only
    # after such a failure (an infeasibility found with presolve stands). A relaxation goes
    # without it first: its dense rows (the scalars, the turnover) cost presolve more than the simplex.
    for presolve in ("on", "off") if binary.any() else ("off", "on"):
        h = _solver()
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("presolve", presolve)
        h.passModel(*model, *arrays)
        if basic is not None and presolve == "off":
            h.setBasis(_basis(*basic))
        _run(h)
        status = h.getModelStatus()
        info = h.getInfo()
        x = np.array(h.getSolution().col_value) if info.primal_solution_status == _FEASIBLE else None
        gap = float(info.mip_gap) if binary.any() and x is not None else None
        found = _Program(x, status == highspy.HighsModelStatus.kInfeasible, gap, status.name)
        if found.x is not None or (found.infeasible and presolve == "on"):
            break
    return found


def _run(h: Any) -> None:
    """``h.run()``; where another HiGHS started the process's thread pool with more threads (the
    run refused, nothing solved), again on that pool, and no more asking for one thread."""
    import highspy

    if h.run() == highspy.HighsStatus.kError and h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        _ONE_THREAD[0] = False  # (only a run asking for one thread is refused so)
        h.setOptionValue("threads", 0)
        h.run()


@cache
def _statuses() -> np.ndarray:
    """HiGHS's nonbasic-at-lower and basic statuses, as an object array to index with masks."""
    import highspy

    return np.array([highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic], dtype=object)


def _basis(columns: np.ndarray, rows: np.ndarray) -> Any:
    """HiGHS's basis with ``columns`` and ``rows`` (masks) basic, the rest at their lower bounds."""
    import highspy

    basis = highspy.HighsBasis()
    basis.col_status = _statuses()[columns.astype(np.intp)].tolist()
    basis.row_status = _statuses()[rows.astype(np.intp)].tolist()
    basis.valid = True
    return basis
