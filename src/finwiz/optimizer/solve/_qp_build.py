"""The native QP's assembly: the terms' descriptions (``_model``) stacked into the sparse
matrices of a :class:`~finwiz.optimizer.solve._qp.NativeQP` (see ``_qp`` for its variables and
form), a taxable account's tax and gain folded into the sells of its segments (``_qp_segments``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS, Affine, Description, LimitGroup, column
from finwiz.optimizer.solve._csc import csc
from finwiz.optimizer.solve._qp import Ladder, NativeQP, Spans, _TaxTerms, ladder_of, row_spans
from finwiz.optimizer.solve._qp_hessian import _p_matrix, _upper_block
from finwiz.optimizer.solve._qp_rows import _DENSE_FACTORS, _triplets, _weight_rows, in_cost_unit, trade_bounds
from finwiz.optimizer.solve._qp_segments import on_segments

__all__ = ["QPBase", "build_qp", "qp_base", "trade_bounds"]


@dataclass(frozen=True)
class _Layout:
    """Where each variable sits: ``z = [buy, sell, c, tau, nu, T, G, (w if on_weights), aux]``."""

    n: int
    low_rank: list[Affine]  # squared rows that get one auxiliary variable each
    on_weights: tuple[np.ndarray, np.ndarray] | None  # (F, f): squared rows F w + f as a dense block
    ladder: Ladder | None = None  # a taxable account's lots (no variables: one segment per asset)
    eigen: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (values, vectors, F'F) when kept (solve/_dense.py)

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


def _layout(parts: Sequence[Description], x0: np.ndarray) -> _Layout:
    n = len(x0)
    low_rank = [a for p in parts for a in p.low_rank]
    k = sum(a.m for a in low_rank)
    # Many factor rows (a dense covariance has as many as assets): square them into a dense block
    # of P on explicit weights w = x0 + buy - sell (n definition rows) instead of auxiliary rows
    # over buy and sell, whose fill in OSQP's factorization is ~(3n)^2 instead of n^2.
    # Sparse rows stay auxiliary rows: a household's tracking rows touch each asset's few pairs.
    dense = sum(a.nnz for a in low_rank) >= k * n
    on_weights = _weight_rows(low_rank, x0) if dense and k >= max(_DENSE_FACTORS, n // 4) else None
    form = next((p.tax for p in parts if p.tax is not None), None)
    ladder = None if form is None else ladder_of(form, n)
    eigen = low_rank[0].gram_eigen if on_weights is not None and len(low_rank) == 1 else None
    return _Layout(n, [] if on_weights is not None else low_rank, on_weights, ladder, eigen)


@dataclass(frozen=True, eq=False)
class QPBase:
    """What a QP's build does not owe to a taxable account's segments (see :func:`build_qp`): the
    climb over lots rebuilds only the sells' bounds, slopes and the rows that hold ``G``."""

    layout: _Layout
    p_matrix: sparse.csc_matrix
    q: np.ndarray
    const: float
    squares: _Squares  # P's per-asset curvature and scalar/aux diagonal, q's weights' slope (unscaled)
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
    aux: tuple[np.ndarray, ...]  # the low-rank rows' triplets and offsets (see _triplets)
    parts: tuple[Description, ...] = ()
    backoff: float = 0.0
    coupled: tuple[LimitGroup, ...] = ()  # the limit groups that are rows (not trade bounds)
    a_matrix: dict[float, tuple[sparse.csc_matrix, sparse.csr_matrix]] = field(
        default_factory=dict
    )  # (A, A') by cost unit (no lots)
    limit_groups: tuple[LimitGroup, ...] = ()  # every group, bounds included (same objects: same bounds)
    spans: Spans | None = None  # row_spans(groups, m)
    cost_unit: float = 1.0  # _cost_unit(rate)


def _same(a: Sequence[object], b: Sequence[object]) -> bool:
    return a is b or (not a and not b)


def _reusable(
    last: QPBase | None, parts: tuple[Description, ...], x0: np.ndarray, scale: float, backoff: float
) -> QPBase | None:
    """``last`` if its squared rows (and so ``P`` and the layout) are those of ``parts``."""
    if last is None or last.x0 is not x0 or (last.scale, last.backoff) != (scale, backoff):
        return None
    if len(last.parts) != len(parts):
        return None
    for a, b in zip(last.parts, parts, strict=True):
        if a is b:
            continue
        if a.tax is not None or b.tax is not None:  # another lot book (its ladder is the layout's)
            return None
        if not (
            _same(a.weight_squares, b.weight_squares)
            and _same(a.scalar_squares, b.scalar_squares)
            and _same(a.low_rank, b.low_rank)
        ):
            return None
    return last


def qp_base(
    parts: Sequence[Description], x0: np.ndarray, scale: float, backoff: float = 0.0, last: QPBase | None = None
) -> QPBase:
    """The segment-free part of :func:`build_qp` (kept by the caller across a climb over lots).
    A re-solve of the same rebalance (same ``x0``) differs from ``last``, the previous solve's
    base, in a few vectors (the trade count's weights, a blocked asset's bounds): it reuses the rest."""
    parts = tuple(parts)
    last = _reusable(last, parts, x0, scale, backoff)
    layout = _layout(parts, x0) if last is None else last.layout
    n = layout.n
    aux = _triplets(layout.low_rank, 0, n) if last is None else last.aux
    p_matrix, q, const, squares, dense_w = _objective(parts, x0, layout, scale, last)
    rate = sum((p.cost for p in parts if p.cost is not None), np.zeros(n))
    limit_groups = tuple(g for p in parts for g in p.limits)
    same_bounds = last is not None and _same_groups(last.limit_groups, limit_groups)  # a re-weighted re-solve
    if last is not None and same_bounds:
        buy_cap, sell_cap, coupled = last.upper[:n], last.sell_cap, list(last.coupled)
    else:
        buy_cap, sell_cap, coupled = _bounds(last, limit_groups, n)
    has_cost = any(p.cost is not None for p in parts)
    if last is not None and _same_rows(last, coupled, rate, has_cost):  # at most the trade bounds changed
        triplets, lower, groups, m, spans = last.triplets, last.lower, last.groups, last.m, last.spans
        a_matrix, cost_unit = last.a_matrix, last.cost_unit
        # The last base's array itself when no bound changed (a re-weighting): no copy.
        upper = last.upper if same_bounds else np.concatenate([buy_cap, sell_cap, last.upper[2 * n :]])
    else:
        rows, cols, vals, lower, upper, groups, m = _rows(
            x0, layout, aux, rate, backoff, buy_cap, sell_cap, coupled, has_cost
        )
        if layout.ladder is not None and layout.ladder.region is not None:  # its values: per segments
            k = len(layout.ladder.region)
            groups.append(("tax_region", m, m + k))
            lower, upper, m = np.append(lower, np.full(k, -np.inf)), np.append(upper, np.zeros(k)), m + k
        triplets, a_matrix, spans, cost_unit = (rows, cols, vals), {}, row_spans(groups, m), _cost_unit(rate)
    return QPBase(
        layout,
        p_matrix,
        q,
        const,
        squares,
        dense_w,
        rate,
        triplets,
        lower,
        upper,
        groups,
        m,
        sell_cap,
        scale,
        x0,
        aux,
        parts,
        backoff,
        tuple(coupled),
        a_matrix,
        limit_groups,
        spans,
        cost_unit,
    )


def _cost_unit(rate: np.ndarray) -> float:
    """The cost column's unit: the mean cost rate (a cost in turnover units, of the weights' size,
    keeps ADMM scaled)."""
    positive = rate[rate > 0]
    return float(positive.mean()) if positive.size else 1.0


def _bounds(
    last: QPBase | None, groups: tuple[LimitGroup, ...], n: int
) -> tuple[np.ndarray, np.ndarray, list[LimitGroup]]:
    """:func:`trade_bounds` of ``groups``, from ``last``'s when ``groups`` only add bounds to its
    groups (a debias solve's fixed assets): a minimum is exact in any order."""
    if last is not None:
        kept = {id(g) for g in last.limit_groups}
        added = [g for g in groups if id(g) not in kept]
        if _same_groups(tuple(g for g in groups if id(g) in kept), last.limit_groups):
            buy_cap, sell_cap, rows = trade_bounds(added, n)
            if not rows:
                return np.minimum(last.upper[:n], buy_cap), np.minimum(last.sell_cap, sell_cap), list(last.coupled)
    return trade_bounds(groups, n)


def _same_groups(a: tuple[LimitGroup, ...], b: tuple[LimitGroup, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _same_rows(last: QPBase, coupled: list[LimitGroup], rate: np.ndarray, has_cost: bool) -> bool:
    """Whether ``last``'s rows are those of ``coupled`` at ``rate`` (its trade bounds aside)."""
    same_cost = bool(np.isinf(last.upper[2 * last.layout.n])) == has_cost and np.array_equal(rate, last.rate)
    return same_cost and _same_groups(tuple(coupled), last.coupled)


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

    Built from triplets in one conversion per matrix (scipy's block constructors cost more than
    the solve), and every position is stored even when its value is 0, so the sparsity pattern
    depends on the structure only and a kept OSQP workspace takes the new values.
    """
    base = qp_base(parts, x0, scale, backoff) if base is None else base
    layout, scale = base.layout, base.scale
    q, const, lower, upper, tax_terms = base.q.copy(), base.const, base.lower, base.upper, None
    cost_unit = base.cost_unit
    if layout.ladder is None:  # the base's bounds and rows as they are (never modified in place)
        a_t = _a_matrix(base, cost_unit)
        a_matrix, segments = a_t[0], None
    else:
        segments, lower, upper, const, a_matrix, tax_terms = _on_segments(base, layout.ladder, segments, q, cost_unit)
        a_t = None
    q[2 * layout.n] *= cost_unit
    aux_rows, aux_cols, aux_vals, aux_offset = base.aux
    return NativeQP(
        n=layout.n,
        P=base.p_matrix,
        q=q * scale,
        const=const * scale,
        A=a_matrix,
        lower=lower,
        upper=upper,
        groups=base.groups,
        curvature=base.squares.curvature * scale,
        diagonal=base.squares.diagonal * scale,
        dense_w=None if base.dense_w is None else base.dense_w * scale,
        x0=base.x0,
        aux=(aux_rows, aux_cols, aux_vals),
        aux_offset=aux_offset,
        scale=scale,
        cost_unit=cost_unit,
        ladder=layout.ladder,
        segments=segments,
        tax_terms=None if tax_terms is None else dataclasses.replace(tax_terms, price=tax_terms.price * scale),
        eigen=None if layout.eigen is None else (2.0 * scale * layout.eigen[0], layout.eigen[1]),
        a_t=a_t,
        spans=base.spans,
    )


def _on_segments(
    base: QPBase, ladder: Ladder, segments: np.ndarray | None, q: np.ndarray, cost_unit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, sparse.csc_matrix, _TaxTerms]:
    """A taxable account's QP on ``segments`` (default its first lots): each asset's sell from
    its segment's start (one it can reach), ``T`` and ``G`` folded into ``q`` (in place) and the
    rows; the segments, bounds, constant, ``A`` and what was folded."""
    n, lower, upper = base.layout.n, base.lower.copy(), base.upper.copy()
    segments = ladder.reachable(np.zeros(n, dtype=np.int64) if segments is None else segments, base.sell_cap)
    shape = (base.m, base.layout.nz)
    const, a_matrix, tax_terms = on_segments(
        base.triplets, shape, ladder, segments, q, base.const, lower, upper, cost_unit
    )
    return segments, lower, upper, const, a_matrix, tax_terms


def _a_matrix(base: QPBase, unit: float) -> tuple[sparse.csc_matrix, sparse.csr_matrix]:
    """``A`` of a base without lots and its transpose, built once per cost unit (the bases of one
    rebalance's re-solves that differ only in the trade bounds share them)."""
    if unit not in base.a_matrix:
        rows, cols, vals = base.triplets
        a_matrix = csc(rows, cols, in_cost_unit(cols, vals, 2 * base.layout.n, unit), (base.m, base.layout.nz))
        base.a_matrix[unit] = (a_matrix, a_matrix.T)
    return base.a_matrix[unit]


def _objective(
    parts: Sequence[Description], x0: np.ndarray, layout: _Layout, scale: float, last: QPBase | None = None
) -> tuple[sparse.csc_matrix, np.ndarray, float, _Squares, np.ndarray | None]:
    """``P`` (upper triangle, scaled), ``q`` and the constant (unscaled), P's blocks (see
    :class:`_Squares`) and the dense block on ``w`` (``P``, the squares and the dense block those of
    ``last``, whose squared rows are the same: a re-weighting only moves ``q``'s linear part).

    Diagonal squares ``sum_i s_i^2 (w_i - b_i)^2`` with ``w = x0 + buy - sell``, squares of scalar
    columns, and one auxiliary variable (diagonal 2) per low-rank row."""
    n, nz = layout.n, layout.nz
    squares = _squares(parts, x0, layout) if last is None else last.squares
    const = squares.const
    q = np.zeros(nz)
    for p in parts:  # each entry's terms added in the order of the parts, the weights' slope last
        for code, root_s, offset_s in p.scalar_squares:
            q[2 * n - 1 - code] += 2.0 * root_s * root_s * offset_s
        for line in (p.linear, p.surrogate):
            if line is not None:
                np.add.at(q, column(line.cols, n), line.vals)
        q[2 * n] += p.cost_weight
    q[:n] += squares.slope
    q[n : 2 * n] -= squares.slope
    dense_w = None
    if layout.on_weights is not None:
        factor, shift = layout.on_weights  # rows factor @ w + shift
        if last is not None:
            dense_w = last.dense_w
        else:  # the covariance kept with its eigenbasis: no n^3 product
            dense_w = 2.0 * (factor.T @ factor if layout.eigen is None else layout.eigen[2])
        q[layout.nt : layout.nt + n] += 2.0 * (factor.T @ shift)
        const += float(shift @ shift)
    if last is not None:
        return last.p_matrix, q, const, squares, dense_w
    p_data = np.concatenate(
        [squares.curvature, np.column_stack([-squares.curvature, squares.curvature]).ravel(), squares.diagonal]
    )
    p_matrix = _p_matrix(p_data * scale, n, nz)
    if dense_w is not None:
        p_matrix = (p_matrix + _upper_block(dense_w * scale, layout.nt, nz)).tocsc()
    return p_matrix, q, const, squares, dense_w


@dataclass(frozen=True)
class _Squares:
    """What the squared rows give the objective: the per-asset curvature of P's buy/sell blocks,
    P's diagonal on the scalar and aux columns, the weights' slope in ``q`` and the constant
    (unscaled; the dense block's aside)."""

    curvature: np.ndarray
    diagonal: np.ndarray
    slope: np.ndarray
    const: float


def _squares(parts: Sequence[Description], x0: np.ndarray, layout: _Layout) -> _Squares:
    n, nw = layout.n, layout.nw
    curvature = np.zeros(n)
    slope = np.zeros(n)
    diagonal = np.zeros(layout.nz - 2 * n)
    diagonal[SCALARS + nw : SCALARS + nw + layout.k] = 2.0  # the aux variables (not the lots)
    const = 0.0
    for p in parts:
        for root, base in p.weight_squares:
            s2 = root * root
            shift = x0 if base is None else x0 - base
            curvature += s2
            slope += 2.0 * s2 * shift
            const += float(s2 @ (shift * shift))
        for code, root_s, offset_s in p.scalar_squares:
            diagonal[-1 - code] += 2.0 * root_s * root_s  # the column 2n - 1 - code
            const += (root_s * offset_s) ** 2
    curvature *= 2.0
    return _Squares(curvature, diagonal, slope, const)


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
    cost_col, turnover_col = 2 * n, 2 * n + 1
    fixed_rows, fixed_cols, fixed_vals, fixed_lower = _definition_pattern(n)
    rows, cols, vals = list(fixed_rows), list(fixed_cols), list(fixed_vals)
    both = fixed_cols[1][:-1]  # buy and sell
    uniform = bool(np.all(rate == rate[0])) if n else True
    if uniform:  # c >= r tau: two entries, not a third dense row over the assets
        rows.append(np.full(2, nt + 2))
        cols.append(np.array([cost_col, turnover_col]))
        vals.append(np.array([1.0, -float(rate[0]) if n else 0.0]))
    else:
        rows.append(np.full(2 * n + 1, nt + 2))
        cols.append(np.append(both, cost_col))
        vals.append(np.append(-np.concatenate([rate, rate]), 1.0))
    # T and G are 0: in a taxable account they are folded into the sells (see ``_qp_segments``).
    lower = list(fixed_lower)
    upper = [
        np.concatenate([buy_cap, sell_cap, [np.inf if has_cost else 0.0, np.inf, np.inf], np.zeros(SCALARS - 3)]),
        np.zeros(2),
        np.full(1, np.inf),
    ]
    return rows, cols, vals, lower, upper


@functools.lru_cache(maxsize=16)
def _definition_pattern(n: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """What :func:`_definition_rows` owes to ``n`` alone: the triplets of the trade columns' bounds
    and of the turnover and net rows, and the lower bounds (read-only, shared per size)."""
    nt = 2 * n + SCALARS
    every, both = np.arange(nt), np.arange(2 * n)
    ones, signs = np.ones(2 * n), np.concatenate([np.ones(n), -np.ones(n)])
    rows = (every, np.full(2 * n + 1, nt), np.full(2 * n + 1, nt + 1))
    cols = (every, np.append(both, 2 * n + 1), np.append(both, 2 * n + 2))
    vals = (np.ones(nt), np.append(-ones, 1.0), np.append(-signs, 1.0))
    lower = (np.concatenate([np.zeros(2 * n + 2), [-np.inf], np.zeros(SCALARS - 3)]), np.zeros(2), np.zeros(1))
    for array in (*rows, *cols, *vals, *lower):
        array.flags.writeable = False
    return rows, cols, vals, lower


def _rows(
    x0: np.ndarray,
    layout: _Layout,
    aux: tuple[np.ndarray, ...],
    rate: np.ndarray,
    backoff: float,
    buy_cap: np.ndarray,
    sell_cap: np.ndarray,
    coupled: list[LimitGroup],
    has_cost: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, int, int]], int]:
    """The constraint rows as triplets with their bounds, the checked row groups and the row count:
    variable bounds (``trade_bounds``); the definitions of turnover and net purchase; the cost
    (``rate``; its bound 0 without a cost term); the ``coupled`` limits (all checked); then
    the definition rows of ``w`` or of the aux variables (``aux``)."""
    n, nt = layout.n, layout.nt
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
    aux_rows, aux_cols, aux_vals, aux_offset = aux
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
    )
