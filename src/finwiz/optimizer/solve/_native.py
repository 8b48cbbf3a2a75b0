"""The native QP: the terms' descriptions (``_model``) stacked into sparse matrices, solved by
OSQP or Clarabel directly.

A compiled cvxpy problem costs ~2.5 ms per solve at 100 assets in ``apply_parameters`` and
unpacking alone, more than the solve, and ~20 ms to compile at 500 assets; a request whose terms
all have a QP description is therefore solved here, without cvxpy. A user's cvxpy term, market
impact (a cone) and the infeasibility diagnosis go through the cvxpy problem derived from the
same descriptions (``_assembler``).

Variables ``z = [buy (n), sell (n), cost, turnover, net purchase, aux (one per low-rank square
row)]``, fractions of ``V_ref`` as in ``_terms``; ``w = x0 + buy - sell`` is not a variable. The
problem is

    minimise 0.5 z'Pz + q'z + const   subject to   l <= A z <= u,

with the objective multiplied by ``OBJECTIVE_SCALE`` as in the cvxpy form. Squares of weights
(tracking, idiosyncratic risk) and of the scalar columns (the cash gap is a square of the net
purchase) go into ``P`` directly; a square of dense rows (the factor part of the risk) gets one
auxiliary variable per row, so ``P`` stays sparse: ``||F z + f||^2 = ||y||^2``, ``y = F z + f``.

Accounts of one model portfolio give matrices of the same sparsity pattern, mostly with the same
values; the OSQP workspace is kept per structure and only the vectors (and, when they changed,
the matrix values) are updated, warm-started from the previous solution.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS, Affine, Description, LimitGroup, TaxForm, column

__all__ = [
    "NativeQP",
    "NativeSolution",
    "build_qp",
    "clear_native_cache",
    "kkt_certified",
    "native_cache_info",
    "plan",
    "polish_osqp",
    "solve_clarabel",
    "solve_osqp",
]

_CACHE_SIZE = 32


@dataclass(eq=False)
class NativeQP:
    """``min 0.5 z'Pz + q'z + const  s.t.  l <= Az <= u`` with named row groups; ``z = [buy, sell,
    cost, turnover, net, aux]``."""

    n: int
    P: sparse.csc_matrix  # upper triangle
    q: np.ndarray
    const: float
    A: sparse.csc_matrix
    lower: np.ndarray
    upper: np.ndarray
    groups: list[tuple[str, int, int]]  # (name, first row, end row) of the checked rows
    curvature: np.ndarray  # P's buy/sell blocks are [[c, -c], [-c, c]] per asset
    diagonal: np.ndarray  # P's diagonal on the scalar and aux columns
    dense_w: np.ndarray | None  # P's block on explicit weights (many factors), columns 2n+SCALARS ...
    x0: np.ndarray
    aux: tuple[np.ndarray, np.ndarray, np.ndarray]  # F as triplets: aux = F z_trade + aux_offset
    aux_offset: np.ndarray
    scale: float
    cost_unit: float  # the cost column holds c / cost_unit
    ladder: Ladder | None = None  # a taxable account's lots, each asset on one segment
    segments: np.ndarray | None = None  # the segment (lot) of each asset this QP is built on
    tax_terms: _TaxTerms | None = None  # how T and G were folded into the sells (see _fold)

    def trades(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Buy, sell (clipped at 0) and the cost c, from a solution ``z``."""
        n = self.n
        return np.maximum(z[:n], 0.0), np.maximum(z[n : 2 * n], 0.0), max(float(z[2 * n]) * self.cost_unit, 0.0)

    def hess(self, z: np.ndarray) -> np.ndarray:
        """``P z`` with the full symmetric ``P`` (numpy on the known block shape, no transpose)."""
        n = self.n
        out = np.empty_like(z)
        u = self.curvature * (z[:n] - z[n : 2 * n])
        out[:n] = u
        out[n : 2 * n] = -u
        out[2 * n :] = self.diagonal * z[2 * n :]
        if self.dense_w is not None:
            w = slice(2 * n + SCALARS, 3 * n + SCALARS)
            out[w] += self.dense_w @ z[w]
        return out

    def residuals(self, z: np.ndarray, az: np.ndarray | None = None) -> dict[str, float]:
        """Largest violation of each row group at ``z`` (0 when satisfied); ``az`` is ``A z`` if
        the caller has it already."""
        az = self.A @ z if az is None else az
        gap = np.maximum(self.lower - az, az - self.upper)
        out: dict[str, float] = {}
        for name, a, b in self.groups:
            out[name] = max(out.get(name, 0.0), float(gap[a:b].max(initial=0.0)))
        return out

    def objective(self, z: np.ndarray, pz: np.ndarray | None = None) -> float:
        """The objective (unscaled, constant included) at ``z``; ``pz`` is ``P z`` if known."""
        pz = self.hess(z) if pz is None else pz
        return float((0.5 * z @ pz + self.q @ z + self.const) / self.scale)

    def point(self, buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray:
        """The full variable vector for given trades (turnover, net and aux variables filled in)."""
        # T and G are 0 in the native QP: a taxable account's are folded into the sells (_fold).
        scalars = [cost / self.cost_unit, float(buy.sum() + sell.sum()), float(buy.sum() - sell.sum()), 0.0, 0.0]
        head = np.concatenate([buy, sell, scalars])
        if self.dense_w is not None:
            return np.concatenate([head, self.x0 + buy - sell])
        rows, cols, vals = self.aux
        aux = np.bincount(rows, weights=vals * head[cols], minlength=len(self.aux_offset)) + self.aux_offset
        return np.concatenate([head, aux])

    def objective_at_trades(self, buy: np.ndarray, sell: np.ndarray, cost: float) -> float:
        """The objective at given trades."""
        return self.objective(self.point(buy, sell, cost))


_serials = itertools.count()


@dataclass(frozen=True, eq=False)
class Ladder:
    """A tax form (``_model.TaxForm``) as each asset's segments: its lots in relief order, one after
    the other along its sell. Within one segment the asset's tax and gain are linear in its sell
    (the lot's slopes), so a QP built on one segment per asset has the blind problem's shape --
    two rows define ``T`` and ``G``, each asset's sell starts at its segment's lot -- instead of one
    variable per lot (431 assets x 10 lots: Clarabel took 42 ms a solve against 12, and OSQP's
    polish did not hold on the lots' linear program). :meth:`step` moves each asset to the segment
    its multipliers ask for; where none moves, the point is the optimum over every lot."""

    owner: np.ndarray  # (L,) each lot's asset, lots grouped by asset in relief order
    first: np.ndarray  # (n,) each asset's first lot in the form
    count: np.ndarray  # (n,) how many lots it has
    start: np.ndarray  # (L,) the sell (V_ref units) at which each lot begins
    end: np.ndarray
    tax_before: np.ndarray  # (L,) tax of the asset's lots before it
    gain_before: np.ndarray
    tax: np.ndarray  # (L,) slopes
    gain: np.ndarray
    serial: int = field(default_factory=lambda: next(_serials))
    """Which ladder this is (a request's own): its solves keep their own OSQP workspace, so a
    request's trades do not depend on what the process solved before (guarantee 6)."""
    settled: dict[str, np.ndarray] = field(default_factory=dict)
    """Where its last climb settled (``"segments"``): the next solve of the request starts there."""

    @classmethod
    def of(cls, form: TaxForm, n: int) -> Ladder:
        """The ladder of ``form`` (its lots grouped by asset, in relief order) for ``n`` assets."""
        count = np.bincount(form.owner, minlength=n)
        first = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        head = first[form.owner]  # each lot's asset's first lot

        def before(values: np.ndarray) -> np.ndarray:
            """The sum of ``values`` over the lots before each one, within its asset."""
            earlier = np.cumsum(values) - values
            return np.asarray(earlier - earlier[head])

        end = before(form.cap) + form.cap
        return cls(
            owner=form.owner,
            first=first,
            count=count,
            start=end - form.cap,
            end=end,
            tax_before=before(form.tax * form.cap),
            gain_before=before(form.gain * form.cap),
            tax=form.tax,
            gain=form.gain,
        )

    def lots(self, segments: np.ndarray) -> np.ndarray:
        """The form's lot index of each asset's segment (-1: the asset has no lots)."""
        return np.where(self.count > 0, self.first + np.minimum(segments, np.maximum(self.count - 1, 0)), -1)

    def rows(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
        """On ``segments``: each asset's sell bounds, its tax and gain slopes, and the constants of
        ``T = sum a_i sell_i + t0`` and ``G = sum b_i sell_i + g0``."""
        lot = self.lots(segments)
        has = lot >= 0
        pick = np.where(has, lot, 0)

        def at(values: np.ndarray) -> np.ndarray:
            return np.where(has, values[pick], 0.0) if len(values) else np.zeros(len(lot))

        low, high, a, b = at(self.start), at(self.end), at(self.tax), at(self.gain)
        t0 = float(np.sum(at(self.tax_before) - a * low))
        g0 = float(np.sum(at(self.gain_before) - b * low))
        return low, high, a, b, t0, g0

    def _per_asset(self, lots: np.ndarray) -> np.ndarray:
        """How many of each asset's lots ``lots`` (a mask over lots) marks."""
        return np.bincount(self.owner, weights=lots, minlength=len(self.count)).astype(np.int64)

    def containing(self, sell: np.ndarray) -> np.ndarray:
        """Each asset's segment that holds its ``sell`` (V_ref units; past its last lot: the last)."""
        past = self._per_asset(self.end < sell[self.owner] * (1 - 1e-9))
        return np.asarray(np.clip(past, 0, np.maximum(self.count - 1, 0)))

    def gains_start(self) -> np.ndarray:
        """Each asset's first lot (in relief order) whose sale costs tax: past its losses, which
        the ``"optimal"`` order puts first; the last when every lot saves tax."""
        within = np.arange(len(self.owner)) - self.first[self.owner]
        out = np.full(len(self.count), np.iinfo(np.int64).max)
        np.minimum.at(out, self.owner, np.where(self.tax >= 0, within, np.iinfo(np.int64).max))
        return np.asarray(np.minimum(out, np.maximum(self.count - 1, 0)))

    def reachable(self, segments: np.ndarray, sell_cap: np.ndarray) -> np.ndarray:
        """``segments`` with each asset whose segment starts above what it may sell (its side
        fixed, a restricted list) moved down to the last segment it can reach."""
        lot = self.lots(segments)
        limit = sell_cap * (1 + 1e-12) + 1e-15
        beyond = (lot >= 0) & (self.start[np.maximum(lot, 0)] > limit) if len(self.start) else lot >= 0
        last = np.maximum(self._per_asset(self.start <= limit[self.owner]) - 1, 0)
        return np.asarray(np.where(beyond, last, segments))

    def step(
        self,
        segments: np.ndarray,
        qp: NativeQP,
        z: np.ndarray,
        y: np.ndarray,
        tolerance: float,
        history: np.ndarray,
    ) -> np.ndarray:
        """The segments the solution ``z`` and its multipliers ``y`` (OSQP's convention) ask for.

        A segment bounds its asset's sell from below only (at the lot's start); above the lot's
        end the tax runs on at the lot's slope, below the true (convex) tax. An asset that sold past
        its lot's end, or is held at its lot's start while the previous lot's slope still leaves a
        gain from selling less, moves to the lot where a Newton step on its own curvature (the
        objective's diagonal) says its optimum is -- one lot at a time once it has turned back
        (``history``: +1 moved up, -1 down, 2 turned), so that it cannot cycle. Where none moves,
        every asset sells within its lot and no lot boundary holds one back: the point is optimal
        over every lot (the segments' problem is a relaxation that is exact there)."""
        n = len(segments)
        assert qp.tax_terms is not None
        price_t, price_g = qp.tax_terms.prices(y)  # per unit of T and of G
        lot = self.lots(segments)
        out = segments.copy()
        sell = z[n : 2 * n]
        bound = y[n : 2 * n]  # the sell columns' bound rows: < 0 held at the lower bound
        has = lot >= 0
        at = np.where(has, lot, 0)
        past = has & (sell > self.end[at] * (1 + 1e-9) + 1e-15) if len(self.end) else has
        held = has & (bound < -tolerance) & (lot > self.first)
        for i in np.flatnonzero(past | held):  # the others stay
            j, first, last = int(lot[i]), int(self.first[i]), int(self.first[i] + self.count[i] - 1)
            curve = float(qp.curvature[i])
            s = float(sell[i])

            def slope(k: int) -> float:
                return float(self.tax[k] * price_t + self.gain[k] * price_g)

            if s > self.end[j] * (1 + 1e-9) + 1e-15:  # past the lot: up, to where it would stop
                k = j + 1
                while history[i] != 2 and k < last and curve > 0:
                    if s - (slope(k) - slope(j)) / curve <= self.end[k]:
                        break
                    k += 1
                direction = 1
            elif bound[i] < -tolerance and j > first:  # held at the lot's start: down while it gains
                reduced = -float(bound[i])  # the objective's slope along sell_i, the bound aside
                k = j
                while k > first and reduced - (slope(j) - slope(k - 1)) > tolerance:
                    k -= 1
                    if history[i] == 2 or curve <= 0:
                        break
                    if self.start[j] - (reduced - (slope(j) - slope(k))) / curve >= self.start[k]:
                        break
                direction = -1
            else:
                continue
            if k != j:
                history[i] = direction if history[i] in (0, direction) else 2
                out[i] = k - first
        return out


@dataclass(frozen=True)
class _TaxTerms:
    """What ``T`` and ``G`` stood for in a QP that folded them into the sells: the objective's
    price of each (scaled) and the rows that held them (row, coefficient) -- their multipliers
    add to those prices."""

    price: np.ndarray  # (2,): the objective's coefficients of T and G
    rows: tuple[np.ndarray, np.ndarray]  # the rows that had T, and their coefficients
    gain_rows: tuple[np.ndarray, np.ndarray]

    def prices(self, y: np.ndarray) -> tuple[float, float]:
        """The price of a unit of ``T`` and of ``G`` at multipliers ``y`` (OSQP's convention)."""
        (t_rows, t_coef), (g_rows, g_coef) = self.rows, self.gain_rows
        return float(self.price[0] + t_coef @ y[t_rows]), float(self.price[1] + g_coef @ y[g_rows])


def _fold(
    lines: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float],
    q: np.ndarray,
    const: float,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, _TaxTerms]:
    """With ``lines`` (``Ladder.rows``: the segments' slopes and constants) ``T = a'sell + t0`` and
    ``G = b'sell + g0``: put them into the objective (``q``, in place, and the constant) and into
    every row that has them (``lower``/``upper`` in place), so that the QP has no free T and G
    columns (Clarabel stopped "almost solved" on them when nothing priced T). Returns the new
    triplets, the constant and what was folded."""
    _, _, slope_t, slope_g, t0, g0 = lines
    n = len(slope_t)
    price = q[2 * n + 3 : 2 * n + 5].copy()
    q[n : 2 * n] += price[0] * slope_t + price[1] * slope_g
    const += float(price[0] * t0 + price[1] * g0)
    q[2 * n + 3 : 2 * n + 5] = 0.0
    held: list[tuple[np.ndarray, np.ndarray]] = []
    new_rows, new_cols, new_vals = [rows], [cols], [vals]
    for col, slope, shift in ((2 * n + 3, slope_t, t0), (2 * n + 4, slope_g, g0)):
        on = (cols == col) & (rows >= 2 * n + SCALARS)  # not the column's own bound row (it stays at 0)
        at = np.flatnonzero(on)
        held.append((rows[at], vals[at]))
        for r, v in zip(rows[at], vals[at], strict=True):
            new_rows.append(np.full(n, r))
            new_cols.append(n + np.arange(n))
            new_vals.append(v * slope)
            lower[r] -= v * shift
            upper[r] -= v * shift
        vals = np.where(on, 0.0, vals)
        new_vals[0] = vals
    return (
        np.concatenate(new_rows),
        np.concatenate(new_cols),
        np.concatenate(new_vals),
        const,
        _TaxTerms(price, held[0], held[1]),
    )


def _triplets(affines: Sequence[Affine], first_row: int, n: int) -> tuple[np.ndarray, ...]:
    """Rows (from ``first_row``), columns (scalar codes placed after buy and sell) and values of
    ``affines`` stacked, and their offsets."""
    stacked = Affine.stack(affines)
    return stacked.rows + first_row, column(stacked.cols, n), stacked.vals, stacked.offset


def trade_bounds(groups: Sequence[LimitGroup], n: int) -> tuple[np.ndarray, np.ndarray, list[LimitGroup]]:
    """Upper bounds on buy and sell from the separable groups whose rows are one variable each
    (``v_i <= u``), and the groups left to be rows."""
    bound = np.full(2 * n, np.inf)
    rest: list[LimitGroup] = []
    for g in groups:
        r = g.rows
        simple = (
            g.separable
            and len(r.vals) == r.m
            and bool((r.vals > 0).all())
            and not np.any(r.offset)
            and not np.isfinite(g.lower).any()
        )
        if not simple:
            rest.append(g)
            continue
        np.minimum.at(bound, r.cols, g.upper[r.rows] / r.vals)
    return bound[:n], bound[n:], rest


@dataclass(frozen=True, eq=False)
class _Pattern:
    """Where each triplet lands in CSC storage, for one sparsity pattern."""

    rows: np.ndarray
    cols: np.ndarray
    order: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


_patterns: dict[tuple[int, int, int], _Pattern] = {}


def _csc(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sparse.csc_matrix:
    """``csc_matrix((vals, (rows, cols)))`` for triplets without duplicates; the conversion order is
    kept per pattern, so a request of a known structure only permutes its values (scipy's COO
    conversion and checks cost more than the rest of the build at 100 assets)."""
    key = (shape[0], shape[1], len(rows))
    pattern = _patterns.get(key)
    if pattern is None or not (np.array_equal(pattern.rows, rows) and np.array_equal(pattern.cols, cols)):
        order = np.lexsort((rows, cols))
        sorted_cols, sorted_rows = cols[order], rows[order]
        same = (np.diff(sorted_cols) == 0) & (np.diff(sorted_rows) == 0)
        if same.any():  # duplicates are summed by scipy; never produced by the built-in terms
            return sparse.csc_matrix((vals, (rows, cols)), shape=shape)
        indptr = np.searchsorted(sorted_cols, np.arange(shape[1] + 1)).astype(np.int32)
        pattern = _Pattern(rows.copy(), cols.copy(), order, sorted_rows.astype(np.int32), indptr)
        _patterns[key] = pattern
    return sparse.csc_matrix((vals[pattern.order], pattern.indices, pattern.indptr), shape=shape, copy=False)


_DENSE_FACTORS = 64


def _weight_rows(rows_of: Sequence[Affine], x0: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(F, f)`` with the rows equal to ``F w + f``, if they touch buy and sell only as weights
    (``+v`` on buy, ``-v`` on sell); None otherwise."""
    n = len(x0)
    rows, cols, vals, offset = _triplets(rows_of, 0, n)
    if (cols >= 2 * n).any():
        return None
    on_buy = cols < n
    buy = np.zeros((len(offset), n))
    sell = np.zeros((len(offset), n))
    buy[rows[on_buy], cols[on_buy]] = vals[on_buy]
    sell[rows[~on_buy], cols[~on_buy] - n] = vals[~on_buy]
    if not np.array_equal(sell, -buy):
        return None
    return buy, offset - buy @ x0


@dataclass(frozen=True)
class _Layout:
    """Where each variable sits: ``z = [buy, sell, c, tau, nu, T, G, (w if on_weights), aux]``."""

    n: int
    low_rank: list[Affine]  # squared rows that get one auxiliary variable each
    on_weights: tuple[np.ndarray, np.ndarray] | None  # (F, f): squared rows F w + f as a dense block
    ladder: Ladder | None = None  # a taxable account's lots (no variables: one segment per asset)

    @property
    def nt(self) -> int:
        return 2 * self.n + SCALARS

    @property
    def nw(self) -> int:
        return 0 if self.on_weights is None else self.n

    @property
    def k(self) -> int:
        return sum(a.m for a in self.low_rank)

    @property
    def nz(self) -> int:
        return self.nt + self.nw + self.k


def ladder_of(form: TaxForm, n: int) -> Ladder:
    """The ladder of ``form``, kept with the form (the solves of one rebalance share it)."""
    ladder = form.views.get("ladder")
    if ladder is None:
        ladder = form.views.setdefault("ladder", Ladder.of(form, n))
    assert isinstance(ladder, Ladder)
    return ladder


def _layout(parts: Sequence[Description], x0: np.ndarray) -> _Layout:
    n = len(x0)
    low_rank = [a for p in parts for a in p.low_rank]
    k = sum(a.m for a in low_rank)
    # Many factor rows (a dense covariance has as many as assets): square them into a dense block
    # of P on explicit weights w = x0 + buy - sell (n definition rows) instead of auxiliary rows
    # over buy and sell, whose fill in OSQP's factorization is ~(3n)^2 instead of n^2.
    on_weights = _weight_rows(low_rank, x0) if k >= max(_DENSE_FACTORS, n // 4) else None
    form = next((p.tax for p in parts if p.tax is not None), None)
    ladder = None if form is None else ladder_of(form, n)
    return _Layout(n, [] if on_weights is not None else low_rank, on_weights, ladder)


@dataclass(frozen=True, eq=False)
class QPBase:
    """What a QP's build does not owe to a taxable account's segments (see :func:`build_qp`): the
    climb over lots rebuilds only the sells' bounds, slopes and the rows that hold ``G``."""

    layout: _Layout
    p_matrix: sparse.csc_matrix
    q: np.ndarray
    const: float
    curvature: np.ndarray
    diagonal: np.ndarray
    dense_w: np.ndarray | None
    rate: np.ndarray
    triplets: tuple[np.ndarray, np.ndarray, np.ndarray]
    lower: np.ndarray
    upper: np.ndarray
    groups: list[tuple[str, int, int]]
    m: int
    sell_cap: np.ndarray
    scale: float
    x0: np.ndarray


def qp_base(parts: Sequence[Description], x0: np.ndarray, scale: float, backoff: float = 0.0) -> QPBase:
    """The segment-free part of :func:`build_qp` (kept by the caller across a climb over lots)."""
    layout = _layout(parts, x0)
    n = layout.n
    p_matrix, q, const, curvature, diagonal, dense_w = _objective(parts, x0, layout, scale)
    rate = np.zeros(n)
    for p in parts:
        if p.cost is not None:
            rate = rate + p.cost
    rows, cols, vals, lower, upper, groups, m, sell_cap = _rows(parts, x0, layout, rate, backoff)
    return QPBase(
        layout,
        p_matrix,
        q,
        const,
        curvature,
        diagonal,
        dense_w,
        rate,
        (rows, cols, vals),
        lower,
        upper,
        groups,
        m,
        sell_cap,
        scale,
        x0,
    )


def build_qp(
    parts: Sequence[Description],
    x0: np.ndarray,
    scale: float,
    backoff: float = 0.0,
    segments: np.ndarray | None = None,
    base: QPBase | None = None,
) -> NativeQP:
    """Stack the terms' descriptions into one QP (objective multiplied by ``scale``; coupled limits
    backed off by ``backoff``; a taxable account on ``segments``, default its first lots; ``base``
    from :func:`qp_base` when the caller kept it). None of them may carry a market-impact cone.

    Built from triplets in one conversion per matrix (scipy's block constructors cost ~3 ms at
    100 assets), and every position is stored even when its value is 0, so the sparsity pattern
    depends on the structure only and a kept OSQP workspace takes the new values.
    """
    base = qp_base(parts, x0, scale, backoff) if base is None else base
    layout = base.layout
    n, nz, cost_col = layout.n, layout.nz, 2 * layout.n
    q, const, lower, upper = base.q.copy(), base.const, base.lower.copy(), base.upper.copy()
    rows, cols, vals = base.triplets
    tax_terms = None
    if layout.ladder is not None:  # each asset's sell from its segment's start (one it can reach)
        segments = layout.ladder.reachable(np.zeros(n, dtype=np.int64) if segments is None else segments, base.sell_cap)
        lines = layout.ladder.rows(segments)
        lower[n : 2 * n] = lines[0]
        rows, cols, vals, const, tax_terms = _fold(lines, q, const, rows, cols, vals, lower, upper)
    aux_rows, aux_cols, aux_vals, aux_offset = _triplets(layout.low_rank, 0, n)
    # The cost is ~1e-4 of value where weights are ~1e-2: measured in units of the mean cost rate
    # (c / rate is a turnover), ADMM took 225 iterations cold at 500 assets instead of ~1000.
    positive = base.rate[base.rate > 0]
    cost_unit = float(positive.mean()) if positive.size else 1.0
    vals = np.where(cols == cost_col, vals * cost_unit, vals)
    q[cost_col] *= cost_unit
    scale = base.scale
    return NativeQP(
        n=n,
        P=base.p_matrix,
        q=q * scale,
        const=const * scale,
        A=_csc(rows, cols, vals, (base.m, nz)),
        lower=lower,
        upper=upper,
        groups=base.groups,
        curvature=base.curvature * scale,
        diagonal=base.diagonal * scale,
        dense_w=None if base.dense_w is None else base.dense_w * scale,
        x0=base.x0,
        aux=(aux_rows, aux_cols, aux_vals),
        aux_offset=aux_offset,
        scale=scale,
        cost_unit=cost_unit,
        ladder=layout.ladder,
        segments=segments if layout.ladder is not None else None,
        tax_terms=None if tax_terms is None else dataclasses.replace(tax_terms, price=tax_terms.price * scale),
    )


def _objective(
    parts: Sequence[Description], x0: np.ndarray, layout: _Layout, scale: float
) -> tuple[sparse.csc_matrix, np.ndarray, float, np.ndarray, np.ndarray, np.ndarray | None]:
    """``P`` (upper triangle, scaled), ``q`` and the constant (unscaled), and P's blocks: the
    per-asset curvature, the diagonal of the scalar and aux columns, the dense block on ``w``.

    Diagonal squares ``sum_i s_i^2 (w_i - b_i)^2`` with ``w = x0 + buy - sell``, squares of scalar
    columns, and one auxiliary variable (diagonal 2) per low-rank row."""
    n, nz, nw = layout.n, layout.nz, layout.nw
    curvature = np.zeros(n)
    slope = np.zeros(n)
    diagonal = np.zeros(nz - 2 * n)
    diagonal[SCALARS + nw : SCALARS + nw + layout.k] = 2.0  # the aux variables (not the lots)
    const = 0.0
    q = np.zeros(nz)
    for p in parts:
        for root, base in p.weight_squares:
            s2 = root * root
            shift = x0 if base is None else x0 - base
            curvature += s2
            slope += 2.0 * s2 * shift
            const += float(s2 @ (shift * shift))
        for code, root_s, offset_s in p.scalar_squares:
            place = 2 * n - 1 - code
            diagonal[place - 2 * n] += 2.0 * root_s * root_s
            q[place] += 2.0 * root_s * root_s * offset_s
            const += (root_s * offset_s) ** 2
        for line in (p.linear, p.surrogate):
            if line is not None:
                np.add.at(q, column(line.cols, n), line.vals)
        q[2 * n] += p.cost_weight
    q[:n] += slope
    q[n : 2 * n] -= slope
    curvature *= 2.0
    dense_w = None
    if layout.on_weights is not None:
        factor, shift = layout.on_weights  # rows factor @ w + shift
        dense_w = 2.0 * (factor.T @ factor)
        q[layout.nt : layout.nt + n] += 2.0 * (factor.T @ shift)
        const += float(shift @ shift)
    # Upper triangle, column by column: buy_i (i,i); sell_i (i, n+i) and (n+i, n+i); then the
    # diagonal of every scalar and aux column.
    idx = np.arange(n)
    rest = np.arange(2 * n, nz)
    p_indptr = np.concatenate([np.arange(n + 1), n + 2 * np.arange(1, n + 1), 3 * n + np.arange(1, nz - 2 * n + 1)])
    p_indices = np.concatenate([idx, np.column_stack([idx, idx + n]).ravel(), rest])
    p_data = np.concatenate([curvature, np.column_stack([-curvature, curvature]).ravel(), diagonal])
    p_matrix = sparse.csc_matrix((p_data * scale, p_indices, p_indptr.astype(np.int64)), shape=(nz, nz))
    if dense_w is not None:
        upper_rows, upper_cols = np.triu_indices(n)
        w = layout.nt
        block = sparse.csc_matrix(
            (dense_w[upper_rows, upper_cols] * scale, (w + upper_rows, w + upper_cols)), shape=(nz, nz)
        )
        p_matrix = (p_matrix + block).tocsc()
    return p_matrix, q, const, curvature, diagonal, dense_w


def _definition_rows(
    n: int,
    buy_cap: np.ndarray,
    sell_cap: np.ndarray,
    rate: np.ndarray,
    has_cost: bool,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Bounds on every trade column, the definitions of turnover and net purchase, and the cost
    row ``c >= rate'(buy + sell)``, as lists of triplets and bounds."""
    nt = 2 * n + SCALARS
    cost_col, turnover_col, net_col = 2 * n, 2 * n + 1, 2 * n + 2
    every = np.arange(nt)
    both = np.arange(2 * n)
    ones, signs = np.ones(2 * n), np.concatenate([np.ones(n), -np.ones(n)])
    first = nt
    rows = [every, np.full(2 * n + 1, first), np.full(2 * n + 1, first + 1)]
    cols = [every, np.append(both, turnover_col), np.append(both, net_col)]
    vals = [np.ones(nt), np.append(-ones, 1.0), np.append(-signs, 1.0)]
    uniform = bool(np.all(rate == rate[0])) if n else True
    if uniform:  # c >= r tau: two entries, not a third dense row over the assets
        rows.append(np.full(2, first + 2))
        cols.append(np.array([cost_col, turnover_col]))
        vals.append(np.array([1.0, -float(rate[0]) if n else 0.0]))
    else:
        rows.append(np.full(2 * n + 1, first + 2))
        cols.append(np.append(both, cost_col))
        vals.append(np.append(-np.concatenate([rate, rate]), 1.0))
    # T and G are 0: in a taxable account they are folded into the sells (see _fold).
    lower = [
        np.concatenate([np.zeros(2 * n + 2), [-np.inf], np.zeros(SCALARS - 3)]),
        np.zeros(2),
        np.zeros(1),
    ]
    upper = [
        np.concatenate([buy_cap, sell_cap, [np.inf if has_cost else 0.0, np.inf, np.inf], np.zeros(SCALARS - 3)]),
        np.zeros(2),
        np.full(1, np.inf),
    ]
    return rows, cols, vals, lower, upper


def _rows(
    parts: Sequence[Description], x0: np.ndarray, layout: _Layout, rate: np.ndarray, backoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, int, int]], int, np.ndarray]:
    """The constraint rows as triplets with their bounds, the checked row groups and the row count:
    variable bounds; the definitions of turnover and net purchase; the cost; the limits (all
    checked); then the definition rows of ``w`` or of the aux variables."""
    n, nt = layout.n, layout.nt
    buy_cap, sell_cap, coupled = trade_bounds([g for p in parts for g in p.limits], n)
    has_cost = any(p.cost is not None for p in parts)
    rows, cols, vals, lower, upper = _definition_rows(n, buy_cap, sell_cap, rate, has_cost)
    first = nt
    groups = [("trade_bounds", 0, nt), ("definitions", first, first + 2), ("cost", first + 2, first + 3)]
    row = first + 3
    limits = [(g.name, *g.linear(backoff)) for g in coupled]
    r, c, v, offset = _triplets([lim[1] for lim in limits], row, n)
    rows.append(r)
    cols.append(c)
    vals.append(v)
    if limits:
        lower.append(np.concatenate([lim[2] for lim in limits]) - offset)
        upper.append(np.concatenate([lim[3] for lim in limits]) - offset)
    for name, rows_of, _, _ in limits:
        groups.append((name, row, row + rows_of.m))
        row += rows_of.m
    if layout.on_weights is not None:  # w - buy + sell = x0
        idx = np.arange(n)
        rows += [np.tile(row + idx, 3)]
        cols += [np.concatenate([nt + idx, idx, idx + n])]
        vals += [np.concatenate([np.ones(n), -np.ones(n), np.ones(n)])]
        lower.append(x0.copy())
        upper.append(x0.copy())
        groups.append(("definitions", row, row + n))
        row += n
    aux_rows, aux_cols, aux_vals, aux_offset = _triplets(layout.low_rank, 0, n)
    k = layout.k
    if k:
        rows += [aux_rows + row, row + np.arange(k)]
        cols += [aux_cols, nt + np.arange(k)]
        vals += [aux_vals, -np.ones(k)]
        lower.append(-aux_offset)
        upper.append(-aux_offset)
        row += k
    return (
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(vals),
        np.concatenate(lower),
        np.concatenate(upper),
        groups,
        row,
        sell_cap,
    )


# --------------------------------------------------------------------------- solvers


@dataclass(frozen=True)
class NativeSolution:
    """What a native solve returns (``status``: optimal, infeasible, inaccurate, ...) and its duals
    in OSQP's sign convention (``Pz + q + A'y = 0``; ``y_i > 0`` pushes on the upper bound)."""

    status: str
    z: np.ndarray | None
    y: np.ndarray | None
    iterations: int
    seconds: float = 0.0
    residuals: dict[str, float] = field(default_factory=dict)  # of z, by row group


OSQP_SETTINGS: dict[str, Any] = {
    # Loose ADMM tolerances on purpose: polishing then solves the KKT system of the active set
    # exactly, and :func:`kkt_certified` checks the result (a wrong active set fails the check,
    # and ADMM goes on at tighter tolerances). With the cost in rate units (``build_qp``) OSQP's
    # own scaling and step size do best: at 500 assets 225 iterations cold, 25-50 warm.
    "eps_abs": 1e-3,
    "eps_rel": 1e-3,
    "eps_prim_inf": 1e-9,
    "eps_dual_inf": 1e-9,
    "max_iter": 4_000,  # a warm solve's cap (a cold one stops at COLD_ITERATIONS); beyond, Clarabel answers
    "polishing": True,
    "polish_refine_iter": 10,
    "adaptive_rho": True,
    "warm_starting": True,
    "verbose": False,
}
CLARABEL_SETTINGS: dict[str, Any] = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "max_iter": 200,
    "verbose": False,
}
_OSQP_EPS = (1e-3, 1e-5, 1e-7)
COLD_ITERATIONS = 600
"""ADMM iterations a cold solve may take before Clarabel answers (and OSQP polishes its point).
Measured cold: 175-525 iterations on slack limits at 100-2000 assets, where OSQP is the faster
(1.8 vs 3.8 ms at 100, 8.8 vs 14.8 at 500, 62 vs 70 at 2000); 575-1975 where caps, sectors,
turnover and a deposit bind, where Clarabel and the polish are (8.8 vs 27 ms at 431, 10.5 vs 35 at
500)."""
POLISHED_RESIDUAL = 1e-11
"""Largest row residual accepted from a polished OSQP point. A polished point sits exactly on its
active bounds (residuals ~1e-20 when the active set is right), and the whole-share rounding needs
it inside them: a 1e-9 excess on a turnover cap, summed from 76 bounds each 1e-10 short, left the
rounding no lot-multiple neighbour and cost a whole trade. Otherwise Clarabel's answer is used."""
KKT_TOLERANCE = 1e-7
"""Stationarity and complementarity accepted from a polished OSQP point, relative to the size of
the (scaled) problem's linear part and objective."""


def kkt_certified(qp: NativeQP, z: np.ndarray, y: np.ndarray, az: np.ndarray | None = None) -> bool:
    """True when ``(z, y)`` satisfies the optimality conditions of ``qp`` (feasibility is checked
    separately): ``Pz + q + A'y ~ 0``, and each dual pushes only on a bound its row touches.
    ``az`` is ``A z`` if the caller has it already."""
    pz = qp.hess(z)
    stationarity = float(np.max(np.abs(pz + qp.q + qp.A.T @ y), initial=0.0))
    size = max(1.0, float(np.max(np.abs(qp.q), initial=0.0)))
    if stationarity > KKT_TOLERANCE * size:
        return False
    az = qp.A @ z if az is None else az
    push_up = np.maximum(y, 0.0)
    push_down = np.maximum(-y, 0.0)
    with np.errstate(invalid="ignore"):
        up = np.where(push_up > 0, push_up * (qp.upper - az), 0.0)
        down = np.where(push_down > 0, push_down * (az - qp.lower), 0.0)
    gap = float(np.sum(np.abs(up)) + np.sum(np.abs(down)))
    objective = abs(qp.objective(z, pz)) * qp.scale
    return bool(np.isfinite(gap) and gap <= KKT_TOLERANCE * max(1.0, objective))


def refine_on_active_set(qp: NativeQP, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact solution of ``qp``'s KKT system on the active set the multipliers ``y`` name (rows
    with a multiplier above noise held at the bound it pushes on, equality rows always), or None
    when that system is singular or its solution is not a certified optimum within the rows.

    A deterministic function of the problem and its active set: whichever solver, warm start or
    workspace found ``(z, y)``, the same request gets the same bits. ADMM and interior-point
    answers differ by ~1e-9 of value, more than a fractional lot (1e-6 share), so without this a
    fractional request's trades changed with what the process had solved before."""
    from scipy.sparse.linalg import splu

    size = max(1.0, float(np.max(np.abs(y), initial=0.0)))
    equal = qp.lower == qp.upper
    up = (y > 1e-9 * size) & np.isfinite(qp.upper) | equal
    down = (y < -1e-9 * size) & np.isfinite(qp.lower) & ~up
    active = np.flatnonzero(up | down)
    bound = np.where(up, qp.upper, qp.lower)[active]
    full = (qp.P + qp.P.T - sparse.diags(qp.P.diagonal())).tocsc()
    rows = qp.A[active, :]
    kkt = sparse.bmat([[full, rows.T], [rows, None]], format="csc")
    # Quasi-definite regularisation, so that a free buy/sell split (zero costs) or dependent
    # active rows still factor; two refinement steps against the exact system remove its bias.
    nz, k = len(z), len(active)
    delta = 1e-10 * max(1.0, float(np.max(np.abs(full.diagonal()), initial=0.0)))
    shift = sparse.diags(np.concatenate([np.full(nz, delta), np.full(k, -1e-12 * delta)]), format="csc")
    rhs = np.concatenate([-qp.q, bound])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            factor = splu((kkt + shift).tocsc())
            solution = factor.solve(rhs)
            for _ in range(2):
                solution = solution + factor.solve(rhs - kkt @ solution)
    except (RuntimeError, ValueError):
        return None
    refined, multipliers = solution[:nz], np.zeros(len(y))
    multipliers[active] = solution[nz:]
    if not np.all(np.isfinite(solution)):
        return None
    az = qp.A @ refined
    if max(qp.residuals(refined, az).values(), default=0.0) > POLISHED_RESIDUAL:
        return None
    if np.any(multipliers[up & ~equal] < -1e-9 * size) or np.any(multipliers[down] > 1e-9 * size):
        return None
    return (refined, multipliers) if kkt_certified(qp, refined, multipliers, az) else None


@dataclass(eq=False)
class _Workspace:
    solver: Any
    p_pattern: tuple[np.ndarray, np.ndarray]
    a_pattern: tuple[np.ndarray, np.ndarray]
    p_values: np.ndarray
    a_values: np.ndarray
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Whether polishing holds for this structure: at 2000 assets it leaves bounds ~1e-10 short
    # (and on zero-cost problems 1e-9), and then every request goes to Clarabel directly.
    trusted: bool = True
    # What the interior-point solve of this structure took: a warm ADMM solve that takes longer
    # is stopped and Clarabel answers instead, so the warm path never costs much more than cold.
    interior_seconds: float | None = None
    solved: bool = False  # whether ADMM has run on it (a new workspace starts cold)

    def matches(self, qp: NativeQP) -> bool:
        return _same_pattern(qp.P, self.p_pattern) and _same_pattern(qp.A, self.a_pattern)

    def load(self, qp: NativeQP, time_limit: float) -> None:
        """Give the workspace ``qp``'s vectors (and matrix values, when they changed)."""
        update: dict[str, Any] = {"q": qp.q, "l": qp.lower, "u": qp.upper}
        if not np.array_equal(qp.P.data, self.p_values):
            update["Px"] = qp.P.data
            self.p_values = qp.P.data.copy()
        if not np.array_equal(qp.A.data, self.a_values):
            update["Ax"] = qp.A.data
            self.a_values = qp.A.data.copy()
        self.solver.update(**update)
        self.solver.update_settings(time_limit=time_limit)


_cache: OrderedDict[Hashable, _Workspace] = OrderedDict()
_cache_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}


def _same_pattern(matrix: sparse.csc_matrix, pattern: tuple[np.ndarray, np.ndarray]) -> bool:
    return np.array_equal(matrix.indptr, pattern[0]) and np.array_equal(matrix.indices, pattern[1])


def plan(qp: NativeQP, key: Hashable) -> str:
    """How to solve ``qp`` under the automatic policy: ``"warm"`` (a trusted OSQP workspace of its
    pattern is kept), ``"interior"`` (one is kept but polishing does not hold for this structure)
    or ``"cold"`` (none yet)."""
    with _cache_lock:
        workspace = _cache.get(key)
    if workspace is None or not workspace.matches(qp):
        return "cold"
    return "warm" if workspace.trusted else "interior"


def _workspace(qp: NativeQP, key: Hashable, time_limit: float) -> _Workspace:
    """The kept workspace for ``key`` (counted as a hit) or a new one set up for ``qp``. Callers
    load ``qp`` into it under its lock even when it is new: another thread may have found it in
    the cache and loaded its own request in between."""
    import osqp

    with _cache_lock:
        workspace = _cache.get(key)
        if workspace is not None and workspace.matches(qp):
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return workspace
    solver = osqp.OSQP()
    solver.setup(qp.P, qp.q, qp.A, qp.lower, qp.upper, **OSQP_SETTINGS, time_limit=time_limit)
    workspace = _Workspace(
        solver,
        (qp.P.indptr.copy(), qp.P.indices.copy()),
        (qp.A.indptr.copy(), qp.A.indices.copy()),
        qp.P.data.copy(),
        qp.A.data.copy(),
    )
    with _cache_lock:
        _stats["misses"] += 1
        _cache[key] = workspace
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return workspace


def solve_osqp(
    qp: NativeQP, key: Hashable, time_limit: float, start: tuple[np.ndarray, np.ndarray] | None = None
) -> NativeSolution:
    """Solve with OSQP, reusing (and warm-starting from) the workspace kept for ``key``, or from
    ``start`` (primal, dual) when given.

    ADMM runs at loose tolerances and polishing does the rest; when the polished point fails the
    KKT check (ADMM had not yet found the active set), ADMM goes on from where it stopped at
    tighter tolerances before the caller falls back to Clarabel.
    """
    workspace = _workspace(qp, key, time_limit)
    if workspace.interior_seconds is not None:
        time_limit = min(time_limit, max(workspace.interior_seconds, 1e-3))
    iterations = 0
    with workspace.lock:
        workspace.load(qp, time_limit)
        if start is not None:
            workspace.solver.warm_start(x=start[0], y=start[1])
        budget = OSQP_SETTINGS["max_iter"] if workspace.solved or start is not None else COLD_ITERATIONS
        workspace.solved = True
        try:
            for eps in _OSQP_EPS:
                if iterations >= budget:
                    break
                workspace.solver.update_settings(eps_abs=eps, eps_rel=eps, max_iter=budget - iterations)
                result = workspace.solver.solve(raise_error=False)
                raw = str(result.info.status)
                iterations += int(result.info.iter)
                if "primal infeasible" in raw:
                    return NativeSolution("infeasible", None, None, iterations)
                if raw != "solved":
                    return NativeSolution(raw.replace(" ", "_"), None, None, iterations)
                if result.info.status_polish != 1:
                    continue  # ADMM has not found the active set yet: go on, tighter
                z, y = np.array(result.x, dtype=float), np.array(result.y, dtype=float)
                az = qp.A @ z
                residuals = qp.residuals(z, az)
                if max(residuals.values()) > POLISHED_RESIDUAL:
                    # Polishing a degenerate problem (zero costs leave buy/sell splits free)
                    # lands ~1e-9 outside its bounds; more ADMM does not change that.
                    break
                if kkt_certified(qp, z, y, az):
                    return NativeSolution("optimal", z, y, iterations, residuals=residuals)
        finally:
            workspace.solver.update_settings(
                eps_abs=_OSQP_EPS[0], eps_rel=_OSQP_EPS[0], max_iter=OSQP_SETTINGS["max_iter"]
            )
    return NativeSolution("inaccurate", None, None, iterations)


def polish_osqp(qp: NativeQP, key: Hashable, start: NativeSolution, time_limit: float) -> NativeSolution:
    """OSQP warm-started at ``start`` (another solver's answer): it stops at once and polishes, so
    the answer is the exact solution of the active set's KKT system, whichever solver and warm
    start got there. That keeps a repeated request bit-for-bit the same (an interior point stops
    ~1e-9 inside its bounds), and leaves a warm workspace for the next request of this structure.
    """
    if start.z is None or start.y is None:
        return start
    polished = solve_osqp(qp, key, time_limit, (start.z, start.y))
    with _cache_lock:
        workspace = _cache.get(key)
    if workspace is not None:
        workspace.trusted = polished.z is not None
        workspace.interior_seconds = start.seconds
    return polished


def solve_clarabel(qp: NativeQP, time_limit: float) -> NativeSolution:
    """Solve with Clarabel (interior point), built fresh: ranges split into two one-sided rows."""
    import clarabel

    lower, upper = qp.lower, qp.upper
    equal = np.isfinite(lower) & (lower == upper)
    has_upper = np.isfinite(upper) & ~equal
    has_lower = np.isfinite(lower) & ~equal
    a = qp.A.tocsr()
    blocks = [a[equal], a[has_upper], -a[has_lower]]
    rhs = np.concatenate([upper[equal], upper[has_upper], -lower[has_lower]])
    cones = [clarabel.ZeroConeT(int(equal.sum())), clarabel.NonnegativeConeT(int(has_upper.sum() + has_lower.sum()))]
    settings = clarabel.DefaultSettings()
    for name, value in CLARABEL_SETTINGS.items():
        setattr(settings, name, value)
    settings.time_limit = time_limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = clarabel.DefaultSolver(qp.P, qp.q, sparse.vstack(blocks, format="csc"), rhs, cones, settings)
        result = solver.solve()
    raw = str(result.status)
    iterations = int(result.iterations)
    if "PrimalInfeasible" in raw:
        return NativeSolution("infeasible", None, None, iterations)
    if raw != "Solved":
        return NativeSolution(raw.lower(), None, None, iterations)
    # Back to one dual per row, OSQP's convention: y = dual(upper side) - dual(lower side).
    duals = np.asarray(result.z, dtype=float)
    y = np.zeros(len(lower))
    n_eq, n_up = int(equal.sum()), int(has_upper.sum())
    y[equal] = duals[:n_eq]
    y[has_upper] += duals[n_eq : n_eq + n_up]
    y[has_lower] -= duals[n_eq + n_up :]
    z = np.array(result.x, dtype=float)
    return NativeSolution("optimal", z, y, iterations, float(result.solve_time), qp.residuals(z))


def native_cache_info() -> dict[str, int]:
    """Hits, misses and size of the OSQP workspace cache of this process."""
    with _cache_lock:
        return {**_stats, "size": len(_cache)}


def clear_native_cache() -> None:
    """Drop every kept OSQP workspace."""
    with _cache_lock:
        _cache.clear()
        _stats["hits"] = _stats["misses"] = 0
