"""From continuous trades to whole shares (and lots) that keep every hard constraint.

Everything here is read from the model's one description (``_model``): the limit groups' linear
rows and the stacked objective. Each asset gets a few candidate trades (``_candidates``), priced by
the strategy's own objective (``_pricing``) through the Lagrangian (the continuous solve's duals of
the coupled rows), so that the assets do not all lean into the limits that held the optimum back.

1. Each asset's cheapest candidate, when the coupled rows hold there;
2. otherwise the 0/1 program over the candidates and its repair (``_settling``);
3. then the descent on the exact objective (``_descent``), a loop over the move kinds of
   ``_move_kinds``, every step checked against every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from finwiz.optimizer._trace import note
from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import GAIN
from finwiz.optimizer.discrete._candidates import (
    _candidate_set,
    _cheapest,
    _LotMoves,
    _Moves,
    _snap,
    _trade_point,
    asset_spans,
)
from finwiz.optimizer.discrete._descent import DescentSettings, _Point, _Search, descend_from
from finwiz.optimizer.discrete._move_kinds import MOVE_KINDS
from finwiz.optimizer.discrete._pricing import Pieces, _coupled_rows, _Pricer, _row_prices, _Rows, pieces_of
from finwiz.optimizer.discrete._settling import _Program01
from finwiz.optimizer.solve._assembler import Model, user_gradient_at
from finwiz.optimizer.solve._csc import majors

__all__ = ["RoundingOutcome", "gain_price", "polish", "round_trades", "side_margin"]

_DESCENT = DescentSettings()
RETRY_LOSS = 1e3
RETRY_RELATIVE_LOSS = 0.1
"""What a rounding may lose before another start is tried, in whole-share allowances or as a
fraction of the objective: whole shares lost 2-7 allowances (3-4 %) at 431-500
binding assets and 180-340 (3-4 %) at 100, where backing off never helped; at 2000 binding assets,
148 allowances but 97 % (backed off: 6 %); a fine grid (fractional shares) that binding rows push
off its neighbours loses orders of magnitude more allowances, and backing off does help."""


@dataclass(frozen=True)
class RoundingOutcome:
    """Signed share trades per asset, and what the 0/1 program said about them."""

    shares: np.ndarray
    mip_gap: float | None
    seconds: float
    candidates: int
    lossy: bool
    """True when a traded asset had no candidate that kept its own rows (it was left untraded):
    binding limits left no room to round."""
    loss: float
    """The returned trades' objective above the continuous point's, in whole-share allowances (what
    one lot of every asset is worth in objective)."""
    relative_loss: float
    """The same, as a fraction of the objective at the continuous point."""


def _improve(
    pieces: Pieces,
    shares: np.ndarray,
    pricer: _Pricer,
    candidates: np.ndarray | None = None,
    strict: bool = False,
    at: tuple[np.ndarray, np.ndarray] | None = None,
) -> _Point:
    """The descent (``_descent.descend``) over every asset's one-lot moves, to no trade, selling
    out, the minimum size, or back to one of its first ``candidates`` (assets x k), where the
    separable rows allow them; to its point (its value is the pricer's objective there). Priced
    by ``pricer`` (``pieces``' with a gradient), judged by ``pieces``' rows; ``at``: ``shares``'
    ``z`` and coupled rows there, when the caller has them."""
    data = pieces.model.data
    # Kept between the descent's rounds, and without candidates between the model's descents.
    neighbours = pieces.lot_moves if candidates is None else _LotMoves(data, pieces.separable, candidates)
    search = _Search(data, pricer, pieces.rows)
    start = search.at(shares) if at is None else _Point(shares, at[0], pricer.objective(at[0], shares), at[1])
    return descend_from(search, start, neighbours, MOVE_KINDS, _DESCENT, strict)


def gain_price(model: Model, duals: np.ndarray | None) -> float:
    """What the coupled rows' multipliers charge per unit of net realised gain (``G``, a fraction
    of ``V_ref``): a binding gain budget's price, 0 when it is slack or there are no multipliers."""
    v = _row_prices(_coupled_rows(model), duals)
    return 0.0 if v is None else max(float(v[2 * model.data.n - 1 - GAIN]), 0.0)


def round_trades(
    model: Model,
    buy: np.ndarray,
    sell: np.ndarray,
    *,
    gradient: np.ndarray | None = None,
    duals: np.ndarray | None = None,
    time_limit: float = 10.0,
    pieces: Pieces | None = None,
) -> RoundingOutcome:
    """Whole-share (or lot) trades near the continuous optimum ``(buy, sell)`` (fractions of
    V_ref) that keep every limit of ``model`` and minimise its objective; ``gradient`` adds user
    terms' linearised objectives (over ``z``). ``duals`` are the continuous solve's multipliers of
    the coupled rows: candidates are first priced by the Lagrangian, so that each asset's cheapest
    does not lean, with every other asset, into the limits that held the optimum back; ``pieces``
    are the model's when the caller has them. Where the settle leaves a row that would block the
    descent, it is backed off locally (``_room``; see ``_Settle.rounded``). Raises
    :class:`InfeasibleRebalanceError` if no such trades exist among the candidates."""
    start = time.perf_counter()
    data = model.data
    pieces = pieces_of(model, pieces)
    table, valid, stuck, moves, _ = _candidate_set(model, buy - sell, pieces.separable)
    pricer = pieces.pricer.with_gradient(gradient)
    target = (buy - sell) * data.ref_value / data.prices
    at = _trade_point(data, target)
    price = pricer.changes(at, target, moves)
    v = _row_prices(pieces.rows, duals)
    if v is not None:
        # At the optimum g + A'y = 0: the objective's gradient along a binding row is the row's
        # price. Priced with the Lagrangian, moving along it is neutral, not a gain.
        price = price + pricer.linear_change(v, at, moves)
    price = _snap(price)
    cheapest = _cheapest(table, valid, price)
    first = np.zeros(data.n)
    first[moves.owner[cheapest]] = moves.shares[cheapest]
    base = pricer.objective(at, target)
    settle = _Settle(data, pieces, pricer, moves, price / pricer.unit, cheapest, table, target, at, time_limit)
    rounded = settle.rounded(first, stuck, base)
    seconds = time.perf_counter() - start
    return RoundingOutcome(
        rounded.shares, rounded.gap, seconds, len(moves.owner), rounded.lossy, rounded.loss, rounded.relative_loss
    )


def lost_much(loss: float, relative_loss: float) -> bool:
    """Whether a rounding lost more than ``RETRY_LOSS`` allowances or ``RETRY_RELATIVE_LOSS`` of the
    objective: settled with room, the plain settle is then descended too; lossy, the stage's
    back-off re-solve runs."""
    return loss > RETRY_LOSS or relative_loss > RETRY_RELATIVE_LOSS


@dataclass(frozen=True)
class _Rounded:
    """One settle and descent: the settled trades, the final ones, their loss and the program's gap."""

    settled: np.ndarray
    shares: np.ndarray
    value: float
    gap: float | None
    lossy: bool
    loss: float
    relative_loss: float


@dataclass(frozen=True)
class _Settle:
    """What one rounding settles and descends with: the candidates, their prices and the pieces."""

    data: ProblemData
    pieces: Pieces
    pricer: _Pricer
    moves: _Moves
    price: np.ndarray  # in whole-share allowances: raw changes are ~1e-9-1e-6, within HiGHS's
    # optimality tolerances (1e-7), where it called a choice 6x worse than the best one optimal
    cheapest: np.ndarray
    table: np.ndarray
    target: np.ndarray
    target_z: np.ndarray  # ``z`` at ``target``
    time_limit: float

    def rounded(self, cheap: np.ndarray, stuck: bool, base: float) -> _Rounded:
        """The cheapest choice ``cheap``, settled where it breaks a coupled row, then descended; where
        the settle leaves a row that would block the descent (``_room``), settled again with room
        inside it first, and the plain settle descended only if that lost much."""
        rows = self.pieces.rows
        at = _trade_point(self.data, cheap)
        values = rows.values(at)
        if rows.holds(values):
            # From each asset's cheapest candidate the descent has nothing to bring back.
            return self.descended((cheap, 0.0), stuck, base, candidates=False, at=(at, values))
        settled = self.program.settle()
        # The coupled rows moved an asset off both its cheapest candidate and the neighbours of
        # its continuous trade (a trade dropped or cut short): binding limits left no room to round.
        lots = self.target / self.data.lot
        first = settled[0]
        neighbour = (np.abs(first / self.data.lot - lots) < 1.0 + 1e-9) & (np.sign(first) == np.sign(self.target))
        lossy = stuck or bool(np.any((first != cheap) & ~neighbour))
        at = _trade_point(self.data, first)
        values = rows.values(at)
        room = _room(self.data, rows, self.target, self.target_z, at, values)
        inside = self.inside(room) if room.any() else None
        if inside is None:
            return self.descended(settled, lossy, base, at=(at, values))
        note("back-off: the rows that would block the rounding backed off by a lot, settled again")
        backed = self.descended(inside, lossy, base)
        if not lost_much(backed.loss, backed.relative_loss):
            return backed
        plain = self.descended(settled, lossy, base, at=(at, values))
        return backed if backed.value < plain.value else plain

    @cached_property
    def program(self) -> _Program01:
        """The candidates' 0/1 program, built once for the plain settle and the one with room."""
        return _Program01(self.data, self.moves, self.price, self.cheapest, self.pieces.rows, self.time_limit)

    def inside(self, room: np.ndarray) -> tuple[np.ndarray, float | None] | None:
        """The settle leaving ``room`` inside the rows (None when no choice does)."""
        return self.program.inside(room)

    def descended(
        self,
        settled: tuple[np.ndarray, float | None],
        lossy: bool,
        base: float,
        candidates: bool = True,
        at: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> _Rounded:
        """The descent from ``settled`` (after a settle it may bring a candidate back: a trade the
        0/1 program dropped), and what it lost against the continuous point's ``base`` (``at``:
        the settled trades' ``z`` and coupled rows, when known)."""
        pieces, pricer = self.pieces, self.pricer
        table = self.table if candidates else None
        final = _improve(pieces, settled[0], pricer, candidates=table, at=at)
        value = final.value  # the pricer's objective at its trades, as the descent priced them
        lost = value - base
        relative = lost / max(abs(base), 1e-300)
        return _Rounded(settled[0], final.shares, value, settled[1], lossy, lost / pricer.unit, relative)


def _room(
    data: ProblemData, rows: _Rows, target: np.ndarray, target_z: np.ndarray, at: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """The room a settle should leave inside each coupled row of one asset that every other trade
    moves through the scalar columns (a position cap on the value after trading: the costs), where
    the way from the settled trades (``z`` ``at``, the rows ``values`` there) back to the continuous
    trades ``target``'s scalar columns (``z`` ``target_z``) would cross
    its bound: one largest traded lot's move of those columns, or that way if longer (0 elsewhere).
    Settled at such a bound, the row blocks every move of the descent that adds cost: at 2000
    binding assets the rounding then left $48k of a deposit uninvested, 84 % above the answer a
    back-off re-solve found. (Room in every such row near its bound cost 19 % at 100 binding
    assets, where the way back stayed 50x inside the row.)"""
    n, m = data.n, len(rows.offset)
    by_row = rows.by_row
    low, high = asset_spans(majors(by_row.indptr), by_row.indices % n, m, n)
    lot_value = data.lot * data.prices / data.ref_value
    largest = float(np.max(lot_value[np.abs(target) * data.prices >= NOISE_VALUE], initial=0.0))
    way = rows.a_scalar @ (target_z[2 * n :] - at[2 * n :])
    crosses = (values + way > rows.upper) | (values + way < rows.lower)
    return np.where((low == high) & crosses, np.maximum(np.abs(rows.a_scalar).sum(axis=1) * largest, np.abs(way)), 0.0)


def polish(
    model: Model, shares: np.ndarray, gradient: np.ndarray | None = None, pieces: Pieces | None = None
) -> np.ndarray:
    """``shares`` after the descent on the exact objective (see :func:`_improve`): for an answer
    from elsewhere (exact mode's MIP solver, which stops within its tolerances), so that no single
    one-lot move improves it either."""
    if gradient is None and model.user_terms:
        # A user's objective keeps its effect here too (priced by its gradient at these trades):
        # without it, the descent after the second opinion moved a linear tilt's trades back
        # towards the untilted optimum.
        z = _trade_point(model.data, shares)
        n = model.data.n
        gradient = user_gradient_at(model, z[:n], z[n : 2 * n], float(z[2 * n]))
    pieces = pieces_of(model, pieces)
    pricer = pieces.pricer.with_gradient(gradient)
    return _improve(pieces, shares, pricer, strict=True).shares


def side_margin(model: Model, buy: np.ndarray, sell: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """For each of ``assets`` (a mask: assets the relaxation both buys and sells, V_ref units), how
    much cheaper selling only is than buying only (negative: sell only; 0 elsewhere). Around the
    relaxation's optimum each asset's own objective is ``H/2 (u - u*)^2`` in its net trade ``u``
    (``H`` its own curvature; the cash it frees or takes is spread over the others at no
    first-order cost, as at any optimum) plus the tax of what it sells: buying only costs
    ``H/2 min(u*, 0)^2``, selling only the least of that square plus the tax over its lots (at each
    lot's stationary point and ends)."""
    data = model.data
    out = np.zeros(data.n)
    lots = data.lots
    if lots is None:
        return out
    squares = model.stacked(continuous=False).squares
    on_buy = squares.cols.astype(np.int64)
    on_buy = np.where((on_buy >= 0) & (on_buy < data.n), on_buy, data.n)  # the buy columns' entries
    col_norm = np.bincount(on_buy, weights=squares.vals**2, minlength=data.n + 1)[: data.n]
    u = buy - sell
    unit = data.ref_value / data.prices  # shares per V_ref unit
    # Every asset at once (one relief call): each row's trial points are its lots' boundaries and
    # stationary points; a padding slot's stationary point repeats the row's first boundary.
    idx = np.flatnonzero(assets)
    curve = 2.0 * col_norm[idx]
    shares = lots.shares[idx]
    has = shares > 0
    ends = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(np.where(has, shares, 0.0), axis=1)], axis=1)
    ends = ends / unit[idx, None]
    slopes = lots.tax_weight * (lots.gain[idx] * lots.rate[idx]) / data.prices[idx, None]
    curved = curve > 0
    inside = -u[idx, None] - slopes / np.where(curved, curve, 1.0)[:, None]
    inside = np.where(has & curved[:, None], inside, 0.0)
    trial = np.clip(np.concatenate([ends, inside], axis=1), 0.0, ends[:, -1:])
    tax, _ = lots.tax_and_gain((trial * unit[idx, None]).ravel(), np.repeat(idx, trial.shape[1]))
    tax = lots.tax_weight * tax.reshape(trial.shape) / data.ref_value
    selling = np.min(0.5 * curve[:, None] * (trial + u[idx, None]) ** 2 + tax, axis=1)
    out[idx] = selling - 0.5 * curve * np.minimum(u[idx], 0.0) ** 2
    return out
