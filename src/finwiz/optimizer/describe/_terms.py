"""Optimizer terms: small named pieces of the one convex problem.

A built-in term states its piece once, as data: :meth:`Term.describe` returns a
:class:`~finwiz.optimizer.describe._model.Description` (squares of affine rows, linear parts, limit groups
over ``z = [buy, sell, c, tau, nu, T, G]``, fractions of ``V_ref``; see ``_model``). The native QP, the
cvxpy problem, the whole-share step, the compliance table and the diagnosis all read that
description.

A user's term may instead be a general convex piece written in cvxpy: :meth:`Term.build` creates
its ``cvxpy.Parameter`` s once per structure and returns :class:`TermParts`, and :meth:`Term.values`
gives their values for each solve (DPP: compiled once, re-solved). Constraints are returned split as
:class:`Limit` (left side, sense, right side) so the same piece becomes a hard constraint or, when
diagnosing infeasibility, an elastic one.

Terms are values: they keep no state between solves. What changes across the solves of one
rebalance (the trade-count re-weighting, the debias solve) lives on the per-rebalance
:class:`~finwiz.optimizer.describe._data.ProblemData`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import COST, GAIN, NET, TAX, TURNOVER, Affine, Description, ImpactForm, LimitGroup

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = [
    "BudgetTerm",
    "ESGFloorTerm",
    "GrossExposureTerm",
    "Limit",
    "MarketImpactTerm",
    "PositionCapTerm",
    "PositionFloorTerm",
    "RiskTerm",
    "SectorCapTerm",
    "TargetTrackingTerm",
    "TaxTerm",
    "Term",
    "TermParts",
    "TrackingErrorTerm",
    "TradeBoundsTerm",
    "TradeCountTerm",
    "TransactionCostTerm",
    "TurnoverCapTerm",
    "TurnoverPenaltyTerm",
    "Variables",
]

Value = float | np.ndarray


@dataclass(frozen=True)
class Variables:
    """The decision variables a cvxpy term sees (fractions of ``V_ref``)."""

    buy: cp.Expression
    sell: cp.Expression
    weights: cp.Expression
    cost: cp.Expression

    @classmethod
    def create(cls, n: int) -> Variables:
        """Fresh variables for ``n`` assets."""
        return cls(
            buy=cp.Variable(n, nonneg=True, name="buy"),
            sell=cp.Variable(n, nonneg=True, name="sell"),
            weights=cp.Variable(n, name="weights"),
            cost=cp.Variable(nonneg=True, name="cost"),
        )

    @property
    def traded(self) -> cp.Expression:
        """``buy + sell``: the absolute trade per asset at the optimum."""
        return self.buy + self.sell


@dataclass(frozen=True)
class Limit:
    """``lhs <sense> rhs`` for constraint group ``name``; ``rhs`` may contain Parameters only."""

    name: str
    lhs: cp.Expression
    sense: Literal["<=", ">="]
    rhs: cp.Expression | float

    def hard(self) -> cp.Constraint:
        """The constraint as written."""
        return self.lhs <= self.rhs if self.sense == "<=" else self.lhs >= self.rhs

    def elastic(self, slack: cp.Variable) -> cp.Constraint:
        """The constraint loosened by a non-negative ``slack``."""
        return self.lhs <= self.rhs + slack if self.sense == "<=" else self.lhs >= self.rhs - slack


@dataclass
class TermParts:
    """What a user's cvxpy term contributes: objective, limits, money cost, and its Parameters."""

    params: dict[str, cp.Parameter] = field(default_factory=dict)
    objective: cp.Expression | None = None
    limits: list[Limit] = field(default_factory=list)
    cost: cp.Expression | None = None


class Term:
    """A named piece of the problem.

    Built-in terms implement :meth:`describe`. A user's term either does the same or implements
    :meth:`build` (create Parameters, return :class:`TermParts`) and :meth:`values` (a value for
    every Parameter ``build`` created, keyed alike; a missing or unknown key is a ``TermError``).
    :meth:`structure` must change whenever ``build`` would build something of another shape.
    """

    name: str = "term"
    reads_context: bool = True
    """Whether the description reads the per-rebalance context (``count_weights``, ``debias``,
    ``blocked``): a re-solve of the same rebalance describes again only the terms that do (a
    user's term always)."""

    def describe(self, data: ProblemData) -> Description | None:
        """The term's piece as data (see ``_model``), or None for a term written in cvxpy."""
        return None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        """Create Parameters and expressions for the problem's shape (once per structure)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither describe() nor build()")

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        """Parameter values for this solve, one per Parameter :meth:`build` created."""
        return {}

    def structure(self, data: ProblemData) -> Hashable:
        """Key of a cvxpy term's shape (part of the assembler's cache key; a described term is keyed
        by its description); the default suits terms whose shape depends only on ``n``."""
        return (type(self).__qualname__, self.name)

    def applies(self, data: ProblemData) -> bool:
        """Whether the term has anything to say for this data (a cap term without caps does not)."""
        return True

    def refine(self, trades: Sequence[np.ndarray], data: ProblemData) -> ProblemData | Sequence[ProblemData] | None:
        """An iterative term's next continuous solve. ``trades`` are the net trades per asset
        (fractions of ``V_ref``) of this rebalance's continuous solves so far, the last of them on
        ``data``. Return the data to solve again with (alternatives in order: the first that
        solves is taken; none: the last answer stands), or None once the term is settled. The
        continuous stage asks the terms in order and re-solves, warm, until none asks (at most
        ``MAX_SOLVES`` solves). What the next solve needs goes on the returned data (a user's
        term: ``dataclasses.replace(data, options={**data.options, key: value})``, read back in
        :meth:`values` or :meth:`describe`)."""
        return None

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({inner})"


# --------------------------------------------------------------------------- objective terms


class TargetTrackingTerm(Term):
    """weight x ( ||w - w_target||^2 + (cash - cash_target)^2 ), cash before costs."""

    reads_context = False
    name = "target_tracking"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def describe(self, data: ProblemData) -> Description:
        root = float(np.sqrt(self.weight))
        # cash - cash* = sum(target) - sum(w) = -(nu + sum(x0) - sum(target)): a square of nu.
        return Description(
            weight_squares=[(np.full(data.n, root), data.target)],
            scalar_squares=[(NET, root, float(data.x0.sum() - data.target.sum()))],
        )


class TransactionCostTerm(Term):
    """weight x c: the price of the trading cost in the objective (c, defined by the budget as
    sum_i rate_i |u_i| plus any market impact, is what every request pays from cash)."""

    reads_context = False
    name = "transaction_cost"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def describe(self, data: ProblemData) -> Description:
        return Description(cost_weight=self.weight)


def impact_fit(max_trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of ``a t + b t^2``, the least-squares fit of ``t^{3/2}`` on [0, T].

    Closed form of the 2x2 normal equations for f(t) = t^1.5 over [0, T] from the moments
    int t^k dt; see tests for the check.
    """
    t = np.maximum(max_trade, 1e-12)
    # Moments over [0, T]: int t^2 = T^3/3, int t^3 = T^4/4, int t^4 = T^5/5,
    # int t^2.5 = T^3.5/3.5, int t^3.5 = T^4.5/4.5.
    m22, m23, m33 = t**3 / 3, t**4 / 4, t**5 / 5
    r1, r2 = t**3.5 / 3.5, t**4.5 / 4.5
    det = m22 * m33 - m23 * m23
    a = (r1 * m33 - r2 * m23) / det
    b = (m22 * r2 - m23 * r1) / det
    return np.maximum(a, 0.0), np.maximum(b, 0.0)


class MarketImpactTerm(Term):
    """Impact cost k_i |u_i|^{3/2} in c: exact (power cone) or the fit a_i |u_i| + b_i u_i^2 (SOC)."""

    reads_context = False
    name = "market_impact"

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact

    def applies(self, data: ProblemData) -> bool:
        return data.impact is not None

    def describe(self, data: ProblemData) -> Description:
        k = data.impact if data.impact is not None else np.zeros(data.n)
        if self.exact:
            return Description(impact=ImpactForm("power", k))
        # Fit over the largest trade the asset could plausibly need: its whole gap to target.
        a, b = impact_fit(np.abs(data.target - data.x0) * 2 + 1e-4)
        return Description(impact=ImpactForm("fit", k * a, k * b))


_SMALL_SHARE = 0.1  # of the traded value: small trades worth more are settled by the rounding, not left out


def traded(data: ProblemData, trades: np.ndarray) -> np.ndarray:
    """Which assets ``trades`` (fractions of ``V_ref``) trade, float noise aside."""
    return np.asarray(np.abs(trades) * data.ref_value >= NOISE_VALUE)


class TradeCountTerm(Term):
    """weight x number of trades; the continuous solve uses weight x sum_i gamma_i |u_i| with
    gamma_i = 1 / (|u_i^prev| + eps) (re-weighted L1), the discrete step the true count."""

    name = "trade_count"

    def __init__(self, weight: float | None = None, eps: float = 1e-3, iterations: int = 3) -> None:
        self.weight = weight
        self.eps = eps
        self.iterations = iterations

    def price(self, data: ProblemData) -> float:
        """lambda, the objective's price of one trade."""
        return data.trade_penalty if self.weight is None else self.weight

    def gamma(self, data: ProblemData, trades: np.ndarray | None = None) -> np.ndarray:
        """The L1 weights after a solve with ``trades`` (before the first: from the drift)."""
        gap = np.abs(data.target - data.x0) if trades is None else np.abs(trades)
        return np.asarray(1.0 / (gap + self.eps))

    def refine(self, trades: Sequence[np.ndarray], data: ProblemData) -> ProblemData | Sequence[ProblemData] | None:
        """Re-weight until the set of traded assets stops changing (at most ``iterations``
        solves), then one debias solve; settled after it."""
        if data.debias:
            return None
        last = trades[-1]
        changed = len(trades) == 1 or not np.array_equal(traded(data, last), traded(data, trades[-2]))
        if changed and len(trades) < self.iterations:
            return dataclasses.replace(data, count_weights=self.gamma(data, last))
        # The penalty picks which assets trade but also shrinks every trade towards zero (a
        # deposit left partly in cash): the debias solve sizes the chosen trades without it. A
        # trade under half the minimum size would be dropped by the rounding: it is left out
        # here, so that the other trades make up for it -- unless such trades carry much of the
        # traded value (at 2000 binding assets, 1,675 of 1,735 trades and 72 % of the value:
        # leaving them all out doubled the objective); then the rounding settles each one.
        value = np.abs(last) * data.ref_value
        untraded = ~traded(data, last)
        small = ~untraded & (value < 0.5 * data.min_trade_value) & ~data.crossing  # crossing: must trade
        minor = value[small].sum() <= _SMALL_SHARE * value.sum()
        fixed = (untraded | small, untraded) if small.any() and minor else (untraded,)
        return [dataclasses.replace(data.fix(f), debias=True) for f in fixed]

    def describe(self, data: ProblemData) -> Description:
        weight = self.price(data)
        if data.debias:  # the trades are chosen; the last solve sizes them without shrinkage
            return Description(count=weight)
        gamma = data.count_weights if data.count_weights is not None else self.gamma(data)
        return Description(count=weight, surrogate=Affine.traded(weight * gamma))


class _CovarianceTerm(Term):
    """Shared description of terms quadratic in a factor model: ||G'(w-b)||^2 + ||d o (w-b)||^2."""

    reads_context = False
    relative_to_target = False

    def __init__(self, weight: float | None = None) -> None:
        self.weight = weight

    def applies(self, data: ProblemData) -> bool:
        return data.factor_root is not None

    def describe(self, data: ProblemData) -> Description:
        if data.factor_root is None or data.idio_sd is None:
            return Description()
        base = data.target if self.relative_to_target else None
        root, sd = data.factor_root, data.idio_sd
        # Normalise by the average asset variance so risk_aversion=1 weighs risk like tracking.
        scale = float((np.sum(root**2) + np.sum(sd**2)) / data.n) or 1.0
        weight = data.risk_aversion if self.weight is None else self.weight
        k = float(np.sqrt(weight / scale))
        return Description(
            weight_squares=[(k * sd, base)],
            low_rank=[Affine.weights_dense(np.ascontiguousarray(k * root.T), data.x0, base)],
        )


class TrackingErrorTerm(_CovarianceTerm):
    """weight x (w - w_target)' Sigma (w - w_target) / mean(diag Sigma): active risk vs target."""

    name = "tracking_error"
    relative_to_target = True


class RiskTerm(_CovarianceTerm):
    """weight x w' Sigma w / mean(diag Sigma): absolute risk of the post-trade portfolio."""

    name = "risk"


class TurnoverPenaltyTerm(Term):
    """weight x sum_i |u_i|: a soft brake on turnover."""

    reads_context = False
    name = "turnover_penalty"

    def __init__(self, weight: float = 1e-4) -> None:
        self.weight = weight

    def describe(self, data: ProblemData) -> Description:
        return Description(linear=Affine.scalar(TURNOVER, self.weight))


# --------------------------------------------------------------------------- constraint terms


def _post_trade() -> Affine:
    """``1 - c``: the post-trade value as a fraction of ``V_ref``."""
    return Affine.scalar(COST, -1.0, 1.0)


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
        tuple(data.symbols[i] for i in both),
        per=_post_trade(),
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
    (cash0 - nu - c) / (1 - c) >= min_cash_weight."""

    reads_context = False
    name = "cash_floor"

    def describe(self, data: ProblemData) -> Description:
        cash = Affine.scalar(NET, -1.0, data.cash0).plus(COST, -1.0)
        group = LimitGroup(
            self.name, cash, np.array([data.min_cash_weight]), np.array([np.inf]), ("CASH",), per=_post_trade()
        )
        return Description(cost=data.cost_rate, limits=[group])


# ``sell_only`` / ``buy_only``: the mode (``PortfolioConfiguration.mode``) forbids every buy / sell.
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


def _side_bound(
    name: str, data: ProblemData, idx: np.ndarray, sell: bool, lower: np.ndarray, upper: np.ndarray
) -> LimitGroup:
    """``lower <= buy_i`` (or ``sell_i``) ``<= upper`` for the assets ``idx``, in shares."""
    return LimitGroup(
        name,
        Affine.side(idx, data.n, sell=sell),
        lower,
        upper,
        tuple(data.symbols[i] for i in idx),
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

    def describe(self, data: ProblemData) -> Description:
        n, symbols = data.n, data.symbols
        groups: list[LimitGroup] = _side_groups(data)
        for reason in dict.fromkeys((*_BUY_REASONS, *_SELL_REASONS)):
            idx = np.flatnonzero(data.blocked[reason])
            sides = [s for s, reasons in ((False, _BUY_REASONS), (True, _SELL_REASONS)) if reason in reasons]
            for sell in sides:
                if idx.size:
                    groups.append(
                        LimitGroup(
                            reason,
                            Affine.side(idx, n, sell=sell),
                            np.full(idx.size, -np.inf),
                            np.zeros(idx.size),
                            tuple(symbols[i] for i in idx),
                            unit="currency",
                            show=data.ref_value,
                            per_asset=True,
                        )
                    )
        return Description(limits=groups)


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
            per=_post_trade(),
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
            per=_post_trade(),
        )
        return Description(limits=[group])


class TaxTerm(Term):
    """tax_weight x T, the tax the sales realise (a fraction of ``V_ref``), lot by lot (the lots'
    ``TaxForm``: each lot's gain at its term's rate, a loss at minus its rate); the gain budget
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
    ]
