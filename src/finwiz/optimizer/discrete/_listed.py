"""The small 0/1 program of a settle's split assets, solved by listing every choice that could
still keep the rows.

After the LP relaxation only a few assets are split between candidates: HiGHS's branch and bound
on them is mostly presolve and setup, where the partial choices that can still keep the binding
rows number a few hundred at most and only the rows some choice could breach need checking
(figures: docs/decisions/settle-and-descent.md).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from finwiz.optimizer.discrete._candidates import ranges
from finwiz.optimizer.solve._csc import majors

__all__ = ["listed"]

_MOST = 8192  # partial choices listed at most (after dropping those no completion keeps): past that, HiGHS


def listed(
    owner: np.ndarray,
    scalars: np.ndarray,
    price: np.ndarray,
    matrix: sparse.csc_array,
    bounds: tuple[np.ndarray, np.ndarray],
    fixed: np.ndarray,
    free: np.ndarray,
    limits: int,
) -> tuple[bool, np.ndarray | None]:
    """The cheapest choice (by ``price``) of one candidate per asset among the ``free`` ones (a
    mask over the candidates, whose ``owner`` and ``scalars`` are given), with the ``fixed`` ones
    taken, that keeps the last ``limits`` rows of ``matrix`` (the candidates' columns, then the
    scalar columns) within ``bounds``: ``(True, chosen free candidates)``, ``(True, None)`` when no
    choice does, ``(False, None)`` when more than ``_MOST`` partial choices are left to list.

    Asset by asset, a partial choice that no choice of the remaining assets could bring within a
    row's bounds is dropped: binding rows leave few, so a 100-asset settle's split assets are listed
    too (docs/decisions/settle-and-descent.md); the first of equal cheapest, in listing order, as before."""
    m, first = len(owner), matrix.shape[0] - limits
    candidates = np.flatnonzero(free)
    candidates = candidates[np.argsort(owner[candidates], kind="stable")]  # grouped by asset, in listing order
    starts = _changes(owner[candidates])
    # The free candidates' and the scalar columns' coupled rows, dense (few columns).
    block = _coupled(matrix, np.concatenate([candidates, np.arange(m, matrix.shape[1])]), first)
    on_scalars = block[:, candidates.size :]  # each coupled row's scalar columns: those of every choice's sum
    coef = block[:, : candidates.size] + on_scalars @ scalars[candidates].T
    taken = np.zeros(matrix.shape[1])
    taken[fixed] = 1.0
    held = matrix @ taken  # the fixed candidates' sum, column by column (as a sum over their columns adds them)
    base = held[first:] + on_scalars @ scalars[fixed].sum(axis=0)
    low, high = bounds[0][first:] - base, bounds[1][first:] - base
    least = np.minimum.reduceat(coef, starts, axis=1).T if candidates.size else np.zeros((0, limits))
    most = np.maximum.reduceat(coef, starts, axis=1).T if candidates.size else np.zeros((0, limits))
    rows = np.flatnonzero((least.sum(axis=0) < low) | (most.sum(axis=0) > high))  # the others hold whatever is chosen
    # What the assets after each one add at least and at most on those rows (a partial choice's reach).
    after = np.cumsum(least[::-1, rows], axis=0)[::-1], np.cumsum(most[::-1, rows], axis=0)[::-1]
    done, found = _pruned(
        coef[rows], price[candidates], np.append(starts, candidates.size), (low[rows], high[rows]), after
    )
    return done, None if found is None else candidates[found]


def _pruned(
    by_row: np.ndarray,
    price: np.ndarray,
    bounds_at: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
) -> tuple[bool, np.ndarray | None]:
    """:func:`listed`'s answer as places in ``by_row``'s columns (rows x candidates, grouped by
    asset from ``bounds_at``), listed asset by asset, dropping the partial choices whose reach
    (``after``: what the later assets add at least and at most) misses a row's ``bounds``. A
    partial choice's rows are a column: the checks reduce over the few rows at once (row-wise
    reductions of a choices x rows block cost ~2x at a few hundred choices)."""
    low, high = bounds[0][:, None], bounds[1][:, None]
    reach_low, reach_high = low - _REACH, high + _REACH
    values, cost = np.zeros((len(low), 1)), np.zeros(1)
    parents: list[
        tuple[np.ndarray, np.ndarray]
    ] = []  # per asset: each partial choice's parent and the candidate it adds
    for k in range(len(bounds_at) - 1):
        lo, hi = int(bounds_at[k]), int(bounds_at[k + 1])
        size = len(cost) * (hi - lo)
        if size > _MOST:
            return False, None
        values = (values[:, :, None] + by_row[:, None, lo:hi]).reshape(len(low), size)
        cost = (cost[:, None] + price[None, lo:hi]).ravel()
        parent, added = np.divmod(np.arange(len(cost)), hi - lo)
        if k + 2 < len(bounds_at):
            least, most = after[0][k + 1][:, None], after[1][k + 1][:, None]
            alive = np.flatnonzero(np.all((values + most >= reach_low) & (values + least <= reach_high), axis=0))
            values, cost, parent, added = values.take(alive, axis=1), cost[alive], parent[alive], added[alive]
        parents.append((parent, lo + added))
    keeps = np.all((values >= low) & (values <= high), axis=0)
    if not keeps.any():
        return True, None
    at = int(np.flatnonzero(keeps)[np.argmin(cost[keeps])])
    picked = []
    for parent, added in reversed(parents):
        picked.append(added[at])
        at = int(parent[at])
    return True, np.array(picked[::-1], np.int64)


def _coupled(matrix: sparse.csc_array, columns: np.ndarray, first: int) -> np.ndarray:
    """Rows ``first:`` of the ``columns`` of ``matrix`` (canonical CSC), dense: placed from its
    arrays, where scipy's column slice and ``toarray`` of every row cost more than the listing."""
    if not matrix.has_canonical_format:
        return np.asarray(sparse.csc_array(matrix[:, columns]).toarray()[first:])
    begin, end = matrix.indptr[columns], matrix.indptr[columns + 1]
    size = end - begin
    at = ranges(begin, size)
    row, column = matrix.indices[at], np.repeat(np.arange(len(columns)), size)
    inside = row >= first
    block = np.zeros((matrix.shape[0] - first, len(columns)))
    block[row[inside] - first, column[inside]] = matrix.data[at[inside]]
    return block


_REACH = 1e-9  # a partial choice is dropped only when its reach misses a row by more (its sums' float order differs)


def reach(
    trade_part: sparse.csr_array, scalar_cols: sparse.csr_array, owner: np.ndarray, scalars: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on what each coupled row (``trade_part``: rows x candidates, ``scalar_cols``: rows x
    scalar columns) takes over every choice of one candidate per asset (``owner``, ``scalars``): its
    trade part's reach per asset and its scalar columns' apart, wider than the exact reach, so a
    row outside them is one no choice breaches."""
    by_row = trade_part if isinstance(trade_part, sparse.csr_array) else sparse.csr_array(trade_part)
    if np.any(owner[1:] < owner[:-1]):  # the candidates come grouped by asset (the rounding's do already)
        order = np.argsort(owner, kind="stable")
        owner, scalars = owner[order], scalars[order]
        by_row = sparse.csr_array(sparse.csc_array(by_row)[:, order])
    if not by_row.has_canonical_format:
        by_row = by_row.copy()
        by_row.sum_duplicates()
    assets, starts = int(owner[-1]) + 1, _changes(owner)
    # Row by row, each row's columns in order and the candidates grouped: the keys come sorted.
    key = majors(by_row.indptr).astype(np.int64) * assets
    key += owner[by_row.indices]
    value = by_row.data
    first = _changes(key)
    least = np.minimum.reduceat(value, first) if key.size else np.zeros(0)
    most = np.maximum.reduceat(value, first) if key.size else np.zeros(0)
    row, asset = np.divmod(key[first], assets)
    partial = np.diff(np.append(first, key.size)) < np.diff(np.append(starts, owner.size))[asset]  # 0 is among them
    least, most = np.where(partial, np.minimum(least, 0.0), least), np.where(partial, np.maximum(most, 0.0), most)
    k = trade_part.shape[0]
    low = np.bincount(row, least, minlength=k).astype(np.float64)  # int when no row has a trade entry
    high = np.bincount(row, most, minlength=k).astype(np.float64)
    sums = np.stack([np.minimum.reduceat(scalars, starts), np.maximum.reduceat(scalars, starts)]).sum(axis=1)
    ends = scalar_cols.toarray()[:, :, None] * sums.T[None, :, :]  # rows x scalars x (least sum, most sum)
    return low + ends.min(axis=2).sum(axis=1), high + ends.max(axis=2).sum(axis=1)


def _changes(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal ``keys`` starts (``np.r_`` costs ~10x for this)."""
    return np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if keys.size else np.zeros(0, np.intp)


def breachable(reached: tuple[np.ndarray, np.ndarray], bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which coupled rows some choice could take outside ``bounds``, by their ``reached`` bounds
    (:func:`reach`): the rest hold whatever is chosen (on binding books most: the position caps far
    from their bounds), and the 0/1 program is built without them."""
    return np.asarray((reached[0] < bounds[0] + _SAFE) | (reached[1] > bounds[1] - _SAFE))


_SAFE = 1e-12  # weight units: a row this close to being breached is kept
