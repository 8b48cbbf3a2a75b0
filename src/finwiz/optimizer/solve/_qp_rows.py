"""The descriptions' rows as the native QP takes them (``_qp_build``): stacked triplets, the
limits that are bounds on one trade variable, and squared rows over the weights as a dense factor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finwiz.optimizer.describe._model import Affine, LimitGroup, column

__all__ = ["in_cost_unit", "trade_bounds"]


def _triplets(affines: Sequence[Affine], first_row: int, n: int) -> tuple[np.ndarray, ...]:
    """Rows (from ``first_row``), columns (scalar codes placed after buy and sell) and values of
    ``affines`` stacked, and their offsets."""
    stacked = Affine.stack(affines)
    return stacked.rows + first_row, column(stacked.cols, n), stacked.vals, stacked.offset


def in_cost_unit(cols: np.ndarray, vals: np.ndarray, cost_col: int, unit: float) -> np.ndarray:
    """``vals`` with the cost column's entries in units of ``unit`` (the native QP's cost column)."""
    return np.where(cols == cost_col, vals * unit, vals)


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


_DENSE_FACTORS = 64


def _weight_rows(rows_of: Sequence[Affine], x0: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(F, f)`` with the rows equal to ``F w + f``, if they touch buy and sell only as weights
    (``+v`` on buy, ``-v`` on sell); None otherwise."""
    n = len(x0)
    if all(a.dense is not None for a in rows_of):  # a covariance's root: its matrix as it is
        blocks = [a.dense for a in rows_of if a.dense is not None]
        factor = blocks[0] if len(blocks) == 1 else np.vstack(blocks)  # one root: read, not copied
        offset = np.concatenate([a.offset for a in rows_of])
        return factor, offset - factor @ x0
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
