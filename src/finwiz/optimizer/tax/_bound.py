"""A netting region's lower bound without solving it: the Lagrangian dual of its relaxation.

Every region's relaxation (``_order.relaxation``) is one problem with different lot rates and a
few rows on the year's two nets. Its Lagrangian -- every row but the variables' own bounds priced
at multipliers ``y``, the region's rows at ``lam >= 0`` -- separates: one asset at a time (its buy,
and its sell spread over its lots cheapest first: a convex piecewise-linear price), and each scalar
column alone. Its minimum is a lower bound of the region's optimum over every choice of lots for
*any* ``y`` and ``lam`` (weak duality); at the multipliers of another region's solved relaxation
(the rows they share are the same) it is close, and ``lam`` is chosen by a few steps of a
derivative-free search. Evaluating it costs one QP build and numpy over the lots, no solve.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import Ladder, NativeQP
from finwiz.optimizer.solve._solve import native_qp

__all__ = ["flip_bounds", "lagrangian_bound"]

_IMPLIED = 1e3
"""A bound (``V_ref`` units) no optimum's scalar column reaches (turnover, net purchase, cost):
stands in for an infinite one, so a multiplier's rounding noise cannot make the bound -inf."""
_EVALUATIONS = 25
_REACH = 50.0
"""How far the region rows' multipliers are searched, in units of the tax's own price."""


def lagrangian_bound(
    region: Model, solved: NativeQP, y: np.ndarray, target: float | None = None, one_side: bool = False
) -> float | None:
    """A lower bound of ``region``'s relaxation optimum (its objective, the linear tax of its rates)
    from the multipliers ``y`` of ``solved`` (another region's QP of the same request); None when
    the two QPs do not share their rows or the Lagrangian does not separate (a dense risk block).
    The search for the region rows' multipliers stops once the bound reaches ``target``.
    ``one_side``: the bound of the answers that keep the side rule (no asset both bought and sold:
    each asset's part is the better of its two sides, still a Lagrangian of that non-convex
    problem, so still below it), which can be above the relaxation's optimum."""
    found = _dual_at(region, solved, y)
    if found is None:
        return None
    qp, dual = found
    ladder = dual.ladder
    assert qp.tax_terms is not None
    assert ladder.region is not None
    dual.one_side = one_side
    scale = max(float(qp.tax_terms.price[0]), 1e-12)  # a region row's price is a share of the tax's
    k = len(ladder.region)

    aim = np.inf if target is None else target * qp.scale - qp.const
    start = np.zeros(k)
    own = solved.tax_terms.region_rows if solved.tax_terms is not None else None
    theirs = None if solved.ladder is None else solved.ladder.region
    same = theirs is not None and theirs.shape == ladder.region.shape and np.allclose(theirs, ladder.region)
    if own is not None and same:  # the same region: start at its own multipliers
        start = np.maximum(y[own], 0.0) / scale
    value = _ascend(dual, start, scale, aim)
    return None if not np.isfinite(value) else (value + qp.const) / qp.scale


@dataclass
class _Kept:
    """What a region's Lagrangian keeps between lifts: its QP (None: it does not separate), and
    its last multipliers' Lagrangian (a search lifts a region at one dual twice)."""

    qp: NativeQP | None
    last: tuple[NativeQP, np.ndarray, tuple[NativeQP, _Dual] | None] | None = None


_KEPT: weakref.WeakKeyDictionary[Model, _Kept] = weakref.WeakKeyDictionary()


def _dual_at(region: Model, solved: NativeQP, y: np.ndarray) -> tuple[NativeQP, _Dual] | None:
    """``region``'s QP and its Lagrangian at ``solved``'s multipliers ``y`` (see
    :func:`lagrangian_bound`); the QP is built once per region."""
    kept = _KEPT.get(region)
    if kept is None:
        qp = native_qp(region, np.zeros(region.data.n, dtype=np.int64))
        separates = (
            qp is not None
            and qp.ladder is not None
            and qp.tax_terms is not None
            and qp.dense_w is None
            and qp.ladder.region is not None
            and qp.ladder.nets is not None
            and qp.segments is not None
            and not qp.segments.any()
        )
        kept = _KEPT[region] = _Kept(qp if separates else None)
    qp = kept.qp
    if qp is None:
        return None
    if kept.last is not None and kept.last[0] is solved and np.array_equal(kept.last[1], y):
        return kept.last[2]
    found = None
    shared = _shared_rows(qp)
    if shared == _shared_rows(solved) and qp.A.shape[1] == solved.A.shape[1]:
        dual = _Dual.of(qp, y[:shared].copy())
        found = None if dual is None else (qp, dual)
    kept.last = (solved, y.copy(), found)
    return found


def _ascend(dual: _Dual, start: np.ndarray, scale: float, aim: float) -> float:
    """The best Lagrangian value over the region rows' multipliers (``lam = scale x v``, ``v`` in
    ``[0, _REACH]``) found by Kelley's cutting planes from ``start`` (each evaluation a cut on the
    concave dual), stopping once it reaches ``aim`` or the cuts prove no more than 1e-9 is left."""
    k = len(start)
    cuts: _Cuts | None = None
    v = start
    best = -np.inf
    for _ in range(_EVALUATIONS):
        value, slope = dual.value_and_slope(v * scale)
        best = max(best, value)
        if best >= aim or k == 0:
            break
        grad = slope * scale  # in v
        cuts = cuts or _Cuts(k)
        found = cuts.add(grad, value - grad @ v)  # t - grad . v <= value - grad . v_i
        if found is None:
            break
        v, ceiling = found
        if ceiling - best <= 1e-9 * max(1.0, abs(best)):
            break
    return best


class _Cuts:
    """Kelley's master LP, ``max t`` over ``v`` in ``[0, _REACH]`` below every cut, kept in one
    HiGHS model per ascent: each cut is a row added, re-solved from the last basis."""

    def __init__(self, k: int):
        import highspy

        self.k, self.ok = k, highspy.HighsModelStatus.kOptimal
        # The bare binding: the wrapper class prints a banner on stdout when it is built.
        self.h = h = highspy._Highs()  # type: ignore[attr-defined]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")  # a few rows: presolve costs more than it saves
        cost = np.append(np.zeros(k), -1.0)
        h.addCols(k + 1, cost, np.append(np.zeros(k), -np.inf), np.append(np.full(k, _REACH), np.inf), 0, [], [], [])
        self.index = np.arange(k + 1, dtype=np.int32)

    def add(self, grad: np.ndarray, bound: float) -> tuple[np.ndarray, float] | None:
        """The master's optimum ``(v, t)`` with the cut ``t - grad . v <= bound``; None if unsolved."""
        h = self.h
        h.addRow(-np.inf, float(bound), self.k + 1, self.index, np.append(-grad, 1.0))
        h.run()
        if h.getModelStatus() != self.ok:
            return None
        x = np.array(h.getSolution().col_value)
        return x[: self.k], float(x[self.k])


def _shared_rows(qp: NativeQP) -> int:
    """How many rows come before the netting region's (the rows every region's QP has)."""
    region = qp.tax_terms.region_rows if qp.tax_terms is not None else None
    return int(qp.A.shape[0]) - (0 if region is None else len(region))


class _Dual:
    """The Lagrangian's minimum at fixed ``y`` as a function of the region rows' ``lam``."""

    one_side = False  # each asset's part minimised selling only or buying only (the side rule)

    def __init__(
        self,
        qp: NativeQP,
        buy: np.ndarray,
        sell: np.ndarray,
        lot_price: np.ndarray,
        rest: float,
    ):
        assert qp.ladder is not None
        self.qp, self.ladder, self.buy, self.sell, self.lot_price, self.rest = qp, qp.ladder, buy, sell, lot_price, rest
        self.held, self.parts = _layout(qp.n, qp.ladder)

    @classmethod
    def of(cls, qp: NativeQP, y: np.ndarray) -> _Dual | None:
        """The Lagrangian of ``qp`` (a region's, on every asset's first lot) at ``y`` on the rows
        before the region's; None when it is -inf."""
        ladder, terms = qp.ladder, qp.tax_terms
        assert ladder is not None
        assert terms is not None
        n, nt, m = qp.n, 2 * qp.n + SCALARS, len(y)
        lower, upper = qp.lower[:m], qp.upper[:m]
        y = np.where(y > 0, np.where(np.isfinite(upper), y, 0.0), np.where(np.isfinite(lower), y, 0.0))
        y[:nt] = 0.0  # the variables' own bounds stay bounds
        support = float(y[y > 0] @ upper[y > 0] + y[y < 0] @ lower[y < 0])
        # A'y with the later rows at 0: no copy of A's first rows (the same sums, in the same order)
        padded = np.concatenate([y, np.zeros(qp.A.shape[0] - m)])
        reduced = qp.q + qp.A.T @ padded
        price_t, price_g = terms.prices(padded)
        _, _, slope_t, slope_g, _, _ = ladder.rows(np.zeros(n, dtype=np.int64))
        sell = reduced[n : 2 * n] - price_t * slope_t - price_g * slope_g  # the sell's price, no lot's tax
        rest = _scalars(qp, reduced, nt) - support
        if not np.isfinite(rest):
            return None
        lot_price = sell[ladder.owner] + price_t * ladder.tax + price_g * ladder.gain
        return cls(qp, reduced[:n], sell, lot_price, rest)

    def value(self, lam: np.ndarray) -> float:
        """The Lagrangian's minimum at the region rows' multipliers ``lam`` (scaled units)."""
        return self.value_and_slope(lam)[0]

    def value_and_slope(self, lam: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`value` and a supergradient in ``lam``: the region rows' excess at the minimiser."""
        values, _, parts = self._solve(lam, None)
        region = self.ladder.region
        if region is None:
            return float(values.sum() + self.rest), np.zeros(0)
        nets = np.zeros(2)
        for sells, sorted_nets, starts, caps in parts:
            taken = _clip(sells[:, None] - starts, 0.0, caps)
            nets += np.einsum("nk,nkj->j", taken, sorted_nets)
        return float(values.sum() + self.rest - lam @ region[:, 2]), region[:, :2] @ nets - region[:, 2]

    def _region_bound(self, lam: np.ndarray) -> float:
        region = self.ladder.region
        return 0.0 if region is None else float(lam @ region[:, 2])

    def assets(
        self, lam: np.ndarray, boxes: tuple[np.ndarray, ...] | None = None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Each asset's part of the Lagrangian's minimum at ``lam``, within ``boxes`` (buy low,
        buy high, sell low, sell high; default the QP's); ``rows``: only those assets' (in order)."""
        if rows is None:
            return self._solve(lam, boxes)[0]
        slot = np.arange(len(self.ladder.owner)) - self.ladder.first[self.ladder.owner]
        return np.asarray(self._solve(lam, boxes, [_Part(self.ladder, slot, rows)])[0][rows])

    def _solve(
        self, lam: np.ndarray, boxes: tuple[np.ndarray, ...] | None, parts: list[_Part] | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, ...]]]:
        """Each asset's minimum and minimising sell, and per part its sells with its lots' nets,
        starts and caps in price order (``parts``: default every asset's; values of others unset)."""
        qp, ladder = self.qp, self.ladder
        n = qp.n
        per_lot = self.lot_price.copy()
        if ladder.region is not None:
            assert ladder.nets is not None
            per_lot += ladder.nets @ (ladder.region[:, :2].T @ lam)
        box = boxes or (qp.lower[:n], qp.upper[:n], qp.lower[n : 2 * n], qp.upper[n : 2 * n])
        # Past its lots an asset's sell is priced at its cheapest lot: below any continuation.
        cheapest = self.sell.copy()
        cheapest[ladder.count > 0] = np.inf
        np.minimum.at(cheapest, ladder.owner, per_lot)
        past = np.maximum(box[3] - self.held, 0.0)
        values, sells, out = np.empty(n), np.empty(n), []
        for part in self.parts if parts is None else parts:
            rows = part.rows
            own = (qp.curvature[rows], self.buy[rows], tuple(b[rows] for b in box))
            value, sell, *rest = part.solve(*own, per_lot, cheapest[rows], past[rows], self.one_side)
            values[rows], sells[rows] = value, sell
            out.append((sell, *rest))
        return values, sells, out


_LAYOUTS: weakref.WeakKeyDictionary[Ladder, tuple[np.ndarray, list[_Part]]] = weakref.WeakKeyDictionary()


def _layout(n: int, ladder: Ladder) -> tuple[np.ndarray, list[_Part]]:
    """Each asset's held shares (``V_ref`` units) and its lots in parts (the same at every ``y``):
    built once per ladder (a request's close calls price the same lots at each flip)."""
    kept = _LAYOUTS.get(ladder)
    if kept is None:
        kept = _LAYOUTS[ladder] = _layout_of(n, ladder)
    return kept


def _layout_of(n: int, ladder: Ladder) -> tuple[np.ndarray, list[_Part]]:
    slot = np.arange(len(ladder.owner)) - ladder.first[ladder.owner]
    caps = np.zeros((n, int(ladder.count.max(initial=0)) + 1))
    caps[ladder.owner, slot] = ladder.end - ladder.start
    # A backtest's lots pile up unevenly: each part pads only to its own assets' most lots (see _Part).
    return caps[:, :-1].sum(axis=1), [_Part(ladder, slot, rows) for rows in _by_count(ladder.count)]


def _by_count(count: np.ndarray) -> list[np.ndarray]:
    """The assets in parts of similar lot counts: the fewest padded cells, a part costing as much
    as ~600 cells (its numpy calls)."""
    counts = np.unique(count)
    size = np.concatenate([[0], np.searchsorted(np.sort(count), counts, side="right")])  # assets up to each
    best, cut = np.zeros(len(counts) + 1), [0]  # over the first j counts: the least cost, where its last part starts
    for j in range(1, len(counts) + 1):
        options = best[:j] + 600.0 + (size[j] - size[:j]) * (counts[j - 1] + 1.0)
        cut.append(int(np.argmin(options)))
        best[j] = options[cut[-1]]
    edges, j = [], len(counts)
    while j > 0:
        edges.append((counts[cut[j]], counts[j - 1]))
        j = cut[j]
    return [np.flatnonzero((count >= low) & (count <= high)) for low, high in reversed(edges)]


class _Part:
    """Some assets' lots padded to the most any of them has, the last column past the lots. Each
    asset is its own problem and a padded column is a segment of no shares (its candidates repeat
    a breakpoint's): the values and sells are those of any padding."""

    def __init__(self, ladder: Ladder, slot: np.ndarray, rows: np.ndarray):
        self.rows = rows
        local = np.full(len(ladder.count), -1)
        local[rows] = np.arange(len(rows))
        self.lots = np.flatnonzero(local[ladder.owner] >= 0)
        self.at = local[ladder.owner[self.lots]]
        self.slot = slot[self.lots]
        m, self.width = len(rows), int(ladder.count[rows].max(initial=0)) + 1
        self.caps, self.nets = np.zeros((m, self.width)), np.zeros((m, self.width, 2))
        self.caps[self.at, self.slot] = (ladder.end - ladder.start)[self.lots]
        self.nets[self.at, self.slot] = ladder.nets[self.lots] if ladder.nets is not None else 0.0
        self.row_start = (np.arange(m) * self.width)[:, None]

    def solve(
        self,
        curvature: np.ndarray,
        buy: np.ndarray,
        box: tuple[np.ndarray, ...],
        per_lot: np.ndarray,
        cheapest: np.ndarray,
        past: np.ndarray,
        one_side: bool,
    ) -> tuple[np.ndarray, ...]:
        """These assets' minima and minimising sells, with their lots' nets, starts and caps in price order."""
        m, width = len(self.rows), self.width
        buy_low, buy_high, sell_low, sell_high = box
        price, caps, lot_nets = np.zeros((m, width)), self.caps.copy(), self.nets.copy()
        price[self.at, self.slot] = per_lot[self.lots]
        price[:, -1] = cheapest
        caps[:, -1] = past
        if width > 1:  # past the lots, the nets of the cheapest
            cheapest_lot = np.argmin(np.where(caps[:, :-1] > 0, price[:, :-1], np.inf), axis=1)
            lot_nets[:, -1] = lot_nets[np.arange(m), cheapest_lot]
        order = np.argsort(price, axis=1, kind="stable") + self.row_start  # flat: plain gathers
        price, caps, lot_nets = price.ravel()[order], caps.ravel()[order], lot_nets.reshape(-1, 2)[order]
        both = np.ones(m, dtype=bool)  # the assets whose value is the relaxed one (both sides free)
        values, sells = np.empty(m), np.empty(m)
        if one_side:  # no asset both bought and sold: the better of selling only and buying only
            none = np.zeros(m)
            # The two cases stacked as rows of one call: each row is its own problem.
            every, chosen = _assets(
                np.tile(curvature, 2),
                np.tile(buy, 2),
                (np.concatenate([none, buy_low]), np.concatenate([none, buy_high])),
                (np.concatenate([sell_low, none]), np.concatenate([sell_high, none])),
                np.tile(price, (2, 1)),
                np.tile(caps, (2, 1)),
            )
            (selling, buying), (sold, _) = every.reshape(2, m), chosen.reshape(2, m)
            selling = np.where(buy_low > 0, np.inf, selling)
            buying = np.where(sell_low > 0, np.inf, buying)
            values[:] = np.minimum(selling, buying)
            sells[:] = np.where(selling <= buying, sold, 0.0)
            both = ~np.isfinite(values)  # an asset that must both buy and sell keeps the relaxed value
        if both.all():
            values, sells = _assets(curvature, buy, (buy_low, buy_high), (sell_low, sell_high), price, caps)
        elif both.any():
            low, high = (buy_low[both], buy_high[both]), (sell_low[both], sell_high[both])
            values[both], sells[both] = _assets(curvature[both], buy[both], low, high, price[both], caps[both])
        return values, sells, lot_nets, np.cumsum(caps, axis=1) - caps, caps


def flip_bounds(model: Model, free: NativeQP, assets: np.ndarray) -> np.ndarray | None:
    """For each of ``assets`` (a taxable account's, each fixed to one side), a lower bound of
    ``model``'s optimum with that asset on its other side instead (every other asset as it is):
    the Lagrangian at the multipliers of ``model``'s last solve (its ladder's), the asset's box
    changed to the other side's (from ``free``: the QP with no side fixed). Objective units;
    None when the Lagrangian does not separate."""
    n = model.data.n
    qp = native_qp(model, np.zeros(n, dtype=np.int64))
    if qp is None or qp.ladder is None or qp.dense_w is not None or qp.segments is None or qp.segments.any():
        return None
    settled = qp.ladder.settled
    if settled.qp is None or settled.y is None or _shared_rows(settled.qp) != _shared_rows(qp):
        return None
    shared = _shared_rows(qp)
    dual = _Dual.of(qp, settled.y[:shared].copy())
    if dual is None:
        return None
    lam = np.maximum(settled.y[shared:], 0.0) if qp.ladder.region is not None else np.zeros(0)
    if len(lam) != (0 if qp.ladder.region is None else len(qp.ladder.region)):
        return None
    now = dual.assets(lam)
    boxes = [qp.lower[:n].copy(), qp.upper[:n].copy(), qp.lower[n : 2 * n].copy(), qp.upper[n : 2 * n].copy()]
    selling = qp.upper[:n][assets] <= 0  # no buys: it sells only, and would buy only
    for box, side in ((0, ~selling), (1, ~selling), (2, selling), (3, selling)):
        box_free = (free.lower, free.upper, free.lower, free.upper)[box]
        column = assets + (n if box >= 2 else 0)
        boxes[box][assets] = np.where(side, 0.0, box_free[column])
    flipped = dual.assets(lam, tuple(boxes), assets)  # only the flipped assets' parts change
    total = float(now.sum()) + dual.rest - dual._region_bound(lam)
    return np.asarray((total + flipped - now[assets] + qp.const) / qp.scale)


def _scalars(qp: NativeQP, reduced: np.ndarray, nt: int) -> float:
    """The Lagrangian's minimum over the scalar and auxiliary columns (each alone)."""
    n = qp.n
    d = qp.diagonal
    r = reduced[2 * n :]
    count = len(r)
    low = np.full(count, -np.inf)
    high = np.full(count, np.inf)
    low[: nt - 2 * n], high[: nt - 2 * n] = qp.lower[2 * n : nt], qp.upper[2 * n : nt]
    low, high = np.maximum(low, -_IMPLIED), np.minimum(high, _IMPLIED)
    curved = d > 0
    z = np.where(curved, np.clip(-r / np.where(curved, d, 1.0), low, high), np.where(r > 0, low, high))
    return float(np.sum(0.5 * d * z * z + r * z))


def _assets(
    c: np.ndarray,
    alpha: np.ndarray,
    buys: tuple[np.ndarray, np.ndarray],
    sells: tuple[np.ndarray, np.ndarray],
    price: np.ndarray,
    caps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's ``min (c/2)(b - s)^2 + alpha b + H(s)`` over ``b`` and ``s`` in their
    bounds, ``H`` the sell's convex piecewise-linear price (segments ``caps`` at ``price``, sorted).
    Convex in ``s`` alone: its minimum lies at a breakpoint or where the quadratic part's slope
    meets a segment's price (each branch of ``b`` tried), all of which are evaluated. Also returns
    the minimising sell."""
    (buy_low, buy_high), (sell_low, sell_high) = buys, sells
    buy_high = np.minimum(buy_high, _IMPLIED)
    # Segments down, assets across: a per-asset vector then broadcasts along whole rows (fast).
    price, caps = np.ascontiguousarray(price.T), np.ascontiguousarray(caps.T)
    ends = np.cumsum(caps, axis=0)
    floor = np.sum(price * _clip(sell_low - (ends - caps), 0.0, caps), axis=0)  # H(sell_low)
    points = np.vstack([sell_low, _clip(ends, sell_low, sell_high)])
    value = floor + np.vstack([np.zeros(len(c)), np.cumsum(price * np.diff(points, axis=0), axis=0)])
    curved = c > 0
    inv = np.where(curved, 1.0 / np.where(curved, c, 1.0), 0.0)
    shift, unbounded, half = alpha * inv, np.where(alpha > 0, -np.inf, np.inf), 0.5 * c

    left, right = points[:-1], points[1:]
    tried, prices = [points], [value]
    for edge in (buy_low, buy_high):  # where the quadratic part's slope meets each segment's price
        s = _clip(edge - price * inv, left, right)
        tried.append(s)
        prices.append(value[:-1] + price * (s - left))
    every = np.vstack(tried)
    b = _clip(np.where(curved, every - shift, unbounded), buy_low, buy_high)
    at = half * ((b - every) * (b - every)) + alpha * b + np.vstack(prices)
    best = np.argmin(at, axis=0)
    assets = np.arange(len(c))
    return np.asarray(at[best, assets]), np.asarray(every[best, assets])


def _clip(x: np.ndarray, low: np.ndarray | float, high: np.ndarray) -> np.ndarray:
    """``np.clip``'s answer, without its overhead (the same for numbers that are not NaN)."""
    return np.asarray(np.minimum(np.maximum(x, low), high))
