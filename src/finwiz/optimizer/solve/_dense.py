"""The continuous solve of a QP whose weights carry a dense full-rank block (a covariance with as
many factors as assets), in O(n^2) work per iteration instead of a dense factorisation.

The weights ``w = x0 + buy - sell`` are eliminated, leaving ``x = [buy, sell, scalars]`` with
``0.5 x'Hx + g'x``, ``H = J'NJ + diag(scalars)``, ``J = [I, -I, 0]``, ``N = M + c I`` (``M`` the
dense block, ``c`` the uniform curvature of the tracking term), bounds on every column and a few
coupling rows ``C`` (budget, sectors, turnover, cost). OSQP's ADMM with one ``rho`` on every bound
solves ``(H + (sigma + rho) I + C'RC) x = r``: along ``b - s`` that is ``N`` plus a uniform
diagonal, diagonal in ``M``'s eigenbasis (kept once per covariance, ``risk._model.root_eigen``);
along ``b + s`` a diagonal; ``C`` through Woodbury with a ``k x k`` system taken in the eigenbasis,
rebuilt in O(n k^2) when ``rho`` changes; ``H x`` for the residuals read off each solve's
equation. The problem is equilibrated as OSQP does, with one factor for every buy and sell column
so that the basis holds. ADMM only has to name the active set: from loose residuals
each check makes its point exact on that set (one dense solve on the free columns, a few
corrections) and the QP's own KKT check certifies it; None hands the QP back to Clarabel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from finwiz._blas import single_threaded
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.solve._qp import NativeQP
from finwiz.optimizer.solve._solvers import POLISHED_RESIDUAL, NativeSolution, kkt_certified

__all__ = ["solve_dense"]

_RHO = 0.1
# rho follows the residuals' ratio past this factor (OSQP's 5 waits longer: docs/decisions/dense-covariance.md)
_ADAPT = 2.0
_SIGMA = 1e-6
_ALPHA = 1.6
_CHECK_EVERY = 10
_MAX_ITERATIONS = 1000  # then Clarabel; small cases converge slowest (docs/decisions/dense-covariance.md)
_EPS = 1e-3  # relative ADMM residuals from which each check tries the active-set finish (cheap next to 10 iterations)
_ACTIVE_ROUNDS = 4  # active-set corrections after the ADMM point at most


@dataclass
class _Reduced:
    """The QP over ``x = [buy, sell, scalars]`` (see the module docstring)."""

    n: int
    curvature: float
    scalar_diag: np.ndarray
    m: np.ndarray  # the dense block M (n x n)
    values: np.ndarray  # eigenvalues of N = M + c I
    vectors: np.ndarray
    g: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    lo_row: np.ndarray  # the QP row (and its coefficient) that sets each column's lower bound
    hi_row: np.ndarray
    coef_lo: np.ndarray
    coef_hi: np.ndarray
    c: np.ndarray  # coupling rows (k x nx), dense
    lc: np.ndarray
    uc: np.ndarray
    c_rows: np.ndarray
    w_rows: np.ndarray  # the QP row defining each w_i
    m_scale: float = 1.0  # the dense block is m_scale x m (equilibrated without a copy of M)

    def hess(self, x: np.ndarray) -> np.ndarray:
        n = self.n
        u = x[:n] - x[n : 2 * n]
        nu = self.m_scale * (self.m @ u) + self.curvature * u
        return np.concatenate([nu, -nu, self.scalar_diag * x[2 * n :]])


def _bounds(qp: NativeQP, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, nx: int) -> tuple[np.ndarray, ...]:
    """Per column the tightest of its one-column rows, and which row sets it (the first of equals)."""
    positive = vals > 0
    low = np.where(positive, qp.lower[rows], qp.upper[rows]) / vals
    high = np.where(positive, qp.upper[rows], qp.lower[rows]) / vals
    out: list[np.ndarray] = []
    for value, side in ((low, -np.inf), (high, np.inf)):
        order = np.lexsort((np.arange(len(rows)), value if side > 0 else -value, cols))
        first = order[np.flatnonzero(np.diff(cols[order], prepend=-1))]  # the tightest row of each column
        first = first[value[first] != side]
        bound, row, coef = np.full(nx, side), np.full(nx, -1), np.ones(nx)
        bound[cols[first]], row[cols[first]], coef[cols[first]] = value[first], rows[first], vals[first]
        out += [bound, row, coef]
    return out[0], out[3], out[1], out[4], out[2], out[5]


def _reduce(qp: NativeQP) -> _Reduced | None:
    """``qp`` over ``x`` when it has the shape the module docstring names, else None."""
    n, nx = qp.n, 2 * qp.n + SCALARS
    if qp.eigen is None or qp.dense_w is None or qp.ladder is not None or qp.A.shape[1] != nx + n:
        return None
    curvature = qp.curvature
    if np.ptp(curvature) > 1e-12 * max(1.0, float(np.abs(curvature).max())) or np.any(qp.diagonal[SCALARS:]):
        return None
    a = qp.A.tocsr()
    a.sort_indices()
    counts = np.diff(a.indptr)
    on_w = np.asarray((a[:, nx:] != 0).sum(axis=1)).ravel() > 0
    w_rows = np.flatnonzero(on_w)
    if len(w_rows) != n or np.any(counts[w_rows] != 3):
        return None
    w_part = a[w_rows]
    w_col = w_part.indices.reshape(n, 3)[:, 2] - nx
    expected = np.column_stack([w_col, n + w_col, nx + w_col])
    if not np.array_equal(w_part.indices.reshape(n, 3), expected) or not np.array_equal(
        w_part.data.reshape(n, 3), np.tile([-1.0, 1.0, 1.0], (n, 1))
    ):
        return None
    order = np.argsort(w_col)
    w_rows = w_rows[order]
    if not (np.array_equal(qp.lower[w_rows], qp.upper[w_rows]) and np.allclose(qp.lower[w_rows], qp.x0, 0, 0)):
        return None
    single = np.flatnonzero((counts == 1) & ~on_w)
    coupling = np.flatnonzero((counts > 1) & ~on_w)
    lo, hi, lo_row, hi_row, coef_lo, coef_hi = _bounds(
        qp, single, a.indices[a.indptr[single]], a.data[a.indptr[single]], nx
    )
    if np.any(lo > hi):
        return None
    m = qp.dense_w
    values, vectors = qp.eigen
    q = qp.q
    slope = q[nx:] + m @ qp.x0
    g = q[:nx].copy()
    g[:n] += slope
    g[n : 2 * n] -= slope
    return _Reduced(
        n, float(curvature[0]), qp.diagonal[:SCALARS].copy(), m, values + curvature[0], vectors, g,
        lo, hi, lo_row, hi_row, coef_lo, coef_hi,
        a[coupling][:, :nx].toarray(), qp.lower[coupling], qp.upper[coupling], coupling, w_rows,
    )  # fmt: skip


class _System:
    """``(H + a I + C' R C)^{-1}`` for ``a = sigma + rho`` (see the module docstring), the coupling
    rows' Woodbury correction taken in ``M``'s eigenbasis: ``basis = V'(C_buy - C_sell)'``, so a
    change of ``rho`` costs O(n k^2) and a solve two products with ``V``."""

    def __init__(self, red: _Reduced, a: float, rho_c: np.ndarray, basis: np.ndarray, single: np.ndarray) -> None:
        n = red.n
        self.red, self.a, self.single, self.basis = red, a, single, basis
        self.scale = 1.0 / (a + 2.0 * red.values)
        ct = red.c.T
        self.half = (ct[:n] + ct[n : 2 * n]) / 2  # (C_buy + C_sell)' / 2
        self.w_both, self.w_scalars = self.half * (2 / a), ct[2 * n :] / (red.scalar_diag + a)[:, None]
        coupled = (
            self.half.T @ self.w_both + 0.5 * basis.T @ (self.scale[:, None] * basis) + ct[2 * n :].T @ self.w_scalars
        )
        self.small = scipy.linalg.lu_factor(np.diag(1.0 / rho_c) + coupled) if len(rho_c) else None

    def solve(self, r: np.ndarray) -> np.ndarray:
        red, n = self.red, self.red.n
        rb, rs = r[:n], r[n : 2 * n]
        y = self.scale * (self.single.T @ (rb - rs).astype(np.float32))  # b - s in the eigenbasis
        both, scalars = (rb + rs) / self.a, r[2 * n :] / (red.scalar_diag + self.a)
        if self.small is not None:
            cx = (
                self.half.T @ both + 0.5 * (self.basis.T @ y) + red.c[:, 2 * n :] @ scalars
            )  # C x before the correction
            v = scipy.linalg.lu_solve(self.small, cx)
            both, scalars = both - self.w_both @ v, scalars - self.w_scalars @ v
            y = y - self.scale * (self.basis @ v)
        u = (self.single @ y.astype(np.float32)).astype(float)
        return np.concatenate([(both + u) / 2, (both - u) / 2, scalars])


def _scaled(red: _Reduced) -> tuple[_Reduced, np.ndarray, np.ndarray, float]:
    """``red`` equilibrated as OSQP does (Ruiz on the KKT matrix, then the objective), with one
    factor for every buy and sell column so that ``N`` keeps its eigenbasis: the scaled QP and the
    column factors ``d``, row factors ``e`` and objective factor."""
    n, nx = red.n, 2 * red.n + SCALARS
    d, e = np.ones(nx), np.ones(len(red.lc))
    n_col = float(np.median(np.maximum(red.m.max(axis=0), -red.m.min(axis=0)))) * red.m_scale + red.curvature
    for _ in range(10):
        c_abs = np.abs(red.c) * e[:, None] * d[None, :]
        cols = np.maximum(c_abs.max(axis=0, initial=0.0), 1.0)
        cols[: 2 * n] = max(float(np.median(cols[: 2 * n])), n_col * d[0] ** 2)
        cols[2 * n :] = np.maximum(cols[2 * n :], np.abs(red.scalar_diag) * d[2 * n :] ** 2)
        d /= np.sqrt(cols)
        e /= np.sqrt(np.maximum(c_abs.max(axis=1, initial=0.0), 1e-8))
    hess_col = np.concatenate([np.full(2 * n, n_col * d[0] ** 2), np.abs(red.scalar_diag) * d[2 * n :] ** 2])
    cost = 1.0 / max(float(np.mean(hess_col)), float(np.abs(red.g * d).max()), 1e-8)
    two = d[0] ** 2 * cost
    scaled = _Reduced(
        n, red.curvature * two, red.scalar_diag * d[2 * n :] ** 2 * cost, red.m, red.values * two,
        red.vectors, red.g * d * cost, red.lo / d, red.hi / d, red.lo_row, red.hi_row, red.coef_lo, red.coef_hi,
        red.c * e[:, None] * d[None, :], red.lc * e, red.uc * e, red.c_rows, red.w_rows, red.m_scale * two,
    )  # fmt: skip
    return scaled, d, e, cost


def _admm(unscaled: _Reduced) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """OSQP's iteration on the reduced QP, equilibrated: ``x``, the bounds' and coupling rows'
    multipliers and the iteration count, at each check from which an active-set finish may hold."""
    red, d, e, cost = _scaled(unscaled)
    for x, yb, yc, it in _iterate(red):
        yield x * d, yb / d / cost, yc * e / cost, it


def _iterate(red: _Reduced) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    n, nx = red.n, 2 * red.n + SCALARS
    k = len(red.lc)
    basis = red.vectors.T @ (red.c.T[:n] - red.c.T[n : 2 * n])
    single = red.vectors.astype(np.float32)  # the iteration's products at half the memory traffic
    rho = _RHO
    equal_c = red.lc == red.uc
    x, zb, yb = np.zeros(nx), np.clip(np.zeros(nx), red.lo, red.hi), np.zeros(nx)
    zc, yc = np.clip(np.zeros(k), red.lc, red.uc), np.zeros(k)
    system = _System(red, _SIGMA + rho, np.where(equal_c, 1e3 * rho, rho), basis, single)
    hx = np.zeros(nx)  # H x, from each solve's own equation: no product with M at the checks
    for it in range(1, _MAX_ITERATIONS + 1):
        rho_c = np.where(equal_c, 1e3 * rho, rho)
        r = _SIGMA * x - red.g + rho * zb - yb + red.c.T @ (rho_c * zc - yc)
        x_t = system.solve(r)
        cx = red.c @ x_t
        hx = _ALPHA * (r - system.a * x_t - red.c.T @ (rho_c * cx)) + (1 - _ALPHA) * hx
        x = _ALPHA * x_t + (1 - _ALPHA) * x
        mix_b, mix_c = _ALPHA * x_t + (1 - _ALPHA) * zb, _ALPHA * cx + (1 - _ALPHA) * zc
        zb_new, zc_new = np.clip(mix_b + yb / rho, red.lo, red.hi), np.clip(mix_c + yc / rho_c, red.lc, red.uc)
        yb, yc = yb + rho * (mix_b - zb_new), yc + rho_c * (mix_c - zc_new)
        zb, zc = zb_new, zc_new
        if it % _CHECK_EVERY:
            continue
        cty, cxx = red.c.T @ yc, red.c @ x
        prim = max(float(np.abs(x - zb).max()), float(np.abs(cxx - zc).max(initial=0.0)))
        dual = float(np.abs(hx + red.g + yb + cty).max())
        prim_scale = max(float(np.abs(x).max()), float(np.abs(cxx).max(initial=0.0)), 1e-12)
        dual_scale = max(float(np.abs(hx).max()), float(np.abs(red.g).max()), float(np.abs(yb + cty).max()), 1e-12)
        if prim <= _EPS * prim_scale and dual <= _EPS * dual_scale:
            yield x, yb, yc, it
        ratio = np.sqrt((prim / prim_scale) / max(dual / dual_scale, 1e-30))
        if ratio > _ADAPT or ratio < 1 / _ADAPT:
            rho = float(np.clip(rho * ratio, 1e-6, 1e9))
            system = _System(red, _SIGMA + rho, np.where(equal_c, 1e3 * rho, rho), basis, single)


def _finish(
    red: _Reduced, at_lo: np.ndarray, at_hi: np.ndarray, c_lo: np.ndarray, c_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact minimiser with the columns ``at_lo``/``at_hi`` held at their bounds and the
    coupling rows ``c_lo``/``c_hi`` at theirs (dense KKT on the free columns), and its multipliers."""
    n, _nx = red.n, 2 * red.n + SCALARS
    fixed = at_lo | at_hi
    x = np.where(at_lo, red.lo, np.where(at_hi, red.hi, 0.0))
    free = np.flatnonzero(~fixed)
    rows = np.flatnonzero(c_lo | c_hi)
    target = np.where(c_lo, red.lc, red.uc)[rows]
    asset = np.where(free < 2 * n, free % n, -1)
    sign = np.where(free < n, 1.0, -1.0)
    on_w = asset >= 0
    h = np.zeros((len(free), len(free)))
    ia = np.flatnonzero(on_w)
    block = red.m_scale * red.m[np.ix_(asset[ia], asset[ia])] + red.curvature * np.equal.outer(asset[ia], asset[ia])
    h[np.ix_(ia, ia)] = block * np.outer(sign[ia], sign[ia])
    sc = np.flatnonzero(~on_w)
    h[sc, sc] = red.scalar_diag[free[sc] - 2 * n]
    cf = red.c[np.ix_(rows, free)]
    rhs_x = -(red.g + red.hess(x))[free]
    rhs_c = target - red.c[rows] @ x
    kkt = np.block([[h, cf.T], [cf, np.zeros((len(rows), len(rows)))]])
    delta = 1e-12 * max(1.0, float(np.abs(np.diag(h)).max(initial=0.0)))
    reg = kkt + np.diag(np.concatenate([np.full(len(free), delta), np.full(len(rows), -delta)]))
    factor = scipy.linalg.lu_factor(reg, check_finite=False)
    rhs = np.concatenate([rhs_x, rhs_c])
    sol = scipy.linalg.lu_solve(factor, rhs, check_finite=False)
    for _ in range(10):  # refinement against the unregularised system
        sol = sol + scipy.linalg.lu_solve(factor, rhs - kkt @ sol, check_finite=False)
    x[free] = sol[: len(free)]
    yc = np.zeros(len(red.lc))
    yc[rows] = sol[len(free) :]
    yb = -(red.hess(x) + red.g + red.c.T @ yc)
    yb[free] = 0.0
    return x, yb, yc


def _active_set(red: _Reduced, x: np.ndarray, yb: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """The ADMM point's active set made exact, corrected while a free column leaves its bounds or
    a held one pulls the wrong way (a few rounds); None when it does not settle."""
    cx = red.c @ x
    at_lo = (x - red.lo < -yb) & np.isfinite(red.lo)
    at_hi = (red.hi - x < yb) & np.isfinite(red.hi) & ~at_lo
    at_lo |= (red.lo == red.hi) & np.isfinite(red.lo)
    c_lo = (cx - red.lc < -yc) & np.isfinite(red.lc)
    c_hi = (red.uc - cx < yc) & np.isfinite(red.uc) & ~c_lo
    for _ in range(_ACTIVE_ROUNDS):
        x, yb, yc = _finish(red, at_lo, at_hi, c_lo, c_hi)
        cx = red.c @ x
        size = max(1.0, float(np.abs(yb).max()), float(np.abs(yc).max(initial=0.0)))
        tol, dtol = 1e-12, 1e-9 * size
        out_lo, out_hi = x < red.lo - tol, x > red.hi + tol
        wrong = (at_lo & (yb > dtol) & (red.lo < red.hi)) | (at_hi & (yb < -dtol))
        c_out_lo, c_out_hi = cx < red.lc - tol, cx > red.uc + tol
        c_wrong = (c_lo & (yc > dtol) & (red.lc < red.uc)) | (c_hi & (yc < -dtol))
        if not (out_lo.any() or out_hi.any() or wrong.any() or c_out_lo.any() or c_out_hi.any() or c_wrong.any()):
            return x, yb, yc
        at_lo, at_hi = (at_lo & ~wrong) | out_lo, (at_hi & ~wrong) | out_hi
        c_lo, c_hi = (c_lo & ~c_wrong) | c_out_lo, (c_hi & ~c_wrong) | c_out_hi
    return None


def _full(qp: NativeQP, red: _Reduced, x: np.ndarray, yb: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(z, y)`` of the QP from the reduced answer (``y`` in OSQP's convention, row by row)."""
    n = red.n
    w = qp.x0 + x[:n] - x[n : 2 * n]
    z = np.concatenate([x, w])
    y = np.zeros(len(qp.lower))
    low = (yb < 0) & (red.lo_row >= 0)
    high = (yb > 0) & (red.hi_row >= 0)
    y[red.lo_row[low]] = yb[low] / red.coef_lo[low]
    y[red.hi_row[high]] = yb[high] / red.coef_hi[high]
    y[red.c_rows] = yc
    y[red.w_rows] = -(qp.dense_w @ w + qp.q[2 * n + SCALARS :])
    return z, y


@single_threaded
def solve_dense(qp: NativeQP) -> NativeSolution | None:
    """``qp`` solved in its dense block's kept eigenbasis (module docstring), certified optimal
    within :data:`POLISHED_RESIDUAL`; None when it does not apply or does not certify."""
    red = _reduce(qp)  # a basis is kept from risk._model.EIGEN_ASSETS assets, where it beats Clarabel
    if red is None:
        return None
    for x, yb, yc, iterations in _admm(red):
        settled = _active_set(red, x, yb, yc)
        if settled is None:
            continue
        z, y = _full(qp, red, *settled)
        az = qp.A @ z
        residuals = qp.residuals(z, az)
        if max(residuals.values(), default=0.0) <= POLISHED_RESIDUAL and kkt_certified(qp, z, y, az):
            return NativeSolution("optimal", z, y, iterations, residuals=residuals)
    return None
