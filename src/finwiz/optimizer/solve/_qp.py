"""The native QP: the terms' descriptions (``_model``) stacked into sparse matrices
(``_qp_build``), solved by OSQP or Clarabel directly (``_solvers``, workspaces kept per structure
in ``_workspaces``); and a taxable account's lots as each asset's segments (:class:`Ladder`).

A compiled cvxpy problem's parameter passing and unpacking cost more than the solve itself
(docs/decisions/continuous-and-verify.md); a request whose terms all have a QP description is therefore
solved here, without cvxpy. A user's cvxpy term, market
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

The QP and the ladder live together: a QP built for a taxable account carries its ladder, and
the ladder's climb (:meth:`Ladder.step`) reads the QP's curvature and folded tax prices.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._model import SCALARS, TaxForm

__all__ = ["Ladder", "NativeQP", "NoLadderPointError", "ladder_of"]


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
    tax_terms: _TaxTerms | None = None  # how T and G were folded into the sells (see ``_qp_segments.fold``)
    eigen: tuple[np.ndarray, np.ndarray] | None = None  # (values, vectors) of dense_w, kept per covariance
    a_t: tuple[sparse.csc_matrix, sparse.csr_matrix] | None = None  # (A, A') kept by the QPs that share A
    spans: Spans | None = None  # ``row_spans(groups, rows)``, kept by the QPs that share their groups

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

    def a_t_times(self, y: np.ndarray) -> np.ndarray:
        """``A' y``."""
        kept = self.a_t
        return np.asarray((kept[1] if kept is not None and kept[0] is self.A else self.A.T) @ y)

    def residuals(self, z: np.ndarray, az: np.ndarray | None = None) -> dict[str, float]:
        """Largest violation of each row group at ``z`` (0 when satisfied); ``az`` is ``A z`` if
        the caller has it already."""
        az = self.A @ z if az is None else az
        gap = np.maximum(self.lower - az, az - self.upper)
        bounds, segments = self.spans if self.spans is not None else row_spans(self.groups, len(self.lower))
        peaks = np.maximum(np.maximum.reduceat(gap, bounds), 0.0).tolist() if len(bounds) else []
        out: dict[str, float] = {}
        for name, k in segments:
            out[name] = max(out.get(name, 0.0), 0.0 if k < 0 else peaks[k])
        return out

    def objective(self, z: np.ndarray, pz: np.ndarray | None = None) -> float:
        """The objective (unscaled, constant included) at ``z``; ``pz`` is ``P z`` if known."""
        pz = self.hess(z) if pz is None else pz
        return float((0.5 * z @ pz + self.q @ z + self.const) / self.scale)

    def point(self, buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray:
        """The full variable vector for given trades (turnover, net and aux variables filled in)."""
        # T and G are 0 in the native QP: a taxable account's are folded into the sells (``_qp_segments.fold``).
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


Spans = tuple[np.ndarray, tuple[tuple[str, int], ...]]


def row_spans(groups: list[tuple[str, int, int]], rows: int) -> Spans:
    """The boundaries of ``rows`` rows for one ``np.maximum.reduceat`` over every row group (each
    group's first and end row: groups do not overlap, so a group's segment ends where it does),
    and each group's segment in it (-1: an empty group). A few groups: Python sets, not numpy."""
    bounds = sorted({r for _, a, b in groups if a < b for r in (a, b) if r < rows})
    segment = {r: k for k, r in enumerate(bounds)}
    return np.array(bounds, dtype=np.intp), tuple((name, segment[a] if a < b else -1) for name, a, b in groups)


_serials = itertools.count()


class NoLadderPointError(Exception):
    """Internal signal: no climb over a netting region's lots, in their order, found a point (the
    region's rows are not convex along that order); another order may."""


@dataclass(eq=False)
class Settled:
    """Each asset's segment where a ladder's last climb settled (None: no climb yet), and the QP and
    multipliers of its last step (what a netting region's Lagrangian bound prices others with)."""

    segments: np.ndarray | None = None
    qp: NativeQP | None = None
    y: np.ndarray | None = None
    no_point: object | None = None
    """The ``Model.kept`` of the model no climb found a point for: its per-lot solve need not climb again."""
    start: tuple[np.ndarray, np.ndarray, float, np.ndarray | None] | None = None
    """The next solve's warm start, once: trades (buy, sell, cost) and row multipliers (None:
    zeros) near its answer, where the workspace has none (the first solve) or its last point is far
    from it (sides just fixed)."""


@dataclass(frozen=True, eq=False)
class Ladder:
    """A tax form (``_model.TaxForm``) as each asset's segments: its lots in relief order, one after
    the other along its sell. Within one segment the asset's tax and gain are linear in its sell
    (the lot's slopes), so a QP built on one segment per asset has the blind problem's shape --
    two rows define ``T`` and ``G``, each asset's sell starts at its segment's lot -- instead of one
    variable per lot (431 assets x 10 lots: Clarabel took 42 ms a solve against 12, and OSQP's
    polish did not hold on the lots' linear program). :meth:`step` moves each asset to the segment
    its multipliers ask for; where none moves, the point is the optimum over every lot.

    A netting region's rows (``TaxForm.rows``) on the year's short- and long-term nets ride the
    same segments: each net is linear in the sells there too (:meth:`region_rows`), and the rows'
    multipliers price each lot's gain in :meth:`step`. They need not be convex along an asset's
    lots, so a climb may find no point where one exists (then the caller reorders the lots toward
    the rows, or :meth:`unreachable` proves there is none)."""

    owner: np.ndarray  # (L,) each lot's asset, lots grouped by asset in relief order
    first: np.ndarray  # (n,) each asset's first lot in the form
    count: np.ndarray  # (n,) how many lots it has
    start: np.ndarray  # (L,) the sell (V_ref units) at which each lot begins
    end: np.ndarray
    tax_before: np.ndarray  # (L,) tax of the asset's lots before it
    gain_before: np.ndarray
    tax: np.ndarray  # (L,) slopes
    gain: np.ndarray
    nets: np.ndarray | None = None  # (L, 2) netting: each lot's slopes on the short- and long-term nets
    nets_before: np.ndarray | None = None  # (L, 2) the asset's lots before it, on each net
    region: np.ndarray | None = None  # (k, 3) netting: the region's rows on the nets (``TaxForm.rows``)
    serial: int = field(default_factory=lambda: next(_serials))
    """Which request's ladder this is: the solves of one request (its relaxation, sides, lot
    orders) share an OSQP workspace, warm from each other, and keep it from other requests', so a
    request's trades do not depend on what the process solved before (guarantee 6)."""
    settled: Settled = field(default_factory=Settled)
    """Where its last climb settled: the next solve of the request starts there."""

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
        nets = nets_before = None
        if form.rows is not None and form.long is not None:  # a netting region's rows on the two nets
            nets = np.column_stack([form.gain * ~form.long, form.gain * form.long])
            nets_before = np.column_stack([before(nets[:, 0] * form.cap), before(nets[:, 1] * form.cap)])
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
            nets=nets,
            nets_before=nets_before,
            region=form.rows,
            serial=form.views.get("request", next(_serials)),
        )

    def lots(self, segments: np.ndarray) -> np.ndarray:
        """The form's lot index of each asset's segment (-1: the asset has no lots)."""
        return np.where(self.count > 0, self.first + np.minimum(segments, np.maximum(self.count - 1, 0)), -1)

    def rows(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
        """On ``segments``: each asset's sell bounds, its tax and gain slopes, and the constants of
        ``T = sum a_i sell_i + t0`` and ``G = sum b_i sell_i + g0``."""
        at = self._at(segments)
        low, high, a, b = at(self.start), at(self.end), at(self.tax), at(self.gain)
        t0 = float(np.sum(at(self.tax_before) - a * low))
        g0 = float(np.sum(at(self.gain_before) - b * low))
        return low, high, a, b, t0, g0

    def region_rows(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Netting: the region's rows on ``segments`` as ``coef @ sell <= bound`` (``coef`` k x n):
        each net is ``sum_i slope_i sell_i + constant`` there, as ``T`` and ``G`` are."""
        assert self.region is not None
        assert self.nets is not None
        assert self.nets_before is not None
        at = self._at(segments)
        slopes = at(self.nets)  # (n, 2)
        constant = (at(self.nets_before) - slopes * at(self.start)[:, None]).sum(axis=0)
        return self.region[:, :2] @ slopes.T, self.region[:, 2] - self.region[:, :2] @ constant

    def _at(self, segments: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Per-lot values (``(L,)`` or ``(L, 2)``) at each asset's segment (0: no lots)."""
        lot = self.lots(segments)
        has = lot >= 0
        pick = np.where(has, lot, 0)

        def at(values: np.ndarray) -> np.ndarray:
            if not len(values):
                return np.zeros((len(lot), *values.shape[1:]))
            return np.where(has.reshape(-1, *([1] * (values.ndim - 1))), values[pick], 0.0)

        return at

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
        if not beyond.any():  # most steps: every segment reachable, no pass over every lot
            return segments.astype(np.int64)
        last = np.maximum(self._per_asset(self.start <= limit[self.owner]) - 1, 0)
        return np.asarray(np.where(beyond, last, segments))

    def unreachable(self, sell_cap: np.ndarray, slack: float) -> bool:
        """Netting: whether some region row exceeds its bound (by more than ``slack``) at every
        sale of the lots within each asset's ``sell_cap`` (V_ref units), in any order: each row's
        least value is each asset's lots of most negative slope on it, taken up to the cap (a
        fractional knapsack per asset), a relaxation of every other limit too; so a valid proof
        that the region has no point, no solve needed."""
        if self.region is None or self.nets is None or not len(self.owner):
            return False
        size = self.end - self.start
        for k in range(len(self.region)):
            slope = self.nets @ self.region[k, :2]
            order = np.lexsort((slope, self.owner))  # each asset's lots, most negative first
            useful = np.where(slope[order] < 0, size[order], 0.0)
            before = np.cumsum(useful) - useful
            before -= (np.cumsum(useful) - useful)[self.first[self.owner[order]]]
            take = np.clip(sell_cap[self.owner[order]] - before, 0.0, useful)
            if float(slope[order] @ take) > self.region[k, 2] + slack:
                return True
        return False

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
        self.settled.qp, self.settled.y = qp, y
        price_t, price_g = qp.tax_terms.prices(y)  # per unit of T and of G
        price_nets = qp.tax_terms.net_prices(y)  # netting: per unit of each net (the region's rows)
        lot = self.lots(segments)
        out = segments.copy()
        sell = z[n : 2 * n]
        bound = y[n : 2 * n]  # the sell columns' bound rows: < 0 held at the lower bound
        has = lot >= 0
        at = np.where(has, lot, 0)
        past = has & (sell > self.end[at] * (1 + 1e-9) + 1e-15) if len(self.end) else has
        held = has & (bound < -tolerance) & (lot > self.first)
        if self.nets is None:  # only the held assets whose first step down gains (the loop's test, vectorised)
            only = held & ~past
            held[only] = self._gains_down(at[only], -bound[only], price_t, price_g, tolerance)

        def slope(k: int) -> float:
            on_nets = 0.0 if self.nets is None else float(self.nets[k] @ price_nets)
            return float(self.tax[k] * price_t + self.gain[k] * price_g) + on_nets

        for i in np.flatnonzero(past | held):  # the others stay
            j, first, last = int(lot[i]), int(self.first[i]), int(self.first[i] + self.count[i] - 1)
            curve, turned = float(qp.curvature[i]), history[i] == 2
            if sell[i] > self.end[j] * (1 + 1e-9) + 1e-15:  # past the lot: up, to where it would stop
                k, direction = self._up(j, last, float(sell[i]), curve, turned, slope), 1
            elif bound[i] < -tolerance and j > first:  # held at the lot's start: down while it gains
                # the objective's slope along sell_i, the bound aside
                k, direction = self._down(j, first, -float(bound[i]), curve, turned, slope, tolerance), -1
            else:
                continue
            if k != j:
                history[i] = direction if history[i] in (0, direction) else 2
                out[i] = k - first
        return out

    def _gains_down(
        self, lot: np.ndarray, reduced: np.ndarray, price_t: float, price_g: float, tolerance: float
    ) -> np.ndarray:
        """Whether selling less than ``lot``'s start, down into the lot before, still gains: the first
        test of :meth:`_down`, each slope the same sums as ``step``'s ``slope`` (a linear ladder)."""
        here = self.tax[lot] * price_t + self.gain[lot] * price_g
        below = self.tax[lot - 1] * price_t + self.gain[lot - 1] * price_g
        return np.asarray(reduced - (here - below) > tolerance)

    def _up(self, j: int, last: int, sell: float, curve: float, turned: bool, slope: Callable[[int], float]) -> int:
        """The lot above ``j`` where a Newton step from ``sell`` stops (the next one once turned)."""
        k = j + 1
        while not turned and k < last and curve > 0:
            if sell - (slope(k) - slope(j)) / curve <= self.end[k]:
                break
            k += 1
        return k

    def _down(
        self,
        j: int,
        first: int,
        reduced: float,
        curve: float,
        turned: bool,
        slope: Callable[[int], float],
        tolerance: float,
    ) -> int:
        """The lot below ``j`` down to which selling less still gains (one lot once turned)."""
        k = j
        while k > first and reduced - (slope(j) - slope(k - 1)) > tolerance:
            k -= 1
            if turned or curve <= 0:
                break
            if self.start[j] - (reduced - (slope(j) - slope(k))) / curve >= self.start[k]:
                break
        return k


@dataclass(frozen=True)
class _TaxTerms:
    """What ``T`` and ``G`` stood for in a QP that folded them into the sells: the objective's
    price of each (scaled) and the rows that held them (row, coefficient) -- their multipliers
    add to those prices."""

    price: np.ndarray  # (2,): the objective's coefficients of T and G
    rows: tuple[np.ndarray, np.ndarray]  # the rows that had T, and their coefficients
    gain_rows: tuple[np.ndarray, np.ndarray]
    region_rows: np.ndarray | None = None  # netting: the region's rows, ``region`` (k x 2) on the nets
    region: np.ndarray | None = None

    def prices(self, y: np.ndarray) -> tuple[float, float]:
        """The price of a unit of ``T`` and of ``G`` at multipliers ``y`` (OSQP's convention)."""
        (t_rows, t_coef), (g_rows, g_coef) = self.rows, self.gain_rows
        return float(self.price[0] + t_coef @ y[t_rows]), float(self.price[1] + g_coef @ y[g_rows])

    def net_prices(self, y: np.ndarray) -> np.ndarray:
        """What a netting region's rows charge per unit of the short- and long-term nets at
        multipliers ``y`` (zeros outside netting)."""
        if self.region_rows is None or self.region is None:
            return np.zeros(2)
        return np.asarray(self.region.T @ y[self.region_rows])


def ladder_of(form: TaxForm, n: int) -> Ladder:
    """The ladder of ``form``, kept with the form (the solves of one rebalance share it)."""
    ladder = form.views.get("ladder")
    if ladder is None:
        ladder = form.views.setdefault("ladder", Ladder.of(form, n))
    assert isinstance(ladder, Ladder)
    return ladder
