"""From continuous trades to whole shares (and lots) that keep every hard constraint.

Each asset gets a few candidate trades — the continuous trade rounded down and up to its lot,
no trade, the smallest trade that meets the minimum size, selling out — filtered by the
per-asset rules (long-only, restricted lists, bands, floors, minimum size) and priced by the
strategy's own terms. Because every candidate is a fixed number of shares, costs (market impact
included) and post-trade values are *linear* in the choice, so picking one candidate per asset
subject to cash, caps, sector caps, ESG floor and turnover is a small mixed-integer *linear*
program. It is settled in three steps, each checked exactly in numpy: each asset's cheapest
candidate (optimal whenever the coupled limits hold), else a greedy repair from the continuous
trade's neighbours, else the MILP on HiGHS (through SciPy).
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
from finwiz.optimizer._data import NOISE_VALUE, ProblemData

__all__ = ["RoundingOutcome", "round_trades"]

_MARGIN = 1e-10  # tightening (weight units) so float noise never breaches a limit
_MARGINS = (_MARGIN, 1e-8, 1e-6)
_EPS = 1e-12
_SNAP = 1e-12  # relative: well above float noise (1e-16), far below a lot
_ROW_SCALE = 1e4


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


def _candidates(data: ProblemData, target_shares: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate signed share trades, an (assets x 5) table: no trade, the continuous trade rounded
    down and up to its lot, the smallest trade meeting the minimum size, and selling out.

    Returns the table, which entries are admissible (per-asset rules, duplicates removed), and
    which are the continuous trade's own neighbours (rounded down or up).
    """
    lot, held, price = data.lot, data.shares, data.prices
    # A trade within float noise of a lot multiple or of the whole holding is exactly that: an
    # optimum polished onto an active bound (sell everything) comes back an ulp either side of
    # it, and which side must not change the candidates (same input, same trades).
    lots = target_shares / lot
    tolerance = _SNAP * np.maximum(1.0, np.abs(lots))
    lots = np.where(np.abs(lots - np.round(lots)) <= tolerance, np.round(lots), lots)
    s = np.where(np.abs(lots * lot + held) <= _SNAP * np.maximum(1.0, held), -held, lots * lot)
    down = np.floor(s / lot + _EPS) * lot
    up = np.ceil(s / lot - _EPS) * lot
    has_min = (data.min_trade_value > 0) & (s != 0)
    step = np.where(has_min, np.sign(s) * np.ceil(data.min_trade_value / (lot * price) - _EPS) * lot, 0.0)
    # Selling out is a whole trade, lots or not, offered when little would be left anyway.
    residual = (held + s) * price
    sell_out = (s < 0) & (not data.allow_short) & (residual <= np.maximum(data.min_trade_value, lot * price))
    table = np.column_stack([np.zeros_like(s), down, up, step, np.where(sell_out, -held, 0.0)])
    valid = np.ones(table.shape, bool)
    valid[:, 3] = has_min
    valid[:, 4] = sell_out
    for j in range(1, table.shape[1]):
        for k in range(j):
            valid[:, j] &= ~(valid[:, k] & (table[:, j] == table[:, k]))
    valid &= ~((data.buy_cap <= 0)[:, None] & (table > 0))
    valid &= ~((data.sell_cap <= 0)[:, None] & (table < 0))
    if not data.allow_short:
        valid &= held[:, None] + table >= -_EPS * np.maximum(1.0, held)[:, None]
    smallest = max(data.min_trade_value * (1 - 1e-12), NOISE_VALUE)
    valid &= (table == 0) | (np.abs(table) * price[:, None] >= smallest)
    if data.position_floor is not None:
        floored = data.position_floor > 0
        post = (held[:, None] + table) * price[:, None] / data.ref_value
        valid &= ~floored[:, None] | (post >= (data.position_floor + _MARGIN)[:, None])
    stuck = ~valid.any(axis=1)
    valid[stuck, 0] = True  # nothing admissible: no trade, and the limits decide feasibility
    near = (table == down[:, None]) | (table == up[:, None])
    return table, valid, near


def _greedy_repair(
    coupled: sparse.csr_array,
    lower: np.ndarray,
    upper: np.ndarray,
    exact_row: np.ndarray,
    price: np.ndarray,
    cost: np.ndarray,
    owner: np.ndarray,
    chosen: np.ndarray,
    max_swaps: int = 50,
) -> np.ndarray | None:
    """Swap candidates until every coupled limit holds: each step takes the swap that removes the
    most violation per unit of objective given up. Returns None if it gets stuck.

    Binding limits usually need a few batches of swaps, a few milliseconds where the MILP took
    tens (measured at 500 assets); the MILP remains the fallback.
    """
    m = len(price)
    free = ~exact_row
    dense = coupled[:, :m].toarray()[free] + np.outer(coupled[:, [m]].toarray()[free, 0], cost)
    lo, hi = lower[free], upper[free]
    current = np.zeros(len(owner), bool)
    current[chosen] = True
    rows = dense[:, chosen].sum(axis=1)
    of_asset = np.full(owner.max() + 1, -1)
    of_asset[owner[chosen]] = chosen

    def violation(values: np.ndarray) -> np.ndarray:
        high, low = (hi[:, None], lo[:, None]) if values.ndim == 2 else (hi, lo)
        return np.asarray(np.maximum(values - high, 0.0) + np.maximum(low - values, 0.0))

    for _ in range(max_swaps):
        total = violation(rows).sum()
        if total <= 1e-13:
            return of_asset.copy()
        incumbent = of_asset[owner]
        delta = dense - dense[:, incumbent]
        gain = total - violation(rows[:, None] + delta).sum(axis=0)
        worse = price - price[incumbent]
        score = np.where((gain > 1e-15) & ~current, gain / np.maximum(worse, 1e-12), -np.inf)
        order = np.argsort(-score)
        order = order[np.isfinite(score[order])]
        if order.size == 0:
            return None
        # Take the best swaps, one per asset, until their gains would cover the violation; gains
        # are not exactly additive, so the loop re-checks and goes on if needed.
        _, first = np.unique(owner[order], return_index=True)
        batch = order[np.sort(first)]
        batch = batch[: int(np.searchsorted(np.cumsum(gain[batch]), total)) + 1]
        for best in batch:
            old = of_asset[owner[best]]
            current[old], current[best] = False, True
            rows = rows + dense[:, best] - dense[:, old]
            of_asset[owner[best]] = best
    return of_asset.copy() if violation(rows).sum() <= 1e-13 else None


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
    # Interior-point solutions carry ~1e-9 noise on untraded assets; floor() would turn it into
    # a one-lot trade, so trades worth under a cent are exactly zero.
    target_shares = np.where(np.abs(target_shares) * data.prices < NOISE_VALUE, 0.0, target_shares)
    table, valid, near = _candidates(data, target_shares)
    owner = np.nonzero(valid)[0]  # row-major: candidates grouped by asset
    option = table[valid]
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

    # Coupled rows over the candidates plus one column z (total cost), gathered as triplets and
    # built into one sparse matrix (a matrix per row cost more than the rest of the rounding).
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    lo: list[float] = []
    hi: list[float] = []
    cols = np.arange(m)

    def add_rows(row: np.ndarray, col: np.ndarray, val: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        entries.append((row + len(lo), col, val))
        lo.extend(lower.tolist())
        hi.extend(upper.tolist())

    def add_row(coeffs: np.ndarray, z: float, upper: float, lower: float = -np.inf) -> None:
        nz = np.flatnonzero(coeffs)
        add_rows(
            np.zeros(nz.size + 1, np.int64),
            np.append(nz, m),
            np.append(coeffs[nz], z),
            np.array([lower]),
            np.array([upper]),
        )

    # z = total cost (as a fraction of V_ref).
    add_row(cost, -1.0, 0.0, 0.0)
    # Cash: cash0 - sum(value) - z >= floor (1 - z)  <=>  sum(value) + (1 - floor) z <= cash0 - floor.
    add_row(value, 1.0 - data.min_cash_weight, data.cash0 - data.min_cash_weight)
    if data.position_cap is not None:
        capped = np.flatnonzero(np.isfinite(data.position_cap))
        if capped.size:
            cap = data.position_cap[capped]
            row_of = np.full(data.n, -1)
            row_of[capped] = np.arange(capped.size)
            sel = row_of[owner] >= 0
            add_rows(
                np.concatenate([row_of[owner[sel]], np.arange(capped.size)]),
                np.concatenate([cols[sel], np.full(capped.size, m)]),
                np.concatenate([value[sel], cap]),
                np.full(capped.size, -np.inf),
                cap - data.x0[capped],
            )
    if data.sector_cap is not None:
        capped_sectors = np.flatnonzero(np.isfinite(data.sector_cap))
        if capped_sectors.size:
            row_of = np.full(len(data.sector_names), -1)
            row_of[capped_sectors] = np.arange(capped_sectors.size)
            candidate_row = np.where(data.sector_of[owner] >= 0, row_of[data.sector_of[owner]], -1)
            sel = candidate_row >= 0
            caps = data.sector_cap[capped_sectors]
            held = np.bincount(
                data.sector_of[data.sector_of >= 0],
                weights=data.x0[data.sector_of >= 0],
                minlength=len(data.sector_names),
            )[capped_sectors]
            add_rows(
                np.concatenate([candidate_row[sel], np.arange(capped_sectors.size)]),
                np.concatenate([cols[sel], np.full(capped_sectors.size, m)]),
                np.concatenate([value[sel], caps]),
                np.full(capped_sectors.size, -np.inf),
                caps - held,
            )
    if data.esg is not None and data.esg_floor is not None:
        excess = (data.esg - data.esg_floor) / max(1.0, float(np.abs(data.esg).max()))
        add_row(excess[owner] * value, 0.0, np.inf, -float(excess @ data.x0))
    budget = data.turnover_budget
    if budget is not None:
        add_row(np.abs(value), 0.0, budget)

    entry_row = np.concatenate([e[0] for e in entries])
    entry_col = np.concatenate([e[1] for e in entries])
    entry_val = np.concatenate([e[2] for e in entries])
    lo_all, hi_all = np.array(lo), np.array(hi)
    exact_row = np.zeros(len(lo_all), bool)
    exact_row[0] = True  # the cost definition z = sum(cost y) is an equality, never tightened

    def coupled() -> sparse.csr_array:
        # Built only when the per-asset optimum breaks a limit (scipy's constructor alone cost
        # ~0.15 ms, a third of the rounding, at 100 assets).
        return sparse.csr_array((entry_val, (entry_row, entry_col)), shape=(len(lo), m + 1))

    def admissible(chosen: np.ndarray) -> bool:
        choice = np.zeros(m + 1)
        choice[chosen] = 1.0
        choice[m] = cost @ choice[:m]
        rows_value = np.bincount(entry_row, weights=entry_val * choice[entry_col], minlength=len(lo))
        free = ~exact_row
        return bool(
            np.all(rows_value[free] <= hi_all[free] + 1e-12) and np.all(rows_value[free] >= lo_all[free] - 1e-12)
        )

    def outcome(chosen: np.ndarray, gap: float | None) -> RoundingOutcome:
        shares = np.zeros(data.n)
        shares[owner[chosen]] = option[chosen]
        lossy = bool(np.any((near & valid).any(axis=1) & ~near[valid][chosen]))
        return RoundingOutcome(shares, gap, time.perf_counter() - start, m, lossy)

    # The objective is separable, so each asset's cheapest candidate is the optimum whenever it
    # keeps the coupled limits; only otherwise is the MILP needed.
    index = np.full(table.shape, -1)
    index[valid] = np.arange(m)
    price_table = np.full(table.shape, np.inf)
    price_table[valid] = c[:m]
    # Candidates whose objectives differ by less than a billionth are tied (fractional lots differ
    # by ~1e-20, float noise of the continuous optimum): ties go to the first column, so an ulp of
    # solver noise never changes the trades (same input, same trades).
    finite = np.where(np.isfinite(price_table), np.abs(price_table), 0.0)
    unit = 1e-9 * np.maximum(finite.max(axis=1, keepdims=True), 1e-300)
    price_table = np.where(np.isfinite(price_table), np.round(price_table / unit), np.inf)
    cheapest = index[np.arange(data.n), np.argmin(price_table, axis=1)]
    if admissible(cheapest):
        return outcome(cheapest, 0.0)
    # Limits bind: start instead from the better neighbour of each continuous trade (which the
    # continuous optimum already balanced against those limits) and repair greedily.
    near_table = np.where(near & valid, price_table, np.inf)
    has_near = np.isfinite(near_table).any(axis=1)
    start_col = np.where(has_near, np.argmin(near_table, axis=1), np.argmin(price_table, axis=1))
    nearest = index[np.arange(data.n), start_col]
    repaired = _greedy_repair(coupled(), lo_all, hi_all, exact_row, c[:m], cost, owner, nearest)
    if repaired is not None and admissible(repaired):
        return outcome(repaired, None)

    # Rows are in weight units and scaled up for HiGHS. Its integrality tolerance lets a
    # binary be 1e-6 away from 0/1, so the rounded choice is re-checked exactly here and the
    # limits tightened (up to 1e-6 in weight) until the exact check passes.
    one_hot = sparse.csr_array((np.ones(m), (owner, cols)), shape=(data.n, m + 1))
    matrix = sparse.vstack([one_hot, coupled() * _ROW_SCALE]).tocsr()
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
        if result.x is None or admissible(np.flatnonzero(result.x[:m] > 0.5)):
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
    gap = getattr(result, "mip_gap", None)
    return outcome(np.flatnonzero(result.x[:m] > 0.5), None if gap is None else float(gap))
