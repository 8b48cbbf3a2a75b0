"""Why each trade: the forces behind it, from the model the trades are the answer of.

For a traded asset ``i`` the *undo* of its trade is the step from the answer ``z`` to the same
answer without that trade (its buy or sell, and its share of the cost, turnover, net purchase, tax
and gain, set to what they would be untraded). Each objective term's force is how much the term
would rise under the undo, ``f_t(z + d_i) - f_t(z)`` (exact; for a quadratic term the gradient at
the trade's midpoint times the trade): positive means the term asks for the trade. A limit's force
is its multiplier times how far the undo would push its row out (the row is *binding* for the
trade: without the trade the limit would be breached); the multipliers are re-priced at the answer
(an active-set estimate: non-negative least squares of the objective's first-order pull on the
limits' moves), and where they fall short of the net pull the undo would have, the limits the
trade is held by take the rest. Plain facts (minimum trade, a restriction) follow the forces.

The tracking term's drift is split when there is a cash flow: the part of an asset's gap to its
target that the flow made (a deposit dilutes every weight, a withdrawal concentrates them) and
the cash row's pull are the deposit's (withdrawal's); the rest is the drift.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import nnls

from finwiz.optimizer.describe._model import _SPARSE_ROWS, SCALARS, Affine, Description, LimitGroup, column
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._stacked import squared_rows
from finwiz.optimizer.verify._compliance import PostTradeState
from finwiz.schemas import TradeReason

__all__ = ["trade_reasons"]

_TOL = 1e-10  # row units: an undo must push a row past its bound by more than this to bind
_ASKS = 1e-15  # objective units: a force above this asks for the trade
_MAX_ROWS = 400  # binding rows priced by least squares at most (beyond: the net pull alone)
_OTHER_SIDE = {  # restrictions that explain a trade's side (the other side is forbidden)
    "sell": ("no_buy", "esg_screen", "wash_sale", "sell_only"),
    "buy": ("no_sell", "buy_only"),
}
_TERM_LABELS = {
    "tracking_error": "tracking error to target",
    "risk": "lowers risk",
    "proposal": "the strategy's proposal",
    "trade_count": "trade count",
    "turnover_penalty": "turnover penalty",
}


def _percent(weight: float) -> str:
    return f"{100 * weight:+.2f} %"


class _Undo:
    """The undo of every traded asset's trade as columns over ``z`` (see the module docstring)."""

    def __init__(self, model: Model, state: PostTradeState) -> None:
        data = self.data = model.data
        n = data.n
        self.idx = idx = np.flatnonzero(state.trade_shares != 0)
        self.z = state.trade_vector(data)
        u = state.trade_values / data.ref_value
        self.u = u[idx]
        cost = (state.transaction_costs + state.impact_costs)[idx] / data.ref_value
        sold = np.maximum(-state.trade_shares, 0.0)
        if data.lots is not None:
            _, tax, gain = data.lots.relief(sold)
            tax, gain = tax[idx] / data.ref_value, gain[idx] / data.ref_value
        else:
            tax = gain = np.zeros(len(idx))
        self.gain = gain * data.ref_value  # currency, per traded asset
        k = len(idx)
        # Undo j moves z at its buy or sell column (by -|u_j|) and at the scalar columns.
        self.trade_of = np.full(2 * n + SCALARS, -1)
        self.trade_of[np.where(self.u > 0, idx, idx + n)] = np.arange(k)
        self.side = -np.abs(self.u)
        self.scalars = np.array([-cost, -np.abs(self.u), -self.u, -tax, -gain])  # c, tau, nu, T, G
        # As the desk sees each asset: its drift before the cash flow, the part of its gap the flow
        # made (see the module docstring), the cash's gap to its target.
        before_flow = data.x0[idx] * data.ref_value / data.value if data.value > 0 else data.x0[idx]
        self.drift = before_flow - data.target[idx]
        gap = data.target[idx] - data.x0[idx]
        made = np.divide(before_flow - data.x0[idx], gap, out=np.zeros(k), where=gap != 0)
        self.flow_share = np.clip(made, 0.0, 1.0)
        self.cash_gap = data.cash0 - data.cash_target
        # The same as Python numbers, for the labels (numpy scalars format slowly).
        self.drifts, self.flow_shares = self.drift.tolist(), self.flow_share.tolist()
        self.buys = (self.u > 0).tolist()
        flow = data.cash_flow
        self.flow_label = f"{'deposit' if flow > 0 else 'withdrawal'} {abs(flow):,.0f}"

    def moved(self, rows: Affine | _Rows) -> np.ndarray:
        """How far each undo moves each of ``rows`` (rows x trades, dense): the side column's
        term first, then the scalar columns' in order (as a sparse product would sum them)."""
        n, k = self.data.n, len(self.idx)
        cols = rows.places(n)
        trade = self.trade_of[cols]
        on_side = trade >= 0
        # bincount sums in input order as np.add.at does, several times faster
        flat = rows.rows[on_side] * k + trade[on_side]
        out = np.bincount(flat, weights=rows.vals[on_side], minlength=rows.m * k).reshape(rows.m, k) * self.side
        on_scalar = cols >= 2 * n
        if on_scalar.any():
            flat = rows.rows[on_scalar] * SCALARS + cols[on_scalar] - 2 * n
            by_scalar = np.bincount(flat, weights=rows.vals[on_scalar], minlength=rows.m * SCALARS)
            by_scalar = by_scalar.reshape(rows.m, SCALARS)
            for code in np.flatnonzero(by_scalar.any(axis=0)).tolist():  # an all-zero column adds zeros
                out += by_scalar[:, code, None] * self.scalars[code]
        return out

    def reach(self, rows: Affine | _Rows) -> np.ndarray:
        """A bound on how far any one undo moves each of ``rows`` (plus ``_TOL``): each entry's
        coefficient times the largest step of its column over the undos (0 on an untraded asset's
        column), with room for rounding. A row farther than this from both bounds binds no trade."""
        n = self.data.n
        cols = rows.places(n)
        step = np.zeros(2 * n + SCALARS)
        on_side = self.trade_of >= 0
        step[on_side] = np.abs(self.side[self.trade_of[on_side]])
        step[2 * n :] = np.abs(self.scalars).max(axis=1, initial=0.0)
        return np.bincount(rows.rows, weights=np.abs(rows.vals) * step[cols], minlength=rows.m) * (1 + 1e-9) + _TOL

    def change(self, piece: Description) -> tuple[np.ndarray, np.ndarray]:
        """``(exact, first-order)`` change of ``piece``'s objective under each undo; a dense
        covariance's root by matrix products, not through its n^2 triplets. Its rows and linear
        part are those ``solve._stacked.stack`` makes of it alone (the count is priced apart)."""
        n, z = self.data.n, self.z
        squares = [a for a in squared_rows(piece, self.data.x0) if a.dense is None]  # dense roots below
        line: np.ndarray | None = None
        if piece.linear is not None:  # bincount sums in input order, as np.add.at into zeros
            line = np.bincount(column(piece.linear.cols, n), piece.linear.vals, minlength=2 * n + SCALARS).astype(
                float, copy=False
            )
        elif piece.cost_weight:
            line = np.zeros(2 * n + SCALARS)
        if line is not None:
            line[2 * n] += piece.cost_weight
        exact, first = self._change(squares, line)
        signed = self.side * np.sign(self.u)  # buy columns carry +M, sell columns -M
        for a in piece.low_rank:
            matrix = a.dense
            if matrix is None:
                continue
            moved = matrix[:, self.idx] * signed
            pull = 2 * (matrix @ (z[:n] - z[n : 2 * n]) + a.offset) @ moved
            first, exact = first + pull, exact + pull + np.einsum("ij,ij->j", moved, moved)
        return exact, first

    def _change(self, squares: list[Affine], line: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The change of ``||squares(z)||^2 + line'z`` under each undo (``line`` None: no linear
        part; its slope would be -0.0 at every trade, which adds nothing)."""
        linear = None if line is None else self._slope(line)
        # one Affine is its own stack (the same triplets), unless it holds dense blocks of its own
        rows = squares[0] if len(squares) == 1 and not squares[0].dense_rows else Affine.stack(squares)
        if not rows.m:  # a linear piece: its change is its slope (0.0 + x: -0.0 becomes 0.0)
            first = 0.0 + (np.zeros(len(self.idx)) if linear is None else linear)
            return first + 0.0, first
        one = self._one_row_each(rows)
        if one is not None:  # the dense product's one nonzero term per trade, the same figures
            row, move = one
            first = 2 * (rows.evaluate(self.z)[row] * move)
            first = first if linear is None else first + linear
            return first + move**2, first
        moved = self.moved(rows)
        first = 2 * rows.evaluate(self.z) @ moved
        first = first if linear is None else first + linear
        return first + np.sum(moved**2, axis=0), first

    def _slope(self, line: np.ndarray) -> np.ndarray:
        """Each undo's change of ``line'z`` (a linear objective over ``z``)."""
        n = self.data.n
        linear = np.zeros(len(self.idx))
        linear[self.trade_of[self.trade_of >= 0]] = line[np.flatnonzero(self.trade_of >= 0)]
        linear *= self.side
        for code in np.flatnonzero(line[2 * n :]).tolist():  # a zero coefficient adds zeros
            linear += line[2 * n + code] * self.scalars[code]
        return linear

    def _one_row_each(self, rows: Affine) -> tuple[np.ndarray, np.ndarray] | None:
        """Where each undo moves one of ``rows`` by one entry (a diagonal block: a tracking
        term's rows, no scalar column): per trade, that row and the move (0 and 0 if none);
        None otherwise (sums of several terms are left to :meth:`moved`'s order)."""
        n, k = self.data.n, len(self.idx)
        cols = rows.places(n)
        if (cols >= 2 * n).any():
            return None
        trade = self.trade_of[cols]
        on_side = np.flatnonzero(trade >= 0)
        mine = trade[on_side]
        if len(mine) and np.bincount(mine).max() > 1:  # an undo moving two rows
            return None
        row, move = np.zeros(k, dtype=np.int64), np.zeros(k)
        row[mine] = rows.rows[on_side]
        move[mine] = rows.vals[on_side] * self.side[mine]
        return row, move


def _pieces(model: Model) -> Iterator[tuple[str, str, Description, float]]:
    """Each described term's objective split in what a desk tells apart: its weight rows, its cash
    (scalar) rows, its linear part, and its trade count price."""
    for term, d in zip(model.terms, model.descriptions, strict=True):
        if d is None:
            continue
        if d.weight_squares or d.low_rank:
            yield term.name, "weights", Description(weight_squares=d.weight_squares, low_rank=d.low_rank), 0.0
        if d.scalar_squares:
            yield term.name, "cash", Description(scalar_squares=d.scalar_squares), 0.0
        if d.linear is not None or d.cost_weight:
            yield term.name, "linear", Description(linear=d.linear, cost_weight=d.cost_weight), 0.0
        if d.count:
            yield term.name, "count", Description(), d.count


class _Forces:
    """Per traded asset (column): label -> the values of a reason that asks for the trade (kind,
    label, amount, unit, score), the scores of one label summed; and each trade's net force (what
    asks for it less what is against it)."""

    def __init__(self, k: int) -> None:
        self.by_trade: list[dict[str, dict[str, Any]]] = [{} for _ in range(k)]
        self.total = np.zeros(k)
        self.objective = False  # whether the model has an objective at all

    def add(self, kind: str, forces: Iterable[tuple[int, str, float, str, float]]) -> None:
        """Each ``(trade, label, amount, unit, score)`` of ``forces`` that asks for its trade."""
        by_trade = self.by_trade
        for j, label, amount, unit, score in forces:
            if score > _ASKS:
                got = by_trade[j].get(label)
                if got is None:
                    by_trade[j][label] = {"kind": kind, "label": label, "amount": amount, "unit": unit, "score": score}
                else:
                    got["score"] += score

    def ranked(self) -> list[list[TradeReason]]:
        """Each trade's forces as reasons, strongest first (a stable sort: ties keep their order)."""
        flat: list[dict[str, Any]] = []
        counts = list(map(len, self.by_trade))
        for forces, count in zip(self.by_trade, counts, strict=True):
            if count == 2:  # the stable sort of two: the second first only if strictly stronger
                a, b = forces.values()
                flat += (b, a) if b["score"] > a["score"] else (a, b)
            else:
                flat += sorted(forces.values(), key=_SCORE, reverse=True) if count > 1 else forces.values()
        reasons = TradeReason._from_states(flat)  # one build for all
        out, at = [], 0
        for count in counts:
            out.append(reasons[at : at + count])
            at += count
        return out


_SCORE = operator.itemgetter("score")


def _term_forces(model: Model, undo: _Undo, mode: str, forces: _Forces) -> np.ndarray:
    """Each term's force on each trade; returns the first-order pull of the whole objective."""
    first_total = np.zeros(len(undo.idx))
    for name, part, piece, count in _pieces(model):
        forces.objective = True
        if count:  # undoing a trade saves its price: never a reason for it
            forces.total -= count
            continue
        exact, first = undo.change(piece)
        first_total += first
        forces.total += exact
        asks = np.flatnonzero(exact > _ASKS)
        forces.add("term", _labelled(name, part, asks.tolist(), exact[asks].tolist(), undo, mode))
    return first_total


def _labelled(
    name: str, part: str, asks: list[int], scores: list[float], undo: _Undo, mode: str
) -> Iterator[tuple[int, str, float, str, float]]:
    """What a desk reads for one piece's force on each trade ``j`` of ``asks``: ``(j, label,
    amount, unit, score)``."""
    flow, cash_gap, flow_label = undo.data.cash_flow, undo.cash_gap, undo.flow_label
    pairs = zip(asks, scores, strict=True)
    if name == "target_tracking" and part == "weights":
        edge = "back to band edge" if mode == "band_edge" else "drift to target"
        drifts, shares = undo.drifts, undo.flow_shares
        for j, score in pairs:
            drift, share = drifts[j], shares[j]
            yield j, f"{edge} ({100 * drift:+.2f} %)", drift, "weight", score * (1 - share)  # _percent, inline
            if flow and share > 0:
                yield j, flow_label, flow, "currency", score * share
    elif name == "target_tracking" and part == "cash":
        buys = undo.buys
        surplus = f"invests surplus cash ({_percent(cash_gap)})" if cash_gap > 0 else "invests the sales' proceeds"
        short = f"raises cash to target ({_percent(cash_gap)})" if cash_gap < 0 else "funds the buys"
        for j, score in pairs:
            if flow and (flow > 0) == buys[j]:
                yield j, flow_label, flow, "currency", score
            else:
                yield j, surplus if buys[j] else short, cash_gap, "weight", score
    elif name == "tax":
        gains = undo.gain.tolist()
        for j, score in pairs:
            gain = gains[j]
            if gain < 0:
                yield j, f"harvests a {-gain:,.0f} loss", -gain, "currency", score
            else:
                yield j, f"tax on a {gain:,.0f} gain", gain, "currency", score
    elif name == "transaction_cost":
        ref = undo.data.ref_value
        for j, score in pairs:
            yield j, "trading cost", score * ref, "currency", score
    else:
        label = _TERM_LABELS.get(name, name)
        for j, score in pairs:
            yield j, label, score, "objective", score


class _Rows(NamedTuple):
    """Limit rows as the undo reads them: an :class:`Affine`'s triplets, with their places in ``z``."""

    rows: np.ndarray
    at: np.ndarray  # each entry's place in z
    vals: np.ndarray
    m: int

    def places(self, n: int) -> np.ndarray:
        return self.at

    @classmethod
    def stacked(cls, affines: list[Affine], n: int) -> _Rows:
        """``affines`` one after the other (``Affine.stack``'s triplets, their places kept)."""
        starts = np.cumsum([0] + [a.m for a in affines])
        return cls(
            np.concatenate([a.rows + b for a, b in zip(affines, starts, strict=False)]),
            np.concatenate([a.places(n) for a in affines]),
            np.concatenate([a.vals for a in affines]),
            int(starts[-1]),
        )

    def subset(self, keep: np.ndarray) -> _Rows:
        """Rows ``keep`` (renumbered in that order)."""
        place = np.full(self.m, -1)
        place[keep] = np.arange(len(keep))
        at = place[self.rows]
        on = at >= 0
        return _Rows(at[on], self.at[on], self.vals[on], len(keep))


def _binding(model: Model, undo: _Undo) -> list[tuple[LimitGroup, np.ndarray, np.ndarray, np.ndarray]]:
    """The limit rows some undo would push past their bound: per group ``(group, rows, outward
    move, breach)``, the last two rows x trades (zero where that trade's undo does not breach).
    The groups' rows are stacked and moved at once (each row's sums in the same order)."""
    groups = [g for _, g in model.checked_groups if not g.separable or (g.lower > 0).any()]
    if not groups:  # bounds on one trade each: undoing it breaches only a positive lower bound
        return []
    linear = [g.linear(0.0) for g in groups]
    affines = [r for r, _, _ in linear]
    rows = _Rows.stacked(affines, undo.data.n)
    lower, upper = np.concatenate([lo for _, lo, _ in linear]), np.concatenate([up for _, _, up in linear])
    value = _values(rows, affines, undo.z)
    reach = undo.reach(rows)
    near = np.flatnonzero((upper - value <= reach) | (value - lower <= reach))
    if not near.size:
        return []
    moved = undo.moved(rows.subset(near))
    low, high = lower[near, None], upper[near, None]
    after = value[near, None] + moved
    over = (after > high + _TOL) & (moved > _TOL)
    if np.isfinite(low).any():
        under = (after < low - _TOL) & (moved < -_TOL)
        outward = np.where(over, moved, np.where(under, -moved, 0.0))
        breach = np.where(over, after - high, np.where(under, low - after, 0.0))
    else:  # upper bounds alone (the usual near rows): nothing goes below -inf, the same figures
        outward = np.where(over, moved, 0.0)
        breach = np.where(over, after - high, 0.0)
    keep = outward.any(axis=1)
    starts = np.cumsum([0] + [r.m for r in affines])
    owner = np.searchsorted(starts, near, side="right") - 1
    found = []
    for g in np.flatnonzero(np.bincount(owner[keep], minlength=len(groups))).tolist():  # the groups, ascending
        mine = keep & (owner == g)
        found.append((groups[g], near[mine] - starts[g], outward[mine], breach[mine]))
    return found


def _values(rows: _Rows, affines: list[Affine], z: np.ndarray) -> np.ndarray:
    """Each of ``affines`` evaluated at ``z``, one after the other: as their stacked triplets in
    one ``bincount`` (each row's entries in its own order: the same sums) where every one of them
    is evaluated so (see ``Affine.evaluate``)."""
    if any(a.vals.size >= _SPARSE_ROWS or a.dense is not None or a.dense_rows for a in affines):
        return np.concatenate([a.evaluate(z) for a in affines])
    summed = np.bincount(rows.rows, weights=rows.vals * z[rows.at], minlength=rows.m)
    return np.asarray(summed + np.concatenate([a.offset for a in affines]))


def _limit_forces(model: Model, undo: _Undo, first_total: np.ndarray, forces: _Forces) -> None:
    """The binding limits' forces: multipliers re-priced at the answer times the outward move; the
    net pull the multipliers leave unexplained shared by the limits holding each trade."""
    binding = _binding(model, undo)
    if not binding:
        return
    moves = np.concatenate([outward for _, _, outward, _ in binding]).T  # trades x rows
    held = np.flatnonzero(moves.any(axis=1))
    prices = np.zeros(moves.shape[1])
    if moves.shape[1] <= _MAX_ROWS:
        with contextlib.suppress(RuntimeError):  # nnls out of iterations: the net pull alone
            prices, _ = nnls(moves[held], np.maximum(-first_total[held], 0.0))
    scores = moves * prices
    deficit = np.maximum(-forces.total - scores.sum(axis=1), 0.0)
    share = moves / np.maximum(moves.sum(axis=1, keepdims=True), 1e-300)
    scores = scores + share * deficit[:, None]
    flow, labels, units, amounts = undo.data.cash_flow, [], [], []
    for group, rows, _, breach in binding:
        show = group.show  # one factor for all rows (a float), or one per row
        if isinstance(show, float):
            amounts.append(breach * show)
        else:
            amounts.append(breach * np.broadcast_to(np.asarray(show, dtype=float), (group.rows.m,))[rows, None])
        for row in rows.tolist():
            withdrawn = group.name == "cash_floor" and flow < 0
            labels.append(f"withdrawal {-flow:,.0f}" if withdrawn else f"{group.name}[{group.members[row]}] binding")
            units.append(group.unit)
    # every (row, trade) the row holds, rows in order and trades ascending within a row
    at_row, at_trade = np.nonzero(moves.T)
    amount = np.concatenate(amounts)[at_row, at_trade].tolist()
    pairs = zip(at_row.tolist(), at_trade.tolist(), amount, scores[at_trade, at_row].tolist(), strict=True)
    forces.add("limit", ((j, labels[r], row_amount, units[r], score) for r, j, row_amount, score in pairs))


_ROUNDING = TradeReason.trusted(kind="fact", label="whole-share rounding", amount=0.0, unit="", score=0.0)
_PROPOSED = TradeReason.trusted(kind="fact", label="the strategy's proposal", amount=0.0, unit="", score=0.0)


def _fact(label: str, amount: float = 0.0, unit: str = "") -> TradeReason:
    return TradeReason.trusted(kind="fact", label=label, amount=amount, unit=unit, score=0.0)


def _add_facts(undo: _Undo, reasons: list[list[TradeReason]]) -> None:
    """Append its plain facts to each trade's ``reasons`` (by trade): sized by the minimum trade,
    restricted on its other side."""
    data, idx = undo.data, undo.idx
    if data.min_trade_value > 0:
        value = np.abs(undo.u) * data.ref_value
        minimum = _fact(f"minimum trade ({data.min_trade_value:,.0f})", data.min_trade_value, "currency")
        for j in np.flatnonzero(value < data.min_trade_value + data.lot[idx] * data.prices[idx]).tolist():
            reasons[j].append(minimum)
    for side, names in _OTHER_SIDE.items():
        on_side = undo.u > 0 if side == "buy" else undo.u < 0
        for reason in names:
            blocked = data.blocked.get(reason)
            if blocked is not None and blocked.any():  # most restrictions block no asset
                for j in np.flatnonzero(on_side & blocked[idx]).tolist():
                    reasons[j].append(_fact(f"restricted: {reason}"))


def trade_reasons(model: Model, state: PostTradeState, mode: str = "full") -> dict[int, list[TradeReason]]:
    """The reasons of each traded asset (by index), strongest first: the forces that ask for the
    trade (objective terms, binding limits), then the facts; where no force asks for it, the
    whole-share step made it (a rounding, an exchange), or a user's strategy proposed it."""
    undo = _Undo(model, state)
    k = len(undo.idx)
    if not k:
        return {}
    forces = _Forces(k)
    _limit_forces(model, undo, _term_forces(model, undo, mode, forces), forces)
    # No objective at all: a user's OptimizationStrategy proposed the trades as they are.
    unexplained = _ROUNDING if forces.objective else _PROPOSED
    reasons = [forced or [unexplained] for forced in forces.ranked()]
    _add_facts(undo, reasons)
    return dict(zip(undo.idx.tolist(), reasons, strict=True))
