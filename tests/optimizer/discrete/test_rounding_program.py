"""The whole-share settle: the greedy repair first, HiGHS (through highspy, quiet by its own
option) only where the repair gets stuck."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete import _settling
from finwiz.optimizer.discrete._candidates import _Moves
from finwiz.optimizer.discrete._pricing import _Rows


def _knapsack() -> tuple[np.ndarray, sparse.csc_array, np.ndarray, np.ndarray]:
    """min -v'x, weights'x <= 10, x in {0, 1}^6, one free scalar column s = sum(x)."""
    values = np.array([6.1, 5.0, 4.0, 3.0, 2.0, 1.5])  # one best choice: items 0, 1, 5
    weights = np.array([5.0, 4.0, 3.0, 3.0, 2.0, 1.0])
    dense = np.vstack([np.append(weights, 0.0), np.append(np.ones(6), -1.0)])
    return np.append(-values, 0.0), sparse.csc_array(dense), np.array([-np.inf, 0.0]), np.array([10.0, 0.0])


def test_program_finds_the_best_zero_one_choice() -> None:
    objective, matrix, lo, up = _knapsack()
    found = _settling._program(objective, matrix, lo, up, np.ones(6, bool), 5.0)
    assert found.x is not None
    assert not found.infeasible
    best = min(
        (float(objective[:6] @ np.array(pick)), pick)
        for pick in itertools.product((0, 1), repeat=6)
        if np.array(pick) @ matrix.toarray()[0, :6] <= 10.0
    )
    assert found.x[:6] @ objective[:6] == pytest.approx(best[0])
    assert found.x[6] == pytest.approx(sum(best[1]))  # the free scalar column follows its row
    assert found.gap is not None
    assert found.gap <= 1e-6


def test_program_relaxation_and_infeasibility() -> None:
    objective, matrix, lo, up = _knapsack()
    relaxed = _settling._program(objective, matrix, lo, up, np.zeros(6, bool), 5.0)
    assert relaxed.x is not None
    assert relaxed.gap is None
    bound = linprog(objective[:6], A_ub=matrix.toarray()[:1, :6], b_ub=[10.0], bounds=(0, 1))
    assert relaxed.x[:6] @ objective[:6] == pytest.approx(bound.fun)
    assert bound.fun < -12.6 - 1e-6  # below the best 0/1 choice: a relaxation, not the program
    impossible = _settling._program(
        objective, matrix, np.array([11.0, 0.0]), np.array([10.5, 0.0]), np.ones(6, bool), 5.0
    )
    assert impossible.infeasible
    assert impossible.x is None


def test_program_leaves_the_callers_matrix_as_it_was() -> None:
    """Repeated entries are summed for HiGHS on a copy: the caller's matrix keeps them."""
    objective, matrix, lo, up = _knapsack()
    halves = (np.repeat(matrix.data / 2, 2), np.repeat(matrix.indices, 2), 2 * matrix.indptr)
    doubled = sparse.csc_array(halves, shape=matrix.shape)  # each entry twice, as halves
    before = doubled.nnz
    assert before == 2 * matrix.nnz
    found = _settling._program(objective, doubled, lo, up, np.ones(6, bool), 5.0)
    expected = _settling._program(objective, matrix, lo, up, np.ones(6, bool), 5.0)
    assert found.x is not None
    assert expected.x is not None
    assert found.x.tolist() == expected.x.tolist()
    assert doubled.nnz == before


def test_the_settle_prints_nothing() -> None:
    """A fresh process (HiGHS prints its banner once per process when it may, and some builds print
    MIP progress whatever their options say): a settle through HiGHS and a tiny 0/1 program."""
    script = (
        "import numpy as np\n"
        "from scipy import sparse\n"
        "from finwiz import rebalance\n"
        "from finwiz.optimizer.discrete import _settling\n"
        "from tests.optimizer.discrete.test_rounding_program import _binding_request\n"
        "calls = []\n"
        "real = _settling._program\n"
        "_settling._program = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "assert rebalance(*_binding_request()).is_compliant\n"
        "assert calls\n"
        "m = sparse.csc_array(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, -1.0]]))\n"
        "r = real(np.array([1.0, 2.0, 0.0]), m, np.array([1.0, 0.0]), np.array([np.inf, 0.0]), np.ones(2, bool), 5.0)\n"
        "assert r.x is not None\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout == ""


def _binding_request(n: int = 40) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """``n`` assets, two sectors targeted above a 30 % cap, a turnover cap, whole shares."""
    rng = np.random.default_rng(7)
    symbols = [f"S{i:02d}" for i in range(n)]
    prices = rng.uniform(20.0, 400.0, n)
    target = rng.dirichlet(np.full(n, 3.0)) * 0.97
    k = n // 4
    target[:k] *= 0.36 / target[:k].sum()
    target[k : 2 * k] *= 0.34 / target[k : 2 * k].sum()
    target[2 * k :] *= 0.27 / target[2 * k :].sum()
    drifted = target * np.exp(rng.normal(0.0, 0.4, n))
    shares = np.floor(drifted / drifted.sum() * 0.97 * 500_000.0 / prices)
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=float(q)) for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        cash=500_000.0 - float(shares @ prices),
        method="minimize_costs",
        tolerance=0.0,
        transaction_cost_rate=0.001,
        allow_fractional_shares=False,
        sectors={s: ("A" if i < k else "B" if i < 2 * k else "C") for i, s in enumerate(symbols)},
        max_sector_weight=0.3,
        max_turnover=0.2,
    )
    return config, dict(zip(symbols, prices.tolist(), strict=True))


def _count(monkeypatch: pytest.MonkeyPatch, name: str, replace: object = None) -> list[int]:
    calls: list[int] = []
    real = getattr(_settling, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return replace if replace is not None else real(*args, **kwargs)

    monkeypatch.setattr(_settling, name, counted)
    return calls


def test_highs_settles_and_the_repair_stands_in_where_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    config, prices = _binding_request()
    programs = _count(monkeypatch, "_program")
    settled = rebalance(config, prices)
    assert programs, "the request must bind at the cheapest whole-share choice (a settle)"
    assert settled.is_compliant

    from finwiz.errors import SolverError
    from finwiz.optimizer import clear_cache

    clear_cache()

    def failing(*args: object, **kwargs: object) -> object:
        raise SolverError("HiGHS stands down", solver="HiGHS", status="failed")

    monkeypatch.setattr(_settling, "_milp", failing)
    repairs = _count(monkeypatch, "_repair")
    repaired = rebalance(config, prices)
    assert repairs
    assert repaired.is_compliant
    # Both settles end in the same descent: within 1 % of each other (measured: 0.16 %).
    assert repaired.objective_value == pytest.approx(settled.objective_value, rel=1e-2)


def test_cheapen_takes_back_what_the_repair_overshot() -> None:
    """Two assets share one row (<= 1.2, 2.0 at their cheapest); the repair's ratio-ranked batch
    moves both (price 0.6), the cheapest choice keeping the row moves one by a little (0.5)."""
    owner = np.array([0, 0, 0, 1, 1])
    price = np.array([0.0, 0.5, 0.55, 0.0, 0.1])
    row = np.array([1.0, 0.2, 0.0, 1.0, 0.7])
    zeros = np.zeros(5)
    moves = _Moves(owner, zeros, zeros, zeros, np.zeros((5, SCALARS)))
    choices = _settling._Choices(moves, price, sparse.csr_array(row[None, :]), sparse.csr_array(np.zeros((1, SCALARS))))
    empty = sparse.csc_array((1, 0))
    on = _Rows(empty, np.zeros((1, SCALARS)), np.zeros(1), np.array([-np.inf]), np.array([1.2]), empty.tocsr())
    repaired = _settling._repair(np.array([0, 3]), choices, on)
    assert repaired is not None
    cheapened = _settling._cheapen(repaired, choices, on)
    best = min(
        (float(price[[a, b]].sum()), [a, b]) for a in (0, 1, 2) for b in (3, 4) if row[[a, b]].sum() <= 1.2 + 1e-12
    )
    assert float(price[repaired].sum()) > best[0] + 0.05  # the repair alone overshoots
    assert sorted(cheapened.tolist()) == best[1]


def test_a_program_after_others_answers_as_the_first_and_its_time_limit_is_its_own() -> None:
    """After a relaxation and an infeasible program, a 0/1 program finds what it found first, bit
    for bit; a time limit stops only the program it was given to."""
    objective, matrix, lo, up = _knapsack()
    first = _settling._program(objective, matrix, lo, up, np.ones(6, bool), 5.0)
    _settling._program(objective, matrix, lo, up, np.zeros(6, bool), 5.0)
    _settling._program(objective, matrix, np.array([11.0, 0.0]), np.array([10.5, 0.0]), np.ones(6, bool), 5.0)
    again = _settling._program(objective, matrix, lo, up, np.ones(6, bool), 5.0)
    assert first.x is not None
    assert again.x is not None
    assert again.x.tolist() == first.x.tolist()
    assert (again.gap, again.status) == (first.gap, first.status)
    assert _settling._program(objective, matrix, lo, up, np.ones(6, bool), 1e-9).status == "kTimeLimit"
    assert _settling._program(objective, matrix, lo, up, np.ones(6, bool), 5.0).status == "kOptimal"


def test_the_programs_sparse_pieces_are_scipys() -> None:
    """The scalar columns' CSR from their nonzeros and a CSR's entries read off its arrays are
    scipy's conversions, entry for entry (a CSR with a repeated place goes through scipy's)."""
    rng = np.random.default_rng(5)
    dense = np.where(rng.random((9, SCALARS)) < 0.6, 0.0, rng.normal(size=(9, SCALARS)))
    dense[4] = 0.0  # a row without entries
    built, plain = _settling._csr(dense), sparse.csr_array(dense)
    for name in ("indptr", "indices", "data"):
        assert getattr(built, name).tolist() == getattr(plain, name).tolist()
    repeated = sparse.csr_array((np.array([1.0, 2.0, 3.0]), np.array([2, 2, 0]), np.array([0, 2, 3])), shape=(2, 4))
    for matrix in (plain, repeated):
        coo = sparse.coo_array(matrix)
        coo.sum_duplicates()
        rows, cols, vals = _settling._entries(matrix)
        assert (rows.tolist(), cols.tolist(), vals.tolist()) == (coo.row.tolist(), coo.col.tolist(), coo.data.tolist())


def test_stacked_rows_kept_are_scipys_csc() -> None:
    """The 0/1 program's rows from their entries (in no order, one per place), all of them or
    those a mask keeps, are the CSC scipy builds from the (row, column) pairs, entry for entry."""
    rng = np.random.default_rng(11)
    place = rng.choice(8 * 6, size=20, replace=False)
    rows, cols = np.divmod(place, 6)
    stacked = _settling._Stacked(rows, cols, rng.normal(size=20), (8, 6))
    keep = np.array([True, False, True, True, False, True, True, False])
    for mask in (None, keep):
        at = np.ones(20, bool) if mask is None else mask[rows]
        kept_rows = rows[at] if mask is None else (np.cumsum(mask) - 1)[rows[at]]
        shape = (8, 6) if mask is None else (int(mask.sum()), 6)
        plain = sparse.csc_array((stacked.vals[at], (kept_rows, cols[at])), shape=shape)
        built = stacked.csc(mask)
        assert built.shape == plain.shape
        for name in ("indptr", "indices", "data"):
            assert getattr(built, name).tolist() == getattr(plain, name).tolist()
