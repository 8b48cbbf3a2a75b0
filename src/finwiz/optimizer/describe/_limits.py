"""Constraint terms: the money (the cost and the cash floor) and every limit on trades and
post-trade weights, as :class:`~finwiz.optimizer.describe._model.LimitGroup` s of a term's
description (see ``_terms`` for the :class:`~finwiz.optimizer.describe._terms.Term` base and the
objective terms); :func:`constraint_terms` lists the ones every strategy gets.
"""

from __future__ import annotations

import dataclasses
import operator

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._exposures import exposure_terms
from finwiz.optimizer.describe._model import COST, GAIN, NET, TAX, TURNOVER, Affine, Description, LimitGroup
from finwiz.optimizer.describe._terms import MarketImpactTerm, Term

__all__ = [
    "BudgetTerm",
    "ESGFloorTerm",
    "GrossExposureTerm",
    "PositionCapTerm",
    "PositionFloorTerm",
    "SectorCapTerm",
    "TaxTerm",
    "TradeBoundsTerm",
    "TurnoverCapTerm",
    "constraint_terms",
]


def _members(symbols: tuple[str, ...], idx: np.ndarray) -> tuple[str, ...]:
    """The symbols of assets ``idx`` (one ``itemgetter`` call: no bytecode per asset)."""
    if len(idx) < 2:  # itemgetter of one item returns the item, not a tuple
        return tuple([symbols[i] for i in idx.tolist()])
    picked: tuple[str, ...] = operator.itemgetter(*idx.tolist())(symbols)
    return picked


def _assets(data: ProblemData, idx: np.ndarray) -> tuple[str, ...]:
    """The symbols of distinct ascending assets ``idx`` (every asset's: the data's own tuple)."""
    return data.symbols if len(idx) == data.n else _members(data.symbols, idx)


def _post_trade(data: ProblemData) -> Affine:
    """``1 - c``: the post-trade value as a fraction of ``V_ref`` (``1 - c - tax`` when a taxable
    account pays its tax from cash)."""
    return _less_tax(Affine.scalar(COST, -1.0, 1.0), data)


def _less_tax(rows: Affine, data: ProblemData) -> Affine:
    """``rows`` less the tax paid from cash (``pay_tax_from_cash``): the ``T`` column plus the
    constant a netting region adds to it (``LotBook.tax_offset``)."""
    lots = data.lots
    if lots is None or not lots.settings.pay_tax_from_cash:
        return rows
    paid = rows.plus(TAX, -1.0)
    return dataclasses.replace(paid, offset=paid.offset - lots.tax_offset() / data.ref_value)


def _post_trade_weights(
    name: str,
    data: ProblemData,
    where: np.ndarray,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    short: np.ndarray | None = None,
) -> LimitGroup:
    """``lower_i <= w_i / (1 - c) <= upper_i`` for the assets ``where`` selects (one side given);
    for the assets ``short`` also selects, the same bound on ``-w_i`` (a cap on |w_i| is the
    pair: no side needed)."""
    idx = np.flatnonzero(where)
    neg = np.flatnonzero(where & short) if short is not None else np.zeros(0, dtype=np.int64)
    both = np.concatenate([idx, neg])
    unbounded = np.full(both.size, np.inf)
    rows = Affine.weights_diag(np.ones(idx.size), data.x0, idx=idx)
    if neg.size:
        rows = Affine.stack([rows, Affine.weights_diag(-np.ones(neg.size), data.x0, idx=neg)])
    return LimitGroup(
        name,
        rows,
        -unbounded if lower is None else lower[both],
        unbounded if upper is None else upper[both],
        _members(data.symbols, both) if neg.size else _assets(data, idx),
        per=_post_trade(data),
        per_asset=True,
    )


def _may_be_short(data: ProblemData) -> np.ndarray | None:
    """The assets that may end short (a short target or a short holding); None when long-only."""
    if not data.allow_short:
        return None
    return np.asarray((data.target < 0) | (data.x0 < 0))


class BudgetTerm(Term):
    """The money: the cost c >= sum_i rate_i |u_i| (the request's cost model, paid whatever the
    strategy's objective says of it), and cash after / post-trade value >= floor:
    (cash0 - nu - c) / (1 - c) >= min_cash_weight (less the tax, above and below, when the tax is
    paid from cash)."""

    reads_context = False
    name = "cash_floor"

    def describe(self, data: ProblemData) -> Description:
        cash = _less_tax(Affine.scalar(NET, -1.0, data.cash0).plus(COST, -1.0), data)
        group = LimitGroup(
            self.name, cash, np.array([data.min_cash_weight]), np.array([np.inf]), ("CASH",), per=_post_trade(data)
        )
        return Description(cost=data.costs.rates, limits=[group])


_BUY_REASONS = (
    "no_trade",
    "no_buy",
    "tolerance_band",
    "esg_screen",
    "fixed",
    "wash_sale",
    "tax_sells_only",
    "sell_only",
)
_SELL_REASONS = ("no_trade", "no_sell", "tolerance_band", "fixed", "tax_buys_only", "buy_only")
_REASON_SIDES = {
    reason: tuple(sell for sell, reasons in ((False, _BUY_REASONS), (True, _SELL_REASONS)) if reason in reasons)
    for reason in dict.fromkeys((*_BUY_REASONS, *_SELL_REASONS))
}
"""Each reason's sides (``sell``: False for the buy variable, True for the sell), in group order."""
_SIDE_NAMES = frozenset({"long_only", "long_side", "short_side", "side_change"})
"""The names of :func:`_side_groups`' groups (no reason is named alike)."""


def _side_bound(
    name: str, data: ProblemData, idx: np.ndarray, sell: bool, lower: np.ndarray, upper: np.ndarray
) -> LimitGroup:
    """``lower <= buy_i`` (or ``sell_i``) ``<= upper`` for the assets ``idx``, in shares."""
    return LimitGroup(
        name,
        Affine.side(idx, data.n, sell=sell),
        lower,
        upper,
        _assets(data, idx),
        unit="shares",
        show=data.ref_value / data.prices[idx],
        per_asset=True,
    )


def _side_groups(data: ProblemData) -> list[LimitGroup]:
    """Each asset stays on its side (``ProblemData.side``), as bounds on one trade variable each:
    a long side sells at most what is held (``w_i >= 0``), a short side buys back at most the short
    (``w_i <= 0``); an asset changing sides does so in one trade, selling (buying) at least its
    holding and not trading the other way. Long-only: ``sell_i <= held_i`` for every asset."""
    n, x0 = data.n, data.x0
    none = np.full(n, -np.inf)
    if not data.allow_short:
        return [_side_bound("long_only", data, np.arange(n), True, none, x0)]
    side = data.side
    long_side, short_side = np.flatnonzero(side > 0), np.flatnonzero(side < 0)
    groups = [
        _side_bound("long_side", data, long_side, True, none[long_side], np.maximum(x0[long_side], 0.0)),
        _side_bound("short_side", data, short_side, False, none[short_side], np.maximum(-x0[short_side], 0.0)),
    ]
    to_short = np.flatnonzero((side < 0) & (x0 > 0))  # sell out and go short
    to_long = np.flatnonzero((side > 0) & (x0 < 0))  # buy back and go long
    for idx, sell, need in ((to_short, True, x0), (to_long, False, -x0)):
        if idx.size:
            groups.append(_side_bound("side_change", data, idx, sell, need[idx], np.full(idx.size, np.inf)))
    return [g for g in groups if g.rows.m]


class TradeBoundsTerm(Term):
    """Each asset stays on its side (long-only: sell_i <= held_i; long/short: the side of its
    target, see ``ProblemData.side``); no buy or sell where a restricted list, the tolerance band or
    the ESG screen forbids it. One group per reason, so a conflict names the list or band."""

    name = "trade_bounds"
    reads_context = frozenset({"blocked"})

    def describe(self, data: ProblemData) -> Description:
        groups = _side_groups(data)
        for reason in _REASON_SIDES:
            groups += _blocked_groups(data, reason)
        return Description(limits=groups)

    def redescribe(self, data: ProblemData, last: ProblemData, described: Description | None) -> Description:
        """The side groups (when the sides are the same: a blocked asset may keep its holding's)
        and each reason whose blocked assets are ``last``'s kept (the debias solve fixes the
        untraded assets: only the ``fixed`` groups are new)."""
        if described is None:
            return self.describe(data)
        if not data.allow_short or np.array_equal(data.side, last.side):
            groups = [g for g in described.limits if g.name in _SIDE_NAMES]
        else:
            groups = _side_groups(data)
        for reason in _REASON_SIDES:
            same = data.blocked[reason] is last.blocked[reason]
            groups += [g for g in described.limits if g.name == reason] if same else _blocked_groups(data, reason)
        return Description(limits=groups)


def _blocked_groups(data: ProblemData, reason: str) -> list[LimitGroup]:
    """No buy (sell) of the assets ``reason`` blocks, one group per side it forbids."""
    blocked = data.blocked[reason]
    if not blocked.any():  # most reasons block nothing: no index work for them
        return []
    idx = np.flatnonzero(blocked)
    members = _assets(data, idx)
    return [
        LimitGroup(
            reason,
            Affine.side(idx, data.n, sell=sell),
            np.full(idx.size, -np.inf),
            np.zeros(idx.size),
            members,
            unit="currency",
            show=data.ref_value,
            per_asset=True,
        )
        for sell in _REASON_SIDES[reason]
    ]


class PositionCapTerm(Term):
    """|w_i| / (1 - c) <= cap_i: caps on post-trade weights (long/short: on -w_i too, for the
    assets that may end short)."""

    reads_context = False
    name = "max_position"

    def applies(self, data: ProblemData) -> bool:
        return data.position_cap is not None and bool(np.isfinite(data.position_cap).any())

    def describe(self, data: ProblemData) -> Description:
        cap = data.position_cap if data.position_cap is not None else np.full(data.n, np.inf)
        group = _post_trade_weights(self.name, data, np.isfinite(cap), upper=cap, short=_may_be_short(data))
        return Description(limits=[group])


class PositionFloorTerm(Term):
    """w_i / (1 - c) >= floor_i: floors on post-trade weights (assets with a floor above 0)."""

    reads_context = False
    name = "min_position"

    def applies(self, data: ProblemData) -> bool:
        return data.position_floor is not None and bool((data.position_floor > 0).any())

    def describe(self, data: ProblemData) -> Description:
        floor = data.position_floor if data.position_floor is not None else np.zeros(data.n)
        return Description(limits=[_post_trade_weights(self.name, data, floor > 0, lower=floor)])


class SectorCapTerm(Term):
    """sum_{i in s} w_i / (1 - c) <= cap_s for every capped sector s (post-trade weights)."""

    reads_context = False
    name = "sector_cap"

    def applies(self, data: ProblemData) -> bool:
        return data.sector_cap is not None and bool(np.isfinite(data.sector_cap).any())

    def describe(self, data: ProblemData) -> Description:
        m = len(data.sector_names)
        cap = data.sector_cap if data.sector_cap is not None else np.full(m, np.inf)
        capped = np.flatnonzero(np.isfinite(cap))
        row_of_sector = np.full(m, -1)
        row_of_sector[capped] = np.arange(capped.size)
        row_of = np.where(data.sector_of >= 0, row_of_sector[data.sector_of], -1)
        rows = Affine.weights_sparse(row_of, np.ones(data.n), capped.size, data.x0)
        group = LimitGroup(
            self.name,
            rows,
            np.full(capped.size, -np.inf),
            cap[capped],
            tuple(data.sector_names[s] for s in capped),
            per=_post_trade(data),
        )
        return Description(limits=[group])


class ESGFloorTerm(Term):
    """s'w / 1'w >= floor: the value-weighted average score of invested positions."""

    reads_context = False
    name = "esg_floor"

    def applies(self, data: ProblemData) -> bool:
        return data.esg is not None and data.esg_floor is not None

    def describe(self, data: ProblemData) -> Description:
        esg = data.esg if data.esg is not None else np.zeros(data.n)
        floor = data.esg_floor if data.esg_floor is not None else 0.0
        # Scores are scaled to O(1) so the row is well conditioned whatever the score scale.
        span = max(1.0, float(np.abs(esg).max(initial=0.0)))
        rows = Affine.weights_dense((esg / span)[None, :], data.x0)
        invested = Affine.scalar(NET, 1.0, float(data.x0.sum()))
        group = LimitGroup(
            self.name,
            rows,
            np.array([floor / span]),
            np.array([np.inf]),
            ("average score",),
            unit="score",
            per=invested,
            show=span,
        )
        return Description(limits=[group])


class TurnoverCapTerm(Term):
    """(sum_i |u_i| - e) V_ref / V <= max_turnover (turnover as a fraction of value before
    trading); ``e`` is the cash flow exempted by ``turnover_excludes_cash_flow`` (0 by default),
    ``|cash_flow| / V_ref``: a constant, so the row stays linear."""

    reads_context = False
    name = "turnover_cap"

    def applies(self, data: ProblemData) -> bool:
        return data.turnover_cap is not None

    def describe(self, data: ProblemData) -> Description:
        cap = data.turnover_cap if data.turnover_cap is not None else np.inf
        group = LimitGroup(
            self.name,
            Affine.scalar(TURNOVER, 1.0, -data.turnover_exempt),
            np.array([-np.inf]),
            np.array([cap]),
            ("turnover",),
            unit="turnover",
            per=Affine.constant(data.value / data.ref_value),
        )
        return Description(limits=[group])


class GrossExposureTerm(Term):
    """sum_i side_i w_i / (1 - c) <= max_gross_exposure: the sum of |post-trade weights| (each asset
    on its side, ``ProblemData.side``, so |w_i| = side_i w_i is linear). Long/short only."""

    name = "gross_exposure"

    def applies(self, data: ProblemData) -> bool:
        return data.gross_limit is not None

    def describe(self, data: ProblemData) -> Description:
        limit = data.gross_limit if data.gross_limit is not None else np.inf
        group = LimitGroup(
            self.name,
            Affine.weights_dense(data.side[None, :], data.x0),
            np.array([-np.inf]),
            np.array([limit]),
            (self.name,),
            per=_post_trade(data),
        )
        return Description(limits=[group])


class TaxTerm(Term):
    """tax_weight x T, the tax the sales realise (a fraction of ``V_ref``), lot by lot (the lots'
    ``TaxForm``: each lot's gain at its term's rate, a loss at minus its rate; under netting, the
    rates of one region of the rule and its rows, see ``tax/_regions``); the gain budget
    ``G <= max_realized_gain / V_ref``; and the wash-sale rule's withheld loss lots, as a bound on
    the asset's sell (at most its other lots). A taxable account only (``tax`` settings)."""

    reads_context = False
    name = "tax"

    def applies(self, data: ProblemData) -> bool:
        return data.lots is not None

    def describe(self, data: ProblemData) -> Description:
        lots = data.lots
        if lots is None:
            return Description()
        limits = []
        if lots.budget is not None:
            limits.append(
                LimitGroup(
                    "realized_gain",
                    Affine.scalar(GAIN),
                    np.array([-np.inf]),
                    np.array([lots.budget / data.ref_value]),
                    ("net_gain",),
                    unit="currency",
                    show=data.ref_value,
                )
            )
        withheld = np.flatnonzero(lots.withheld > 0)
        if withheld.size:
            room = data.x0[withheld] - lots.withheld[withheld] * data.prices[withheld] / data.ref_value
            limits.append(_side_bound("wash_sale_losses", data, withheld, True, np.full(withheld.size, -np.inf), room))
        return Description(
            linear=Affine.scalar(TAX, lots.tax_weight),
            tax=lots.form(data.prices, data.ref_value),
            limits=limits,
        )


def constraint_terms() -> list[Term]:
    """The terms every strategy gets (the money and every limit); each applies only when its data
    is present, and a strategy's own term of the same kind (e.g. the exact ``MarketImpactTerm``)
    takes its place."""
    return [
        BudgetTerm(),
        MarketImpactTerm(),
        TradeBoundsTerm(),
        PositionCapTerm(),
        PositionFloorTerm(),
        SectorCapTerm(),
        GrossExposureTerm(),
        ESGFloorTerm(),
        TurnoverCapTerm(),
        TaxTerm(),
        *exposure_terms(),
    ]
