"""Optimizer terms: small named pieces of the one convex problem.

Decision variables (:class:`Variables`), all fractions of ``V_ref`` (see ``_data``):
``buy, sell >= 0`` per asset, post-trade weights ``w = x0 + buy - sell`` and the total cost ``c``.

A term creates its ``cvxpy.Parameter`` s once in :meth:`Term.build` and returns their values for
each new solve from :meth:`Term.values`, so an assembled problem is compiled once and re-solved
(DPP). Constraints are returned split as :class:`Limit` (left side, sense, right side) so the
same piece becomes a hard constraint or, when diagnosing infeasibility, an elastic one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from finwiz.optimizer._data import NO_LIMIT, ProblemData
from finwiz.optimizer._native import COST, NET, TURNOVER, Affine, NativeLimit, NativeParts

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer._lazy import cvxpy as cp

__all__ = [
    "BudgetTerm",
    "ESGFloorTerm",
    "Limit",
    "MarketImpactTerm",
    "PositionCapTerm",
    "PositionFloorTerm",
    "RiskTerm",
    "SectorCapTerm",
    "TargetTrackingTerm",
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
    """The decision variables every term sees (fractions of ``V_ref``)."""

    buy: cp.Variable
    sell: cp.Variable
    weights: cp.Variable
    cost: cp.Variable

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
    """What a built term contributes: objective, limits, money cost, and its Parameters."""

    params: dict[str, cp.Parameter] = field(default_factory=dict)
    objective: cp.Expression | None = None
    limits: list[Limit] = field(default_factory=list)
    cost: cp.Expression | None = None


class Term(ABC):
    """A named piece of the problem.

    Subclasses implement :meth:`build` (create Parameters, return :class:`TermParts`) and
    :meth:`values` (Parameter values for given data, keyed like ``TermParts.params``).
    :meth:`structure` must change whenever ``build`` would build something of another shape.
    """

    name: str = "term"

    @abstractmethod
    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        """Create Parameters and expressions for the problem's shape (once per structure)."""

    @abstractmethod
    def values(self, data: ProblemData) -> Mapping[str, Value]:
        """Parameter values for this solve."""

    def structure(self, data: ProblemData) -> Hashable:
        """Key of the term's shape; the default suits terms whose shape depends only on ``n``."""
        return (type(self).__qualname__, self.name)

    def applies(self, data: ProblemData) -> bool:
        """Whether the term has anything to say for this data (a cap term without caps does not)."""
        return True

    def reweight(self, data: ProblemData, trades: np.ndarray) -> bool:
        """Update internal state after a solve; return True to ask for another solve."""
        return False

    def option_objective(
        self, data: ProblemData, w_star: np.ndarray, owner: np.ndarray, change: np.ndarray
    ) -> np.ndarray | None:
        """This term's objective for discrete candidate trades, for the whole-share rounding.

        Candidate ``j`` moves asset ``owner[j]`` by ``change[j]`` (weight units) from the
        continuous optimum ``w_star``; return its (separable, second-order) contribution, or None
        if the term has nothing to add (its effect is then only felt through distance).
        """
        return None

    def reset(self) -> None:  # noqa: B027 - optional hook, most terms keep no state
        """Forget state from earlier solves (called before each new rebalance)."""

    def native(self, data: ProblemData) -> NativeParts | None:
        """The same piece as sparse rows for the native QP (``_native``), or None if the term has
        no such form: a request with any such term is solved through cvxpy. Built-in terms only;
        a test holds each equal to its cvxpy form."""
        return None

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"{type(self).__name__}({inner})"


def _param(parts: TermParts, key: str, shape: tuple[int, ...] = (), **kwargs: Any) -> cp.Parameter:
    param = cp.Parameter(shape, name=key, **kwargs)
    parts.params[key] = param
    return param


# --------------------------------------------------------------------------- objective terms


class TargetTrackingTerm(Term):
    """weight x ( ||w - w_target||^2 + (cash - cash_target)^2 ), cash before costs."""

    name = "target_tracking"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        # sqrt(weight) is folded into the Parameters: weight x f(w, param) would not be DPP.
        parts = TermParts()
        root = _param(parts, "root_weight", nonneg=True)
        target = _param(parts, "scaled_target", (data.n,))
        invested = _param(parts, "scaled_invested")
        parts.objective = cp.sum_squares(root * v.weights - target) + cp.square(root * cp.sum(v.weights) - invested)
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        root = float(np.sqrt(self.weight))
        return {
            "root_weight": root,
            "scaled_target": root * data.target,
            "scaled_invested": root * data.target.sum(),
        }

    def native(self, data: ProblemData) -> NativeParts:
        root = float(np.sqrt(self.weight))
        return NativeParts(
            weight_squares=[(np.full(data.n, root), data.target)],
            scalar_squares=[(NET, root, float(data.x0.sum() - data.target.sum()))],
        )

    def option_objective(
        self, data: ProblemData, w_star: np.ndarray, owner: np.ndarray, change: np.ndarray
    ) -> np.ndarray | None:
        # Exact in the asset's own square; the cash square is coupled, so it is linearised.
        post = w_star[owner] + change
        cash_gap = float(w_star.sum() - data.target.sum())
        return np.asarray(self.weight * ((post - data.target[owner]) ** 2 + 2 * cash_gap * change + change**2))


class TransactionCostTerm(Term):
    """Cost c = sum_i rate_i |u_i|; objective weight x c (c also prices any market impact)."""

    name = "transaction_cost"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        rate = _param(parts, "rate", (data.n,), nonneg=True)
        weight = _param(parts, "weight", nonneg=True)
        parts.cost = rate @ v.traded
        parts.objective = weight * v.cost
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        return {"rate": data.cost_rate, "weight": self.weight}

    def native(self, data: ProblemData) -> NativeParts:
        return NativeParts(cost=data.cost_rate, cost_weight=self.weight)


def impact_fit(max_trade: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (a, b) of ``a t + b t^2``, the least-squares fit of ``t^{3/2}`` on [0, T].

    Closed form of the 2x2 normal equations for f(t) = t^1.5 over [0, T]:
    a = (20/21) sqrt(T) ... derived from the moments int t^k dt; see tests for the check.
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
    """Impact cost k_i |u_i|^{3/2}: exact (power cone) or the QP fit a_i |u_i| + b_i u_i^2."""

    name = "market_impact"

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact

    def structure(self, data: ProblemData) -> Hashable:
        return (type(self).__qualname__, self.name, self.exact)

    def applies(self, data: ProblemData) -> bool:
        return data.impact is not None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        if self.exact:
            k = _param(parts, "k", (data.n,), nonneg=True)
            parts.cost = k @ cp.power(v.traded, 1.5)
        else:
            a = _param(parts, "a", (data.n,), nonneg=True)
            root_b = _param(parts, "root_b", (data.n,), nonneg=True)
            parts.cost = a @ v.traded + cp.sum_squares(cp.multiply(root_b, v.traded))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        k = data.impact if data.impact is not None else np.zeros(data.n)
        if self.exact:
            return {"k": k}
        # Fit over the largest trade the asset could plausibly need: its whole gap to target.
        span = np.abs(data.target - data.x0) * 2 + 1e-4
        a, b = impact_fit(span)
        return {"a": k * a, "root_b": np.sqrt(k * b)}


class TradeCountTerm(Term):
    """weight x sum_i gamma_i |u_i|, gamma_i = 1 / (|u_i^prev| + eps): re-weighted L1 ~ #trades."""

    name = "trade_count"

    def __init__(self, weight: float | None = None, eps: float = 1e-3, iterations: int = 3) -> None:
        self.weight = weight
        self.eps = eps
        self.iterations = iterations
        self._gamma: np.ndarray | None = None
        self._round = 0
        self.debiased = False

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        penalty = _param(parts, "penalty", (data.n,), nonneg=True)  # weight x gamma
        parts.objective = penalty @ v.traded
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        if self._gamma is None or len(self._gamma) != data.n:
            self._gamma = 1.0 / (np.abs(data.target - data.x0) + self.eps)
        weight = data.trade_penalty if self.weight is None else self.weight
        if self.debiased:  # the trades are chosen; the last solve sizes them without shrinkage
            return {"penalty": np.zeros(data.n)}
        return {"penalty": weight * self._gamma}

    def native(self, data: ProblemData) -> NativeParts:
        return NativeParts(linear=Affine.traded(np.asarray(self.values(data)["penalty"], dtype=float)))

    def reweight(self, data: ProblemData, trades: np.ndarray) -> bool:
        self._round += 1
        if self._round >= self.iterations:
            return False
        gamma = 1.0 / (np.abs(trades) + self.eps)
        changed = self._gamma is None or not np.allclose(gamma, self._gamma, rtol=1e-3)
        self._gamma = gamma
        return changed

    def reset(self) -> None:
        self._gamma = None
        self._round = 0
        self.debiased = False

    def option_objective(
        self, data: ProblemData, w_star: np.ndarray, owner: np.ndarray, change: np.ndarray
    ) -> np.ndarray | None:
        # In the rounding the count is exact: lambda for every candidate that trades.
        weight = data.trade_penalty if self.weight is None else self.weight
        traded = np.abs(w_star[owner] + change - data.x0[owner]) > 1e-15
        return np.asarray(weight * traded)


class _CovarianceTerm(Term):
    """Shared build for terms quadratic in a factor model: ||G'(w-b)||^2 + ||d o (w-b)||^2."""

    relative_to_target = False

    def __init__(self, weight: float | None = None) -> None:
        self.weight = weight

    def applies(self, data: ProblemData) -> bool:
        return data.factor_root is not None

    def structure(self, data: ProblemData) -> Hashable:
        k = None if data.factor_root is None else data.factor_root.shape[1]
        return (type(self).__qualname__, self.name, k)

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        if data.factor_root is None:
            return parts
        k = data.factor_root.shape[1]
        root = _param(parts, "root", (data.n, k))
        root_b = _param(parts, "root_b", (k,))
        sd = _param(parts, "idio_sd", (data.n,), nonneg=True)
        sd_b = _param(parts, "idio_sd_b", (data.n,))
        # sqrt(weight) is folded into the roots, keeping the term DPP.
        parts.objective = cp.sum_squares(root.T @ v.weights - root_b) + cp.sum_squares(
            cp.multiply(sd, v.weights) - sd_b
        )
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        if data.factor_root is None or data.idio_sd is None:
            return {}
        base = data.target if self.relative_to_target else np.zeros(data.n)
        root, sd = data.factor_root, data.idio_sd
        # Normalise by the average asset variance so risk_aversion=1 weighs risk like tracking.
        scale = float((np.sum(root**2) + np.sum(sd**2)) / data.n) or 1.0
        weight = data.risk_aversion if self.weight is None else self.weight
        k = float(np.sqrt(weight / scale))
        return {
            "root": k * root,
            "root_b": k * (root.T @ base),
            "idio_sd": k * sd,
            "idio_sd_b": k * sd * base,
        }

    def native(self, data: ProblemData) -> NativeParts:
        p = self.values(data)
        if not p:
            return NativeParts()
        base = data.target if self.relative_to_target else None
        root, sd = np.asarray(p["root"]), np.asarray(p["idio_sd"])
        return NativeParts(
            weight_squares=[(sd, base)],
            low_rank=[Affine.weights_dense(np.ascontiguousarray(root.T), data.x0, base)],
        )

    def option_objective(
        self, data: ProblemData, w_star: np.ndarray, owner: np.ndarray, change: np.ndarray
    ) -> np.ndarray | None:
        # Second order around the continuous optimum: gradient plus the diagonal curvature.
        if data.factor_root is None or data.idio_sd is None:
            return None
        p = self.values(data)
        root, sd = np.asarray(p["root"]), np.asarray(p["idio_sd"])
        base = data.target if self.relative_to_target else np.zeros(data.n)
        active = w_star - base
        grad = 2 * (root @ (root.T @ active) + sd**2 * active)
        hess = 2 * (np.sum(root**2, axis=1) + sd**2)
        return np.asarray(grad[owner] * change + 0.5 * hess[owner] * change**2)


class TrackingErrorTerm(_CovarianceTerm):
    """weight x (w - w_target)' Sigma (w - w_target) / mean(diag Sigma): active risk vs target."""

    name = "tracking_error"
    relative_to_target = True


class RiskTerm(_CovarianceTerm):
    """weight x w' Sigma w / mean(diag Sigma): absolute risk of the post-trade portfolio."""

    name = "risk"


class TurnoverPenaltyTerm(Term):
    """weight x sum_i |u_i|: a soft brake on turnover."""

    name = "turnover_penalty"

    def __init__(self, weight: float = 1e-4) -> None:
        self.weight = weight

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        weight = _param(parts, "weight", nonneg=True)
        parts.objective = weight * cp.sum(v.traded)
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        return {"weight": self.weight}

    def native(self, data: ProblemData) -> NativeParts:
        return NativeParts(linear=Affine.scalar(TURNOVER, self.weight))

    def option_objective(
        self, data: ProblemData, w_star: np.ndarray, owner: np.ndarray, change: np.ndarray
    ) -> np.ndarray | None:
        return np.asarray(self.weight * np.abs(w_star[owner] + change - data.x0[owner]))


# --------------------------------------------------------------------------- constraint terms


class BudgetTerm(Term):
    """cash after = cash0 - sum(buy) + sum(sell) - c >= floor x (1 - c): never below the floor."""

    name = "cash_floor"

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        cash0 = _param(parts, "cash0")
        floor = _param(parts, "floor", nonneg=True)
        spend = cp.sum(v.buy) - cp.sum(v.sell) + v.cost - floor * v.cost
        parts.limits.append(Limit(self.name, spend, "<=", cash0 - floor))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        return {"cash0": data.cash0 - data.backoff, "floor": data.min_cash_weight}

    def native(self, data: ProblemData) -> NativeParts:
        floor = data.min_cash_weight
        spend = Affine.scalar(NET).plus(COST, 1.0 - floor)
        return NativeParts(limits=[_at_most(self.name, spend, data.cash0 - data.backoff - floor)])


_BOUND_REASONS = ("no_trade", "no_buy", "no_sell", "tolerance_band", "esg_screen")


class TradeBoundsTerm(Term):
    """buy_i <= buy_cap_i, sell_i <= sell_cap_i: long-only, restricted lists, bands, ESG screen."""

    name = "trade_bounds"

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        buy_cap = _param(parts, "buy_cap", (data.n,), nonneg=True)
        sell_cap = _param(parts, "sell_cap", (data.n,), nonneg=True)
        if not diagnose:
            # Without any blocked buy the n rows buy <= cap say nothing; leaving them out makes
            # the problem smaller (a different structure, compiled once).
            if self._blocks_buys(data):
                parts.limits.append(Limit("buy_limits", v.buy, "<=", buy_cap))
            parts.limits.append(Limit("sell_limits", v.sell, "<=", sell_cap))
            return parts
        # Diagnosis: one elastic group per reason, so a conflict can name the list or band.
        if not data.allow_short:
            held = _param(parts, "held", (data.n,), nonneg=True)
            parts.limits.append(Limit("long_only", v.sell, "<=", held))
        for reason in _BOUND_REASONS:
            mask = data.blocked[reason]
            if not mask.any():
                continue
            idx = np.flatnonzero(mask)
            if reason != "no_sell":
                parts.limits.append(Limit(reason, v.buy[idx], "<=", 0.0))
            if reason not in ("no_buy", "esg_screen"):
                parts.limits.append(Limit(reason, v.sell[idx], "<=", 0.0))
        return parts

    @staticmethod
    def _blocks_buys(data: ProblemData) -> bool:
        return bool((data.buy_cap < NO_LIMIT).any())

    def structure(self, data: ProblemData) -> Hashable:
        return (type(self).__qualname__, self.name, self._blocks_buys(data))

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        return {
            "buy_cap": data.buy_cap,
            "sell_cap": np.minimum(data.sell_cap, NO_LIMIT),
            "held": data.x0,
        }

    def native(self, data: ProblemData) -> NativeParts:
        return NativeParts(buy_cap=_unbounded(data.buy_cap), sell_cap=_unbounded(data.sell_cap))


class PositionCapTerm(Term):
    """w_i / (1 - c) <= cap_i, i.e. w_i + cap_i c <= cap_i: caps on post-trade weights."""

    name = "max_position"

    def applies(self, data: ProblemData) -> bool:
        return data.position_cap is not None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        cap = _param(parts, "cap", (data.n,), nonneg=True)
        limit = _param(parts, "limit", (data.n,))
        parts.limits.append(Limit(self.name, v.weights + cap * v.cost, "<=", limit))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        cap = data.position_cap if data.position_cap is not None else np.full(data.n, np.inf)
        cap = np.minimum(cap, NO_LIMIT)
        return {"cap": cap, "limit": cap - data.backoff}

    def native(self, data: ProblemData) -> NativeParts:
        cap = data.position_cap if data.position_cap is not None else np.full(data.n, np.inf)
        rows = Affine.weights_diag(np.ones(data.n), data.x0).plus(COST, np.where(np.isfinite(cap), cap, 0.0))
        return NativeParts(limits=[_at_most(self.name, rows, cap - data.backoff)])


class PositionFloorTerm(Term):
    """w_i >= floor_i (as a fraction of V_ref, so also of the smaller post-trade value)."""

    name = "min_position"

    def applies(self, data: ProblemData) -> bool:
        return data.position_floor is not None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        floor = _param(parts, "floor", (data.n,))
        parts.limits.append(Limit(self.name, v.weights, ">=", floor))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        floor = data.position_floor if data.position_floor is not None else np.zeros(data.n)
        return {"floor": np.where(floor > 0, floor + data.backoff, floor)}

    def native(self, data: ProblemData) -> NativeParts:
        floor = np.asarray(self.values(data)["floor"], dtype=float)
        rows = Affine.weights_diag(np.ones(data.n), data.x0)
        return NativeParts(limits=[NativeLimit(self.name, rows, floor, np.full(data.n, np.inf))])


class SectorCapTerm(Term):
    """sum_{i in s} w_i + cap_s c <= cap_s for every capped sector s (post-trade weights)."""

    name = "sector_cap"

    def applies(self, data: ProblemData) -> bool:
        return data.sector_cap is not None and bool(np.isfinite(data.sector_cap).any())

    def structure(self, data: ProblemData) -> Hashable:
        return (type(self).__qualname__, self.name, data.structure()[2])

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        membership = data.sector_matrix()
        cap = _param(parts, "cap", (len(data.sector_names),), nonneg=True)
        limit = _param(parts, "limit", (len(data.sector_names),))
        parts.limits.append(Limit(self.name, membership @ v.weights + cap * v.cost, "<=", limit))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        cap = data.sector_cap if data.sector_cap is not None else np.full(len(data.sector_names), np.inf)
        cap = np.minimum(cap, NO_LIMIT)
        return {"cap": cap, "limit": cap - data.backoff}

    def native(self, data: ProblemData) -> NativeParts:
        m = len(data.sector_names)
        cap = data.sector_cap if data.sector_cap is not None else np.full(m, np.inf)
        rows = Affine.weights_sparse(data.sector_of, np.ones(data.n), m, data.x0)
        rows = rows.plus(COST, np.where(np.isfinite(cap), cap, 0.0))
        return NativeParts(limits=[_at_most(self.name, rows, cap - data.backoff)])


class ESGFloorTerm(Term):
    """sum_i (score_i - floor) w_i >= 0: the value-weighted average score of positions >= floor."""

    name = "esg_floor"

    def applies(self, data: ProblemData) -> bool:
        return data.esg is not None and data.esg_floor is not None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        excess = _param(parts, "excess", (data.n,))
        margin = _param(parts, "margin", nonneg=True)
        parts.limits.append(Limit(self.name, excess @ v.weights, ">=", margin))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        if data.esg is None or data.esg_floor is None:
            return {"excess": np.zeros(data.n), "margin": 0.0}
        # Scores are scaled to O(1) so the row is well conditioned whatever the score scale.
        span = max(1.0, float(np.abs(data.esg).max()))
        # No back-off here: selling out entirely (w = 0) must stay feasible when every score is low.
        return {"excess": (data.esg - data.esg_floor) / span, "margin": 0.0}

    def native(self, data: ProblemData) -> NativeParts:
        excess = np.asarray(self.values(data)["excess"], dtype=float)
        rows = Affine.weights_dense(excess[None, :], data.x0)
        return NativeParts(limits=[NativeLimit(self.name, rows, np.zeros(1), np.full(1, np.inf))])


class TurnoverCapTerm(Term):
    """sum_i |u_i| V_ref / V <= max_turnover (turnover as a fraction of value before trading)."""

    name = "turnover_cap"

    def applies(self, data: ProblemData) -> bool:
        return data.turnover_cap is not None

    def build(self, v: Variables, data: ProblemData, *, diagnose: bool = False) -> TermParts:
        parts = TermParts()
        budget = _param(parts, "budget", nonneg=True)
        parts.limits.append(Limit(self.name, cp.sum(v.traded), "<=", budget))
        return parts

    def values(self, data: ProblemData) -> Mapping[str, Value]:
        budget = data.turnover_budget if data.turnover_budget is not None else NO_LIMIT
        return {"budget": max(budget - data.backoff, 0.0)}

    def native(self, data: ProblemData) -> NativeParts:
        budget = np.asarray(self.values(data)["budget"], dtype=float)
        return NativeParts(limits=[_at_most(self.name, Affine.scalar(TURNOVER), budget)])


def _at_most(name: str, rows: Affine, upper: float | np.ndarray) -> NativeLimit:
    return NativeLimit(name, rows, np.full(rows.m, -np.inf), np.broadcast_to(np.asarray(upper, dtype=float), (rows.m,)))


def _unbounded(cap: np.ndarray) -> np.ndarray:
    """Caps at ``NO_LIMIT`` (cvxpy's stand-in for none) become infinite for the native solvers."""
    return np.where(cap >= NO_LIMIT, np.inf, cap)


def constraint_terms() -> list[Term]:
    """The constraint terms every strategy gets; each applies only when its data is present."""
    return [
        BudgetTerm(),
        TradeBoundsTerm(),
        PositionCapTerm(),
        PositionFloorTerm(),
        SectorCapTerm(),
        ESGFloorTerm(),
        TurnoverCapTerm(),
    ]
