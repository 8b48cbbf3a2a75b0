"""The checks around each warm solve, held to the plain computations they replace: the row groups'
residuals in one pass, the KKT certificate, and the bound arrays a re-weighted re-solve shares."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from finwiz import PortfolioConfiguration
from finwiz.optimizer.solve import _qp_build, _qp_hessian, _solvers
from finwiz.optimizer.solve._qp import NativeQP
from tests.optimizer.solve.test_native import _clarabel_answer


def _plain_residuals(qp: NativeQP, az: np.ndarray) -> dict[str, float]:
    gap = np.maximum(qp.lower - az, az - qp.upper)
    out: dict[str, float] = {}
    for name, a, b in qp.groups:
        out[name] = max(out.get(name, 0.0), float(gap[a:b].max(initial=0.0)))
    return out


def _plain_kkt(qp: NativeQP, z: np.ndarray, y: np.ndarray) -> bool:
    y = np.where(y > 0, np.where(np.isfinite(qp.upper), y, 0.0), np.where(np.isfinite(qp.lower), y, 0.0))
    pz = qp.hess(z)
    stationarity = float(np.max(np.abs(pz + qp.q + qp.A.T @ y), initial=0.0))
    if stationarity > _solvers.KKT_TOLERANCE * max(1.0, float(np.max(np.abs(qp.q), initial=0.0))):
        return False
    az = qp.A @ z
    push_up, push_down = np.maximum(y, 0.0), np.maximum(-y, 0.0)
    with np.errstate(invalid="ignore"):
        up = np.where(push_up > 0, push_up * (qp.upper - az), 0.0)
        down = np.where(push_down > 0, push_down * (az - qp.lower), 0.0)
    gap = float(np.sum(np.abs(up)) + np.sum(np.abs(down)))
    objective = abs(qp.objective(z, pz)) * qp.scale
    return bool(np.isfinite(gap) and gap <= _solvers.KKT_TOLERANCE * max(1.0, objective))


@pytest.fixture
def answered(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> tuple[Any, np.ndarray, np.ndarray]:
    return _clarabel_answer(sample_config, sample_prices)


def test_residuals_in_one_pass_equal_each_groups_own_maximum(answered: tuple[Any, np.ndarray, np.ndarray]) -> None:
    qp, z, _ = answered
    rng = np.random.default_rng(3)
    m = len(qp.lower)
    # The QP's own groups, then groups with gaps between them, an empty one, a repeated name and
    # rows after the last group (as the auxiliary rows are).
    cut = sorted(rng.choice(np.arange(1, m - 2), 5, replace=False).tolist())
    odd = [("a", 0, cut[0]), ("b", cut[1], cut[2]), ("empty", cut[2], cut[2]), ("a", cut[3], cut[4])]
    for groups in (qp.groups, odd, [("all", 0, m)], []):
        shaped = dataclasses.replace(qp, groups=groups, spans=None)
        for scale in (0.0, 1e-12, 1e-3, 1.0):
            az = qp.A @ z + rng.normal(0.0, scale, m)
            assert shaped.residuals(z, az) == _plain_residuals(shaped, az)
    assert qp.spans is not None  # built with the QP, shared by its re-solves


def test_kkt_certificate_agrees_with_the_plain_check(answered: tuple[Any, np.ndarray, np.ndarray]) -> None:
    qp, z, y = answered
    rng = np.random.default_rng(5)
    verdicts = set()
    for scale in (0.0, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-3):
        for _ in range(5):
            dz = z + rng.normal(0.0, scale, len(z)) * np.abs(z)
            dy = y + rng.normal(0.0, scale, len(y)) * np.abs(y)
            verdict = _solvers.kkt_certified(qp, dz, dy)
            assert verdict == _plain_kkt(qp, dz, dy)
            assert verdict == _solvers.kkt_certified(qp, dz, dy, qp.A @ dz)
            verdicts.add(verdict)
    assert verdicts == {True, False}  # both sides of the threshold were tried


@pytest.mark.parametrize(("n", "nz"), [(1, 7), (4, 13), (100, 205)])
def test_the_kept_pattern_of_p_is_its_curvature_blocks_and_diagonal(n: int, nz: int) -> None:
    rng = np.random.default_rng(n)
    curvature, diagonal = rng.uniform(0.1, 1.0, n), rng.uniform(0.0, 1.0, nz - 2 * n)
    indices, indptr = _qp_hessian._p_pattern(n, nz)
    data = np.concatenate([curvature, np.column_stack([-curvature, curvature]).ravel(), diagonal])
    got = sparse.csc_matrix((data, indices, indptr), shape=(nz, nz)).toarray()
    expected = np.zeros((nz, nz))
    i = np.arange(n)
    expected[i, i], expected[i, i + n], expected[i + n, i + n] = curvature, -curvature, curvature
    expected[np.arange(2 * n, nz), np.arange(2 * n, nz)] = diagonal
    assert np.array_equal(got, expected)
    assert _qp_hessian._p_pattern(n, nz)[0] is indices  # kept
    assert not indices.flags.writeable


def _plain_definition_rows(n: int, buy: np.ndarray, sell: np.ndarray, rate: np.ndarray, has_cost: bool) -> tuple:  # type: ignore[type-arg]
    """The definition rows built from scratch (as before the per-size pattern was kept)."""
    scalars = _qp_build.SCALARS
    nt, both = 2 * n + scalars, np.arange(2 * n)
    ones, signs = np.ones(2 * n), np.concatenate([np.ones(n), -np.ones(n)])
    rows = [np.arange(nt), np.full(2 * n + 1, nt), np.full(2 * n + 1, nt + 1)]
    cols = [np.arange(nt), np.append(both, 2 * n + 1), np.append(both, 2 * n + 2)]
    vals = [np.ones(nt), np.append(-ones, 1.0), np.append(-signs, 1.0)]
    if np.all(rate == rate[0]):
        rows.append(np.full(2, nt + 2))
        cols.append(np.array([2 * n, 2 * n + 1]))
        vals.append(np.array([1.0, -float(rate[0])]))
    else:
        rows.append(np.full(2 * n + 1, nt + 2))
        cols.append(np.append(both, 2 * n))
        vals.append(np.append(-np.concatenate([rate, rate]), 1.0))
    lower = [np.concatenate([np.zeros(2 * n + 2), [-np.inf], np.zeros(scalars - 3)]), np.zeros(2), np.zeros(1)]
    tail = [np.inf if has_cost else 0.0, np.inf, np.inf]
    upper = [np.concatenate([buy, sell, tail, np.zeros(scalars - 3)]), np.zeros(2), np.full(1, np.inf)]
    return rows, cols, vals, lower, upper


@pytest.mark.parametrize("n", [1, 5, 40])
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("has_cost", [True, False])
def test_the_kept_definition_pattern_gives_the_plain_rows(n: int, uniform: bool, has_cost: bool) -> None:
    rng = np.random.default_rng(n)
    rate = np.full(n, 0.002) if uniform else rng.uniform(0.001, 0.003, n)
    for _ in range(2):  # the second call reads the kept pattern
        buy, sell = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        got = _qp_build._definition_rows(n, buy, sell, rate, has_cost)
        want = _plain_definition_rows(n, buy, sell, rate, has_cost)
        for a, b in zip(got, want, strict=True):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype
                assert np.array_equal(x, y)
    assert not any(a.flags.writeable for part in _qp_build._definition_pattern(n) for a in part)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 12, 32, 33, 80])
def test_the_merge_of_few_entries_is_np_unique_and_bincount(size: int) -> None:
    """``_merged`` (Python below 33 entries) against np.unique + np.bincount: keys, first rows and
    columns, sums bit for bit (repeated keys, -0.0 and values that round differently by order)."""
    from finwiz.optimizer.describe._model import _merged

    rng = np.random.default_rng(size)
    for _ in range(20):
        key = rng.integers(0, max(1, size // 2 + 1), size)
        rows, cols = rng.integers(0, 50, size), rng.integers(-5, 50, size)
        vals = rng.choice([-0.0, 0.0, 0.1, 1e16, -1e16, 1.0 / 3.0, -2.5], size)
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        want = rows[first], cols[first], np.bincount(inverse, weights=vals, minlength=len(unique))
        got = _merged(rows, cols, vals, key)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            assert a.tobytes() == b.tobytes()


def _set_up(qp: NativeQP) -> Any:
    from finwiz.optimizer.solve import _workspaces

    return _workspaces._workspace(qp, None, 10.0)


def test_the_direct_osqp_calls_give_the_wrappers_answers(answered: tuple[Any, np.ndarray, np.ndarray]) -> None:
    """A workspace driven through the extension object and one through OSQP's wrapper, loaded with
    the same vectors in turn (a changed q alone, new bounds with infinities, the first again) and
    given the same tolerances and caps, give the same status, iterations and points to the bit."""
    qp, _, _ = answered
    direct, wrapped = _set_up(qp), _set_up(qp)
    assert direct.raw is not None
    wrapped.raw = None
    rng = np.random.default_rng(5)
    q = qp.q * (1.0 + 0.1 * rng.random(len(qp.q)))
    upper = np.where(np.isfinite(qp.upper), qp.upper + 1e-3, np.inf)
    steps = [qp, dataclasses.replace(qp, q=q), dataclasses.replace(qp, q=q, upper=upper), qp]
    for step, (eps, cap) in zip(steps, [(1e-1, 4_000), (1e-3, 600), (1e-5, 30), (1e-2, 600)], strict=True):
        answers = []
        for workspace in (direct, wrapped):
            workspace.load(step, 10.0)
            workspace.tune(eps, cap)
            answers.append(workspace.solve())
        (status, iterations, polish, x, y), plain = answers
        assert (status, iterations, polish) == plain[:3]
        assert status in ("solved", "maximum iterations reached")
        assert np.array_equal(x, plain[3])
        assert np.array_equal(y, plain[4])
        assert x.dtype == np.float64
        assert x.flags.owndata


def test_the_objective_from_the_kept_curvature_product_is_the_plain_one(
    answered: tuple[Any, np.ndarray, np.ndarray],
) -> None:
    qp, _z, _y = answered
    workspace = _set_up(qp)
    workspace.load(qp, 10.0)
    found = _solvers._admm(qp, workspace, 4_000)
    assert found.z is not None
    assert found.pz is not None
    assert np.array_equal(found.pz, qp.hess(found.z))
    assert qp.objective(found.z, found.pz) == qp.objective(found.z)


def test_a_kept_p_is_the_one_built_from_its_values() -> None:
    """The last ``P`` of a size is handed out again only for the same values (read-only, as it is
    shared), equal to a fresh build; other values or ``clear_cache`` build a new one."""
    from finwiz.optimizer.solve._assembler import clear_cache

    clear_cache()
    n, nz = 4, 13
    data = np.arange(1.0, n + nz + 1)  # n buys, 2n sell entries, nz - 2n scalars and aux
    first = _qp_hessian._p_matrix(data.copy(), n, nz)
    fresh = sparse.csc_matrix((data, *_qp_hessian._p_pattern(n, nz)), shape=(nz, nz))
    assert (first != fresh).nnz == 0
    assert not first.data.flags.writeable
    assert _qp_hessian._p_matrix(data.copy(), n, nz) is first
    other = data.copy()
    other[2] = -0.5
    second = _qp_hessian._p_matrix(other, n, nz)
    assert second is not first
    assert np.array_equal(second.data, other)
    assert _qp_hessian._p_matrix(np.ones(n + nz + 4), n + 1, nz + 3).shape == (nz + 3, nz + 3)  # another size
    assert _qp_hessian._p_matrix(other.copy(), n, nz) is second  # kept beside it
    clear_cache()
    assert _qp_hessian._p_matrix(other.copy(), n, nz) is not second


def test_a_workspace_set_up_directly_answers_as_the_wrappers(answered: tuple[Any, np.ndarray, np.ndarray]) -> None:
    """``_workspaces._set_up`` (the extension's set-up called without the wrapper's checks) and
    ``OSQP.setup`` give the same solves, to the bit, through the same loads (its own QP first, its
    matrices and time limit known from the set-up; new vectors; new matrix values through the
    wrapper's update); a ``P`` with entries below its diagonal is left to the wrapper."""
    import osqp

    from finwiz.optimizer.solve import _workspaces

    qp, _, _ = answered
    direct = _workspaces._workspace(qp, None, 10.0)
    plain = osqp.OSQP(algebra=_workspaces._algebra())
    plain.setup(qp.P, qp.q, qp.A, qp.lower, qp.upper, **_workspaces.OSQP_SETTINGS, time_limit=10.0)
    wrapped = dataclasses.replace(direct, solver=plain, loaded=(None, None), time_limit=None)
    assert direct.solver.settings.eps_abs == plain.settings.eps_abs
    q = qp.q * 1.05
    a_values = qp.A.data * np.where(qp.A.indices >= 2 * qp.n + 3, 1.01, 1.0)
    a_matrix = sparse.csc_matrix((a_values, qp.A.indices, qp.A.indptr), shape=qp.A.shape)
    for step in [qp, dataclasses.replace(qp, q=q), dataclasses.replace(qp, A=a_matrix, a_t=None), qp]:
        answers = []
        for workspace in (direct, wrapped):
            workspace.load(step, 10.0)
            answers.append(workspace.solve())
        (status, iterations, polish, x, y), other = answers
        assert (status, iterations, polish) == other[:3]
        assert np.array_equal(x, other[3])
        assert np.array_equal(y, other[4])
    full = (qp.P + sparse.triu(qp.P, 1).T).tocsc()
    assert not _workspaces._set_up(osqp.OSQP(algebra=_workspaces._algebra()), dataclasses.replace(qp, P=full), 10.0)


def test_clarabel_given_lists_solves_as_given_arrays(
    answered: tuple[Any, np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clarabel's data as lists (``_solvers.clarabel_solver``) gives the solve the arrays give, to
    the bit; a Clarabel that refuses the lists is given the arrays from then on."""
    import clarabel

    qp, _, _ = answered
    a = qp.A.tocsc()
    a.data = -a.data
    b = np.where(np.isfinite(qp.upper), qp.upper, 1e3)
    cones = [clarabel.NonnegativeConeT(a.shape[0])]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    plain = clarabel.DefaultSolver(qp.P, qp.q, a, b, cones, settings).solve()
    listed = _solvers.clarabel_solver(qp.P, qp.q, a, b, cones, settings).solve()
    assert str(plain.status) == str(listed.status)
    assert plain.iterations == listed.iterations
    assert plain.x == listed.x
    assert plain.z == listed.z
    given = []
    solver = clarabel.DefaultSolver

    def arrays_only(p: Any, *args: Any) -> Any:
        given.append(type(p))
        if not sparse.issparse(p):
            raise TypeError("arrays only")
        return solver(p, *args)

    monkeypatch.setattr(_solvers, "_LISTS", [True])
    monkeypatch.setattr(clarabel, "DefaultSolver", arrays_only)
    for _ in range(2):
        assert _solvers.clarabel_solver(qp.P, qp.q, a, b, cones, settings).solve().x == plain.x
    assert given == [_solvers._AsLists, type(qp.P), type(qp.P)]
