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

This module holds the :class:`Term` base, what a cvxpy term returns, and the objective terms; the
constraint terms (the money and every limit) and :func:`constraint_terms` are in ``_limits``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._model import NET, TURNOVER, Affine, Description, ImpactForm
from finwiz.risk._model import root_eigen

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = [
    "Limit",
    "MarketImpactTerm",
    "RiskTerm",
    "TargetTrackingTerm",
    "Term",
    "TermParts",
    "TrackingErrorTerm",
    "TradeCountTerm",
    "TransactionCostTerm",
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
    reads_context: bool | frozenset[str] = True
    """Whether the description reads the per-rebalance context (``count_weights``, ``debias``,
    ``blocked``, ``backoff``, ``options``), or which of those fields it reads: a re-solve of the
    same rebalance describes again only the terms that read a field it changed (a user's term
    always)."""

    def describe(self, data: ProblemData) -> Description | None:
        """The term's piece as data (see ``_model``), or None for a term written in cvxpy."""
        return None

    def redescribe(self, data: ProblemData, last: ProblemData, described: Description | None) -> Description | None:
        """:meth:`describe` of ``data`` for a re-solve whose ``last`` data differ from ``data`` only
        in context fields, given ``last``'s description (a term may keep the parts they leave alone)."""
        return self.describe(data)

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        """Create Parameters and expressions for the problem's shape (once per structure)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither describe() nor build()")

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        """Parameter values for this solve, one per Parameter :meth:`build` created."""
        return {}

    def structure(self, data: ProblemData) -> Hashable:
        """Key of a cvxpy term's shape (part of the assembler's cache key; a described term is keyed
        by its description). Return a key only when every constant :meth:`build` makes is the
        same for every request of that key (what differs is a Parameter): requests of one key
        share one compiled problem. The default, None, keys the problem by this term object and a
        digest of its attributes and of the request's data (``solve/_user_keys``): always right,
        compiled again whenever the data changes."""
        return None

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
        term: ``data.evolve(options={**data.options, key: value})``, read back in
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
        return data.costs.impact is not None

    def describe(self, data: ProblemData) -> Description:
        k = data.costs.impact if data.costs.impact is not None else np.zeros(data.n)
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
    reads_context = frozenset({"count_weights", "debias"})

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
            return data.evolve(count_weights=self.gamma(data, last))
        # The penalty picks which assets trade but also shrinks every trade towards zero (a
        # deposit left partly in cash): the debias solve sizes the chosen trades without it. A
        # trade under half the minimum size would be dropped by the rounding: it is left out
        # here, so that the other trades make up for it -- unless such trades carry much of the
        # traded value (leaving them all out then cost much objective, see
        # docs/decisions/continuous-and-verify.md); then the rounding settles each one.
        value = np.abs(last) * data.ref_value
        untraded = ~traded(data, last)
        small = ~untraded & (value < 0.5 * data.min_trade_value) & ~data.crossing  # crossing: must trade
        minor = value[small].sum() <= _SMALL_SHARE * value.sum()
        fixed = (untraded | small, untraded) if small.any() and minor else (untraded,)
        return [data.fix(f, debias=True) for f in fixed]

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
        rows = Affine.weights_dense(np.ascontiguousarray(k * root.T), data.x0, base)
        eigen = root_eigen(root)
        if eigen is not None:  # F'F = k^2 root root': the kept basis serves the dense solver
            rows.__dict__["_gram_eigen"] = (k * k * eigen[0], eigen[1], k * k * eigen[2])
        return Description(weight_squares=[(k * sd, base)], low_rank=[rows])


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
