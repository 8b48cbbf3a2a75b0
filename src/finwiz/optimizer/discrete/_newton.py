"""Each asset's own best step in whole lots (``newton_lots``), for the search of ``_search``: the
one-lot moves' parts it needs kept between rounds (``Probes``), the judge that keeps the last point
it priced (``Kept``) and the coupled rows valued through their dense block (``DenseRows``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete._candidates import _trade_point
from finwiz.optimizer.discrete._descent import _Point, _Search
from finwiz.optimizer.discrete._pricing import _Rows
from finwiz.optimizer.verify._compliance import trade_scalars

__all__ = ["DenseRows", "Kept", "Probes", "newton_lots"]


@dataclass(frozen=True)
class Kept(_Search):
    """The search's judge, keeping the last point it priced: a round's neighbours are of the
    point its last accepted move priced, whose ``z`` they need again (``z_of``)."""

    last: list[_Point] = field(default_factory=list, compare=False)

    def at(self, shares: np.ndarray) -> _Point:
        point = super().at(shares)
        self.last[:] = [point]
        return point

    def z_of(self, shares: np.ndarray) -> np.ndarray:
        """``z`` of share trades ``shares`` (the last point's, if of these trades)."""
        if self.last and np.array_equal(self.last[0].shares, shares):
            return self.last[0].z
        return _trade_point(self.data, shares)


class DenseRows(_Rows):
    """The coupled rows valued through their dense block where it is kept: a sparse product's call
    cost ~9 us, ten times the dense one's, and a round values the rows three times."""

    def values(self, z: np.ndarray) -> np.ndarray:
        dense = self.dense
        if dense is None:
            return super().values(z)
        n2 = dense.shape[1]
        return np.asarray(dense @ z[:n2] + self.a_scalar @ z[n2:] + self.offset)


@dataclass
class Probes:
    """Each asset's move of one lot either way and what of it depends on that asset's trade alone:
    its change of ``z``, its own curvature and its change of the coupled rows (per lot), kept
    between the search's rounds and rebuilt only for the assets whose trade changed (a round
    moves one or a few: rebuilt whole, they were a third of the search's time). Both sides
    stacked (first axis: up, down), so that a round prices them in one pass."""

    at: np.ndarray  # the trades the entries are of (nan: none yet)
    steps: tuple[np.ndarray, np.ndarray, np.ndarray]  # buy, sell (2 x n) and scalar changes (2 x n x SCALARS)
    second: np.ndarray  # own curvature (2 x n)
    delta: np.ndarray  # change of the coupled rows (2 x rows x assets)

    @classmethod
    def empty(cls, search: _Search) -> Probes:
        n, rows = search.data.n, len(search.rows.offset)
        steps = (np.zeros((2, n)), np.zeros((2, n)), np.zeros((2, n, SCALARS)))
        return cls(np.full(n, np.nan), steps, np.zeros((2, n)), np.zeros((2, rows, n)))

    def update(self, search: _Search, shares: np.ndarray, z: np.ndarray) -> None:
        """The entries of the assets whose trade is not ``shares``'s (``z``: its point) rebuilt."""
        data = search.data
        changed = np.flatnonzero(~(self.at == shares))
        if changed.size == 0:
            return
        # Both sides and the current trades priced in one call (``_moves`` then ``_Moves.change``,
        # elementwise: the same floats): a call's overhead, not its size, is what a round costs.
        n, c = data.n, changed.size
        owner = np.concatenate([changed, changed])
        now, lot = shares[changed], data.lot[changed]
        trade = np.concatenate([now + lot, now - lot]) * data.prices[owner]
        held = (z[changed] - z[n + changed]) * data.ref_value
        scalars = trade_scalars(data, np.concatenate([trade, held]), np.concatenate([owner, changed]))
        value = trade / data.ref_value
        d_x = scalars[: 2 * c] - np.concatenate([scalars[2 * c :], scalars[2 * c :]])
        steps = (np.maximum(value, 0.0) - z[owner], np.maximum(-value, 0.0) - z[n + owner], d_x)
        for whole, part in zip(self.steps, steps, strict=True):
            whole[:, changed] = part.reshape((2, c, *part.shape[1:]))
        self.second[:, changed] = search.pricer.second(owner, steps).reshape(2, c)
        delta = search.rows.changes(owner, *steps)
        self.delta[:, :, changed] = delta.reshape(len(delta), 2, c).transpose(1, 0, 2)
        self.at[changed] = shares[changed]


def newton_lots(search: _Search, shares: np.ndarray, probes: Probes | None = None) -> np.ndarray:
    """Each asset's own best step in whole lots (signed): the exact change of one lot up and of one
    lot down (the gradient along it and its own curvature, the scalar columns included: costs,
    cash, turnover) is the quadratic on that side, minimised there, and cut to the room the coupled
    rows leave that way (a ratio test: the rows are linear on one side); a step stops at no trade,
    where the cost's kink is. The gradient over the buy column's norm alone left out the scalar
    columns and overshot, and past a binding turnover cap no step fitted: the search went one
    share a move (a $5 name in a $5M account, 40,000 moves to reach the cap). ``probes``: the
    one-lot moves' parts kept from earlier rounds (updated here). Both sides at once (up first:
    a step down is taken only where it gains strictly more)."""
    data, pricer, coupled = search.data, search.pricer, search.rows
    every = np.arange(data.n)
    z = search.z_of(shares) if isinstance(search, Kept) else _trade_point(data, shares)
    probes = Probes.empty(search) if probes is None else probes
    probes.update(search, shares, z)
    grad = pricer.gradient(z)
    steps = probes.steps
    first = np.stack([pricer.first(grad, every, tuple(part[k] for part in steps)) for k in (0, 1)])
    second = probes.second
    lots = np.where((first < 0) & (second > 0), -first / (2 * np.maximum(second, 1e-300)), 0.0)
    side = np.array([1.0, -1.0])[:, None]
    lots = np.minimum(lots, np.where(side * shares < 0, np.abs(shares) / data.lot, np.inf))
    if len(coupled.offset):
        lots = np.minimum(lots, _room(coupled, coupled.values(z), probes.delta))
    lots = np.round(lots)
    change = first * lots + second * lots**2
    up = np.where(change[0] < 0, change[0], 0.0)
    return np.asarray(np.where(change[1] < up, -lots[1], np.where(change[0] < 0, lots[0], 0.0)))


def _room(coupled: _Rows, values: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """The whole lots each side (``delta``: sides x rows x assets, per lot) fits in every coupled
    row (``values``: the rows now): a ratio test, the bound the step moves toward."""
    toward = np.where(delta > 0, (coupled.upper - values)[:, None], (coupled.lower - values)[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(delta != 0, toward / delta, np.inf)
    return np.asarray(np.floor(np.maximum(room.min(axis=1), 0.0) + 1e-9))
