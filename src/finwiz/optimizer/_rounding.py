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
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from finwiz.errors import ConstraintConflict, InfeasibleRebalanceError, SolverError
from finwiz.optimizer._compliance import trade_costs
from finwiz.optimizer._data import ProblemData

__all__ = ["RoundingOutcome", "round_trades"]

_MARGIN = 1e-8  # tightening of every coupled row, in weight units, so float noise never breaches
_EPS = 1e-12
_SMALLEST_TRADE = 0.01  # currency: a fractional trade worth less than a cent is solver noise, not a trade


@dataclass(frozen=True)
class RoundingOutcome:
    """Signed share trades per asset, and what the MILP said about them."""

    shares: np.ndarray
    mip_gap: float | None
    seconds: float
    candidates: int


def _candidates(data: ProblemData, target_shares: np.ndarray) -> list[np.ndarray]:
    """Candidate signed share trades per asset (always non-empty; 0 first when allowed)."""
    out: list[np.ndarray] = []
    floor_w = data.position_floor
    for i in range(data.n):
        s = target_shares[i]
        lot = data.lot[i]
        held = data.shares[i]
        price = data.prices[i]
        opts = {0.0}
        if lot > 0:
            down, up = np.floor(s / lot + _EPS) * lot, np.ceil(s / lot - _EPS) * lot
            opts |= {down, up}
            if data.min_trade_value > 0:
                step = np.ceil(data.min_trade_value / (lot * price) - _EPS) * lot
                opts.add(float(np.sign(s)) * step if s != 0 else 0.0)
        else:
            opts.add(s)
            if data.min_trade_value > 0 and s != 0:
                opts.add(float(np.sign(s)) * data.min_trade_value / price)
        if s < 0 and not data.allow_short:
            opts.add(-held)  # selling out is always a whole trade, lots or not
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


def round_trades(
    data: ProblemData,
    continuous_trades: np.ndarray,
    *,
    cost_weight: float = 1.0,
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
    # Objective: squared distance to the continuous optimum, plus costs, plus the
    # linearised cash term of the tracking objective; +1 continuous column z = total cost.
    dist = (post - w_star[owner]) ** 2
    c = np.concatenate([dist + cost_weight * cost, [0.0]])

    rows: list[sparse.csr_array] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    cols = np.arange(m)
    one_hot = sparse.csr_array((np.ones(m), (owner, cols)), shape=(data.n, m + 1))
    rows.append(one_hot)
    lo.append(np.ones(data.n))
    hi.append(np.ones(data.n))

    def add_row(coeffs: np.ndarray, z: float, upper: float, lower: float = -np.inf) -> None:
        rows.append(sparse.csr_array(np.concatenate([coeffs, [z]])[None, :]))
        lo.append(np.array([lower]))
        hi.append(np.array([upper]))

    # z = total cost (as a fraction of V_ref).
    add_row(cost, -1.0, 0.0, 0.0)
    # Cash: cash0 - sum(value) - z >= floor (1 - z)  <=>  sum(value) + (1 - floor) z <= cash0 - floor.
    add_row(value, 1.0 - data.min_cash_weight, data.cash0 - data.min_cash_weight - _MARGIN)
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
            hi.append(cap - data.x0[capped] - _MARGIN)
    if data.sector_cap is not None:
        for s in np.flatnonzero(np.isfinite(data.sector_cap)):
            members = data.sector_of[owner] == s
            sector_cap = float(data.sector_cap[s])
            base = float(data.x0[data.sector_of == s].sum())
            add_row(np.where(members, value, 0.0), sector_cap, sector_cap - base - _MARGIN)
    if data.esg is not None and data.esg_floor is not None:
        excess = (data.esg - data.esg_floor) / max(1.0, float(np.abs(data.esg).max()))
        base = float(excess @ data.x0)
        add_row(excess[owner] * value, 0.0, np.inf, -base + _MARGIN)
    budget = data.turnover_budget
    if budget is not None:
        add_row(np.abs(value), 0.0, budget - _MARGIN)

    matrix = sparse.vstack(rows).tocsr()
    result = milp(
        c,
        constraints=LinearConstraint(matrix, np.concatenate(lo), np.concatenate(hi)),
        integrality=np.concatenate([np.ones(m), [0.0]]),
        bounds=Bounds(np.zeros(m + 1), np.concatenate([np.ones(m), [np.inf]])),
        options={"time_limit": time_limit},
    )
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
    return RoundingOutcome(shares, None if gap is None else float(gap), time.perf_counter() - start, m)
