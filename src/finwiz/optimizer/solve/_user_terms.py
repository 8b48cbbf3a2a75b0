"""A user's cvxpy term checked (:func:`_check`) and its limits read as rows over ``z``
(:func:`_limit_group`), so the whole-share step, compliance and the diagnosis keep them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.errors import ConfigurationError, TermError
from finwiz.optimizer.describe._model import COST, Affine, LimitGroup
from finwiz.optimizer.describe._terms import Limit, Term, TermParts, Variables

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__: list[str] = []  # private helpers of the assembler


def _limit_group(term: Term, limit: Limit, v: Variables, known: set[int], n: int, x0: np.ndarray) -> LimitGroup:
    """One user limit as linear rows over ``z`` (see :func:`user_limit_groups`)."""
    lhs = limit.lhs
    where = f"term {term.name!r}, limit {limit.name!r}"
    if not lhs.is_affine():
        raise ConfigurationError(
            f"{where}: only a limit affine in the trades (v.buy, v.sell, v.weights, v.cost) can be kept in whole "
            "shares; write a convex limit as affine rows, or as an objective penalty"
        )
    if any(id(var) not in known for var in lhs.variables()):
        raise ConfigurationError(
            f"{where}: the left side uses a variable of its own; a limit may use only v.buy, v.sell, v.weights "
            "and v.cost (they are what the whole-share step can evaluate)"
        )

    def at(buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray:
        v.buy.value, v.sell.value, v.cost.value = buy, sell, cost
        v.weights.value = x0 + buy - sell
        return np.atleast_1d(np.asarray(lhs.value, dtype=float)).ravel()

    zero = np.zeros(n)
    offset = at(zero, zero, 0.0)
    m = offset.size
    grads = lhs.grad
    d_w, d_b, d_s, d_c = (_jacobian(grads, var, m) for var in (v.weights, v.buy, v.sell, v.cost))
    coef = np.hstack([d_b + d_w, d_s - d_w, d_c])  # m x (2n + 1): buy, sell, c
    rows, cols = np.nonzero(coef)
    codes = np.where(cols < 2 * n, cols, COST)
    affine = Affine(rows.astype(np.int64), codes.astype(np.int64), coef[rows, cols], offset)
    # The rows must reproduce the expression: checked at a point that moves every variable.
    rng = np.random.default_rng(0)
    buy, sell, cost = rng.uniform(0, 0.01, n), rng.uniform(0, 0.01, n), 0.001
    expected = at(buy, sell, cost)
    got = affine.evaluate(np.concatenate([buy, sell, [cost, 0.0, 0.0, 0.0, 0.0]]))
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        raise ConfigurationError(f"{where}: its left side could not be read as rows over the trades")
    rhs_value = limit.rhs.value if isinstance(limit.rhs, cp.Expression) else limit.rhs
    bound = np.broadcast_to(np.asarray(rhs_value, dtype=float).ravel(), (m,)).copy()
    if not np.isfinite(bound).all():
        raise ConfigurationError(f"{where}: the right side must be finite")
    infinite = np.full(m, np.inf)
    lower, upper = (-infinite, bound) if limit.sense == "<=" else (bound, infinite)
    members = (limit.name,) if m == 1 else tuple(f"{k}" for k in range(m))
    return LimitGroup(limit.name, affine, lower, upper, members, unit="")


def _jacobian(grads: dict[Any, Any], var: cp.Expression, m: int) -> np.ndarray:
    """``d expr / d var`` as an (expression size x variable size) array (zeros where absent)."""
    block = grads.get(var)
    if block is None:
        return np.zeros((m, var.size))
    dense = np.asarray(block.toarray() if sparse.issparse(block) else block, dtype=float)
    return np.asarray(dense.reshape(var.size, m).T)


def _gradient(grads: dict[Any, Any], var: cp.Expression) -> np.ndarray:
    block = grads.get(var)
    if block is None:
        return np.zeros(var.size)
    return np.asarray(block.toarray() if sparse.issparse(block) else block, dtype=float).ravel()


def _check(term: Term, parts: TermParts) -> None:
    if parts.objective is not None:
        if not (parts.objective.is_dcp(dpp=True) and parts.objective.is_convex()):
            raise TermError(term.name, "objective is not convex under DCP/DPP rules")
        if parts.objective.size != 1:
            raise TermError(term.name, "objective must be a scalar")
    if parts.cost is not None and not (parts.cost.is_dcp(dpp=True) and parts.cost.is_convex()):
        raise TermError(term.name, "cost is not convex under DCP/DPP rules")
    for limit in parts.limits:
        if isinstance(limit.rhs, cp.Expression) and limit.rhs.variables():
            raise TermError(term.name, f"limit {limit.name!r}: the right-hand side may hold Parameters only")
        if not limit.hard().is_dcp(dpp=True):
            raise TermError(term.name, f"limit {limit.name!r} is not convex under DCP/DPP rules")
