"""The small 0/1 program of a settle's split assets, solved by listing every choice.

After the LP relaxation only a few assets are split between candidates: HiGHS's branch and bound
on them is mostly presolve and setup, where the choices number a few thousand at most and only
the rows some choice could breach need checking (figures: docs/decisions/s11-round.md).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["listed"]

_MOST = 8192  # choices listed at most: past that, HiGHS


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
    choice does, ``(False, None)`` when there are more than ``_MOST`` choices to list."""
    groups = [np.flatnonzero(free & (owner == asset)) for asset in np.unique(owner[free])]
    if float(np.prod([len(g) for g in groups], dtype=float)) > _MOST:
        return False, None
    m, first = len(owner), matrix.shape[0] - limits
    part = sparse.csc_array(matrix[first:])
    candidates = np.flatnonzero(free)
    on_scalars = part[:, m:].toarray()  # each coupled row's scalar columns: those of every choice's sum
    coef = part[:, candidates].toarray() + on_scalars @ scalars[candidates].T
    base = np.asarray(part[:, fixed].sum(axis=1)).ravel() + on_scalars @ scalars[fixed].sum(axis=0)
    low, high = bounds[0][first:] - base, bounds[1][first:] - base
    at = [np.searchsorted(candidates, g) for g in groups]
    least = sum((coef[:, i].min(axis=1) for i in at), np.zeros(limits))
    most = sum((coef[:, i].max(axis=1) for i in at), np.zeros(limits))
    rows = np.flatnonzero((least < low) | (most > high))  # the others hold whatever is chosen
    values, cost, pick = np.zeros((1, rows.size)), np.zeros(1), np.zeros((1, 0), np.int64)
    for g, i in zip(groups, at, strict=True):
        values = (values[:, None, :] + coef[np.ix_(rows, i)].T[None, :, :]).reshape(-1, rows.size)
        cost = (cost[:, None] + price[g][None, :]).ravel()
        pick = np.concatenate([np.repeat(pick, len(g), axis=0), np.tile(g, len(pick))[:, None]], axis=1)
    keeps = np.all((values >= low[rows]) & (values <= high[rows]), axis=1)
    if not keeps.any():
        return True, None
    return True, pick[np.flatnonzero(keeps)[np.argmin(cost[keeps])]]


def breachable(
    trade_part: sparse.csr_array,
    scalar_cols: sparse.csr_array,
    owner: np.ndarray,
    scalars: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Which coupled rows (``trade_part``: rows x candidates, ``scalar_cols``: rows x scalar
    columns) some choice of one candidate per asset (``owner``, ``scalars``) could take outside
    ``bounds``: the rest hold whatever is chosen (on binding books most: the position caps far
    from their bounds), and the 0/1 program is built without them. Each
    row's reach is bounded by its trade part's per asset and its scalar columns' apart (wider than
    the exact reach, so no row that matters is left out)."""
    assets = int(owner.max()) + 1
    coo = sparse.coo_array(trade_part)
    coo.sum_duplicates()
    key = coo.row.astype(np.int64) * assets + owner[coo.col]
    order = np.argsort(key, kind="stable")
    key, value = key[order], coo.data[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.zeros(0, np.int64)
    least = np.minimum.reduceat(value, starts) if key.size else np.zeros(0)
    most = np.maximum.reduceat(value, starts) if key.size else np.zeros(0)
    row, asset = np.divmod(key[starts], assets)
    partial = np.diff(np.r_[starts, key.size]) < np.bincount(owner, minlength=assets)[asset]  # 0 is among them
    least, most = np.where(partial, np.minimum(least, 0.0), least), np.where(partial, np.maximum(most, 0.0), most)
    k = trade_part.shape[0]
    low = np.bincount(row, least, minlength=k).astype(np.float64)  # int when no row has a trade entry
    high = np.bincount(row, most, minlength=k).astype(np.float64)
    sums = np.full((2, assets, scalars.shape[1]), np.inf)
    sums[1] = -np.inf
    np.minimum.at(sums[0], owner, scalars)
    np.maximum.at(sums[1], owner, scalars)
    on = scalar_cols.toarray()
    ends = on[:, :, None] * sums.sum(axis=1).T[None, :, :]  # rows x scalars x (least sum, most sum)
    low += ends.min(axis=2).sum(axis=1)
    high += ends.max(axis=2).sum(axis=1)
    return np.asarray((low < bounds[0] + _SAFE) | (high > bounds[1] - _SAFE))


_SAFE = 1e-12  # weight units: a row this close to being breached is kept
