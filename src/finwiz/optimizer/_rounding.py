"""From continuous trades to whole shares (and lots) that keep every hard constraint.

Each asset gets a few candidate trades — the continuous trade rounded down and up to its lot,
no trade, the smallest trade that meets the minimum size, selling out — filtered by the
per-asset rules (long-only, restricted lists, bands, floors, minimum size). Because every
candidate is a fixed number of shares, costs (market impact included) and post-trade values are
*linear* in the choice, so picking one candidate per asset subject to cash, caps, sector caps,
ESG floor and turnover is a small mixed-integer *linear* program that HiGHS (through SciPy)
solves exactly. Its objective keeps the result nearest the continuous optimum, plus costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer._compliance import trade_costs
from finwiz.optimizer._data import ProblemData

__all__ = ["RoundingOutcome", "round_trades"]

_MARGIN = 1e-10  # tightening (weight units) so float noise never breaches a limit
_MARGINS = (_MARGIN, 1e-8, 1e-6)
_EPS = 1e-12
_ROW_SCALE = 1e4
_SMALLEST_TRADE = 0.01  # currency: a fractional trade worth less than a cent is solver noise, not a trade


@dataclass(frozen=True)
class RoundingOutcome:
    """Signed share trades per asset, and what the MILP said about them."""

    shares: np.ndarray
    mip_gap: float | None
    seconds: float
    candidates: int
    lossy: bool
    """True when some asset got neither neighbour of its continuous trade (a trade was dropped
    or forced to the minimum size): a sign that binding limits left no room to round."""


def _candidates(data: ProblemData, target_shares: np.ndarray) -> list[np.ndarray]:
    """Candidate signed share trades per asset (always non-empty; 0 first when allowed)."""
    out: list[np.ndarray] = []
    floor_w = data.position_floor
    for i in range(data.n):
        s = target_shares[i]
        lot = data.lot[i]
        held = data.shares[i]
        price = data.prices[i]
        down, up = np.floor(s / lot + _EPS) * lot, np.ceil(s / lot - _EPS) * lot
        opts = {0.0, float(down), float(up)}
        if data.min_trade_value > 0 and s != 0:
            step = np.ceil(data.min_trade_value / (lot * price) - _EPS) * lot
            opts.add(float(np.sign(s)) * step)
        residual = (held + s) * price
        if s < 0 and not data.allow_short and residual <= max(data.min_trade_value, lot * price):
            opts.add(-held)  # selling out is a whole trade, lots or not, when little would be left
        arr = np.array(sorted(opts))
        keep = np.ones(len(arr), bool)
        if data.buy_cap[i] <= 0:
            keep &= arr <= 0
        if data.sell_cap[i] <= 0:
            keep &= arr >= 0
        if not data.allow_short:
            keep &= held + arr >= -_EPS * max(1.0, held)
        smallest = max(data.min_trade_value * (1 - 1e-12), _SMALLEST_TRADE)
        keep &= (arr == 0) | (np.abs(arr) * price >= smallest)
        if floor_w is not None and floor_w[i] > 0:
            post = (held + arr) * price / data.ref_value
            keep &= post >= floor_w[i] + _MARGIN
        arr = arr[keep]
        out.append(arr if arr.size else np.array([0.0]))
    return out


OptionObjective = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray | None]


def round_trades(
    data: ProblemData,
    continuous_trades: np.ndarray,
    *,
    cost_weight: float = 1.0,
    objective: OptionObjective | None = None,
    time_limit: float = 10.0,
) -> RoundingOutcome:
    """Whole-share (or lot) trades nearest ``continuous_trades`` (fractions of V_ref) that
    satisfy every hard constraint. Raises :class:`InfeasibleRebalanceError` if none exists."""
    start = time.perf_counter()
    target_shares = continuous_trades * data.ref_value / data.prices
    cands = _candidates(data, target_shares)
    sizes = np.array([len(c) for c in cands])
    owner = np.repeat(np.arange(data.n), sizes)
    option = np.concatenate(cands)
    m = len(option)
    value = option * data.prices[owner] / data.ref_value  # trade in weight units
    linear, impact = trade_costs(data, option * data.prices[owner], owner)
    cost = (linear + impact) / data.ref_value
    post = data.x0[owner] + value
    w_star = data.x0 + continuous_trades
    # Objective: the strategy's own objective per candidate (``objective``, from the terms:
    # exact where separable, second order where not) plus costs; without it, the squared
    # distance to the continuous optimum. The extra continuous column z is the total cost.
    change = post - w_star[owner]
    per_option = objective(w_star, owner, change) if objective is not None else None
    if per_option is None:
        per_option = change**2
    c = np.concatenate([per_option + cost_weight * cost, [0.0]])

    rows: list[sparse.csr_array] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    cols = np.arange(m)
    one_hot = sparse.csr_array((np.ones(m), (owner, cols)), shape=(data.n, m + 1))

    def add_row(coeffs: np.ndarray, z: float, upper: float, lower: float = -np.inf) -> None:
        rows.append(sparse.csr_array(np.concatenate([coeffs, [z]])[None, :]))
        lo.append(np.array([lower]))
        hi.append(np.array([upper]))

    # z = total cost (as a fraction of V_ref).
    add_row(cost, -1.0, 0.0, 0.0)
    # Cash: cash0 - sum(value) - z >= floor (1 - z)  <=>  sum(value) + (1 - floor) z <= cash0 - floor.
    add_row(value, 1.0 - data.min_cash_weight, data.cash0 - data.min_cash_weight)
    if data.position_cap is not None:
        capped = np.flatnonzero(np.isfinite(data.position_cap))
        if capped.size:
            cap = data.position_cap[capped]
            sel = np.isin(owner, capped)
            row_of = {a: r for r, a in enumerate(capped)}
            r_idx = np.array([row_of[a] for a in owner[sel]])
            block = sparse.csr_array(
                (
                    np.concatenate([value[sel], cap]),
                    (
                        np.concatenate([r_idx, np.arange(capped.size)]),
                        np.concatenate([cols[sel], np.full(capped.size, m)]),
                    ),
                ),
                shape=(capped.size, m + 1),
            )
            rows.append(block)
            lo.append(np.full(capped.size, -np.inf))
            hi.append(cap - data.x0[capped])
    if data.sector_cap is not None:
        for s in np.flatnonzero(np.isfinite(data.sector_cap)):
            members = data.sector_of[owner] == s
            sector_cap = float(data.sector_cap[s])
            base = float(data.x0[data.sector_of == s].sum())
            add_row(np.where(members, value, 0.0), sector_cap, sector_cap - base)
    if data.esg is not None and data.esg_floor is not None:
        excess = (data.esg - data.esg_floor) / max(1.0, float(np.abs(data.esg).max()))
        base = float(excess @ data.x0)
        add_row(excess[owner] * value, 0.0, np.inf, -base)
    budget = data.turnover_budget
    if budget is not None:
        add_row(np.abs(value), 0.0, budget)

    # Rows are in weight units and scaled up for HiGHS. Its integrality tolerance lets a
    # binary be 1e-6 away from 0/1, so the rounded choice is re-checked exactly here and the
    # limits tightened (up to 1e-6 in weight) until the exact check passes.
    coupled = sparse.vstack(rows).tocsr()
    lo_all, hi_all = np.concatenate(lo), np.concatenate(hi)
    exact_row = np.zeros(len(lo_all), bool)
    exact_row[0] = True  # the cost definition z = sum(cost y) is an equality, never tightened
    matrix = sparse.vstack([one_hot, coupled * _ROW_SCALE]).tocsr()
    integrality = np.concatenate([np.ones(m), [0.0]])
    bounds = Bounds(np.zeros(m + 1), np.concatenate([np.ones(m), [np.inf]]))
    for margin in _MARGINS:
        shift = np.where(exact_row, 0.0, margin)
        lower = np.concatenate([np.ones(data.n), (lo_all + shift) * _ROW_SCALE])
        upper = np.concatenate([np.ones(data.n), (hi_all - shift) * _ROW_SCALE])
        result = milp(
            c,
            constraints=LinearConstraint(matrix, lower, upper),
            integrality=integrality,
            bounds=bounds,
            options={"time_limit": time_limit},
        )
        if result.x is None:
            break
        choice = np.concatenate([(result.x[:m] > 0.5).astype(float), [0.0]])
        choice[m] = cost @ choice[:m]
        rows_value = coupled @ choice
        slack = 1e-12
        if np.all(rows_value[~exact_row] <= hi_all[~exact_row] + slack) and np.all(
            rows_value[~exact_row] >= lo_all[~exact_row] - slack
        ):
            break
    else:
        raise SolverError("whole-share rounding could not meet the limits exactly", solver="HiGHS", status="inexact")
    if result.x is None:
        if result.status == 2:  # infeasible
            raise InfeasibleRebalanceError(
                [
                    ConstraintConflict(
                        "whole_shares",
                        0.0,
                        "no whole-share rounding of the optimal trades "
                        "keeps every limit; allow fractional shares or loosen a limit",
                    )
                ],
                "no whole-share trades satisfy the constraints",
            )
        raise SolverError(
            f"whole-share rounding failed: {result.message}",
            solver="HiGHS",
            status=str(result.status),
        )
    chosen = result.x[:m] > 0.5
    shares = np.zeros(data.n)
    shares[owner[chosen]] = option[chosen]
    gap = getattr(result, "mip_gap", None)
    lossy = bool(np.any(np.abs(shares - target_shares) > data.lot * (1 + 1e-9)))
    return RoundingOutcome(shares, None if gap is None else float(gap), time.perf_counter() - start, m, lossy)
