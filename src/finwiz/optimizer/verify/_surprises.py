"""Warnings for results that keep every limit but look like bugs to a portfolio manager.

Each is a sentence in ``result.warnings`` naming what happened, why, and the setting that changes
it: targets above the account's own caps (and the closest portfolio the caps allow), proceeds of a
forced cap sale left in cash because every other asset is inside its band, a deposit left in cash
because its purchases count against the turnover cap, positions sold down below the minimum
trade size ("dust": no later trade can sell them), and targets whole shares cannot reach (names
whose one lot is worth more than their target value: common on small direct-indexing accounts).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData, tracking_distance
from finwiz.optimizer.verify._compliance import PostTradeState

__all__ = ["closest_to_targets", "surprise_warnings"]

_SHOWN = 5  # names listed in one warning before "and N more"
_PARKED = 0.5  # a forced sale is "parked" when cash rose above its target by this share of the proceeds
_OUT_OF_REACH = 0.05
"""Names whose one lot is worth more than their target value are worth a warning when their targets
add up to at least this fraction of the targets' weight."""
_PERIODS = 252  # a risk model's periods per year, to state a tracking error annualised (daily data)


def surprise_warnings(data: ProblemData, state: PostTradeState) -> list[str]:
    """Every warning of this module for the final trades ``state`` of ``data``."""
    return [
        *_targets_above_caps(data),
        *_parked_proceeds(data, state),
        *_deposit_in_cash(data, state),
        *_dust(data, state),
        *_out_of_reach(data, state),
    ]


def _pct(value: float) -> str:
    """A weight as a percentage with four significant digits: a target a hair above its cap
    (0.4003 % against 0.4 %) does not print as equal to it."""
    return f"{value * 100:.4g}%"


def _names(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _sector_targets(data: ProblemData) -> np.ndarray:
    inside = data.sector_of >= 0  # bincount sums in input order, as np.add.at into zeros
    totals = np.bincount(data.sector_of[inside], data.target[inside], minlength=len(data.sector_names))
    return totals.astype(float, copy=False)  # no entry at all: bincount's zeros are integers


def _targets_above_caps(data: ProblemData) -> list[str]:
    """Targets the account's own position or sector caps forbid: the tracking distance the result
    reports cannot fall below the closest portfolio the caps allow, which the warning states."""
    over: list[str] = []  # past the first _SHOWN only counted (see _names): a blank stands for each
    if data.position_cap is not None:
        for i in np.flatnonzero(np.abs(data.target) > data.position_cap + 1e-12).tolist():
            over.append(
                ""
                if len(over) >= _SHOWN
                else f"{data.symbols[i]} target {_pct(data.target[i])} above its position cap "
                f"{_pct(data.position_cap[i])} (capped target {_pct(np.sign(data.target[i]) * data.position_cap[i])})"
            )
    if data.sector_cap is not None:
        totals = _sector_targets(data)
        for k in np.flatnonzero(totals > data.sector_cap + 1e-12).tolist():
            over.append(
                ""
                if len(over) >= _SHOWN
                else f"sector {data.sector_names[k]} targets {_pct(totals[k])} above its cap "
                f"{_pct(data.sector_cap[k])} (its targets scaled by {data.sector_cap[k] / totals[k]:.4g} fit)"
            )
    over += _exposures_outside(data)
    if not over:
        return []
    closest = closest_to_targets(data)
    floor = "" if closest is None else f": the closest portfolio the caps allow is {closest:.4g} from the targets"
    return [
        f"targets above the account's own caps: {_names(over)}{floor} (tracking distance at zero costs, "
        f"cash included), so the result's tracking distance cannot fall below it; targets within the caps "
        f"state what the account can hold"
    ]


_CLOSEST: dict[bytes, float | None] = {}
_CLOSEST_KEPT = 64
"""The distances already found, by targets and caps: every account of a batch with one model
portfolio and one set of caps has the same, and the projection is an OSQP solve of its own."""


def closest_to_targets(data: ProblemData) -> float | None:
    """The least tracking distance ``sqrt(sum (w - t)^2 + (cash - cash_target)^2)`` any portfolio
    within the position and sector caps has (zero costs, every trade allowed, cash ``1 - sum w``;
    long-only: ``w >= 0``); None if the solver does not answer. It depends on the targets and the
    caps alone, so it is computed once for each."""
    flags = [data.cash_target, data.allow_short, data.position_cap is not None, data.sector_cap is not None]
    parts = [data.target, np.array(flags, dtype=float)]
    parts += [a for a in (data.position_cap, data.sector_cap) if a is not None]
    if data.sector_cap is not None:
        parts.append(data.sector_of.astype(float))
    if data.exposures is not None:
        ex = data.exposures
        parts += [ex.row.astype(float), ex.col.astype(float), ex.fraction, ex.cap, ex.floor]
    key = b"|".join(np.ascontiguousarray(a, dtype=float).tobytes() for a in parts)
    if key not in _CLOSEST:
        if len(_CLOSEST) >= _CLOSEST_KEPT:
            _CLOSEST.pop(next(iter(_CLOSEST)))
        _CLOSEST[key] = _closest(data)
    return _CLOSEST[key]


def _closest(data: ProblemData) -> float | None:
    import osqp

    n = data.n
    cap = data.position_cap if data.position_cap is not None else np.full(n, np.inf)
    lower = np.maximum(-cap, -np.inf if data.allow_short else 0.0)
    upper = cap
    # Variables [w (n), s]: ||w - t||^2 + (1 - s - cash_target)^2 with s = 1'w.
    p = sparse.diags(np.full(n + 1, 2.0), format="csc")
    q = np.concatenate([-2.0 * data.target, [-2.0 * (1.0 - data.cash_target)]])
    rows = [sparse.hstack([sparse.eye(n), sparse.csc_matrix((n, 1))])]
    lo, up = [lower], [upper]
    rows.append(sparse.csc_matrix(np.concatenate([np.ones(n), [-1.0]])[None, :]))
    lo.append(np.zeros(1))
    up.append(np.zeros(1))
    if data.sector_cap is not None:
        inside = np.flatnonzero(data.sector_of >= 0)
        member = sparse.csc_matrix(
            (np.ones(inside.size), (data.sector_of[inside], inside)), shape=(len(data.sector_names), n + 1)
        )
        rows.append(member)
        lo.append(np.full(len(data.sector_names), -np.inf))
        up.append(data.sector_cap)
    if data.exposures is not None:
        ex = data.exposures
        rows.append(sparse.csc_matrix((ex.fraction, (ex.row, ex.col)), shape=(len(ex.names), n + 1)))
        lo.append(ex.floor)
        up.append(ex.cap)
    a = sparse.vstack(rows, format="csc")
    solver = osqp.OSQP()
    solver.setup(
        p,
        q,
        a,
        np.concatenate(lo),
        np.concatenate(up),
        verbose=False,
        eps_abs=1e-10,
        eps_rel=1e-10,
        polishing=True,
        max_iter=100_000,
    )
    answer = solver.solve(raise_error=False)
    if answer.x is None or not np.all(np.isfinite(answer.x)):
        return None
    w, s = answer.x[:n], answer.x[n]
    return tracking_distance(w, 1.0 - s, data.target, data.cash_target)


def _exposures_outside(data: ProblemData) -> list[str]:
    """The look-through exposures whose targets are above their cap or below their floor."""
    ex = data.exposures
    if ex is None:
        return []
    level = ex.matrix(data.n) @ data.target
    out = []
    for k in np.flatnonzero((level > ex.cap + 1e-12) | (level < ex.floor - 1e-12)):
        side, limit = ("above its cap", ex.cap[k]) if level[k] > ex.cap[k] else ("below its floor", ex.floor[k])
        out.append(f"exposure {ex.names[k]} targets {_pct(level[k])} {side} {_pct(limit)} (look-through)")
    return out


def _cash_reference(data: ProblemData) -> float:
    return max(data.cash_target, data.min_cash_weight)


def _parked_proceeds(data: ProblemData, state: PostTradeState) -> list[str]:
    """A sale forced by a position cap whose proceeds stay in cash because every underweight
    asset is inside its tolerance band (so nothing may buy)."""
    if data.position_cap is None:
        return []
    forced = (np.abs(data.x0) > data.position_cap * (1 + 1e-9)) & (state.trade_shares * np.sign(data.x0) < 0)
    if not forced.any():
        return []
    proceeds = float(np.abs(state.trade_values[forced]).sum())
    excess = (state.cash_weight_after - _cash_reference(data)) * state.value_after
    if excess < _PARKED * proceeds:
        return []
    waiting = np.flatnonzero(data.blocked["tolerance_band"] & (data.target - data.x0 > 0) & (state.trade_shares == 0))
    if not waiting.size:
        return []
    drift = data.target[waiting] - data.x0[waiting]
    order = waiting[np.argsort(-drift)]
    first = int(order[0])
    sold = _names([data.symbols[i] for i in np.flatnonzero(forced)])
    under = _names([data.symbols[i] for i in order])
    return [
        f"the sale of {sold} forced by its position cap left {excess:,.2f} in cash (cash {state.cash_weight_after:.2%} "
        f"after, target {_cash_reference(data):.2%}): the underweight assets ({under}) "
        f"are inside their tolerance bands, so none may buy with the proceeds; a tolerance below "
        f"{data.target[first] - data.x0[first]:.4g} ({data.symbols[first]}'s drift) or a relative_tolerance "
        f"would redeploy them"
    ]


def _deposit_in_cash(data: ProblemData, state: PostTradeState) -> list[str]:
    """A deposit left (partly) in cash because the purchases that would invest it count against
    a binding turnover cap."""
    if data.cash_flow <= 0 or data.turnover_cap is None or data.turnover_exempt > 0:
        return []
    step = max(data.min_trade_value, float(np.max(data.prices * data.lot, initial=0.0)), NOISE_VALUE)
    room = (data.turnover_cap - state.turnover) * data.value
    left = state.cash_after - _cash_reference(data) * state.value_after
    if room > step or left <= max(0.01 * data.cash_flow, step):
        return []
    return [
        f"{left:,.2f} of the {data.cash_flow:,.2f} deposit stays in cash (cash {state.cash_weight_after:.2%} after, "
        f"target {_cash_reference(data):.2%}): the purchases that would invest it count against max_turnover "
        f"{data.turnover_cap:g} (used {state.turnover:.4g}); turnover_excludes_cash_flow=True counts only the "
        f"trades beyond the cash flow"
    ]


def _dust(data: ProblemData, state: PostTradeState) -> list[str]:
    """Positions these trades sold down (not out) to less than the minimum trade size: no later
    sale of them keeps the minimum, so they stay until it is lowered."""
    if data.min_trade_value <= 0:
        return []
    reduced = (state.trade_shares != 0) & (np.abs(state.shares_after) < np.abs(data.shares))
    small = reduced & (state.shares_after != 0) & (np.abs(state.values_after) < data.min_trade_value)
    if not small.any():
        return []
    named = [
        f"{data.symbols[i]} {state.shares_after[i]:g} shares ({state.values_after[i]:,.2f}, "
        f"{state.weights_after[i]:.4%})"
        for i in np.flatnonzero(small)
    ]
    return [
        f"positions sold down to less than the minimum trade size ({data.min_trade_value:,.2f}): {_names(named)}; "
        f"no later sale of them keeps the minimum, so they stay until min_trade_size is lowered"
    ]


def _out_of_reach(data: ProblemData, state: PostTradeState) -> list[str]:
    """Targets whole shares cannot hold: names whose one lot is worth more than their target value
    (after the trades' value). Each such name ends at no share or at least one lot, so the tracking
    distance cannot fall below that of every name at its nearest whole-lot position (a bound:
    the squares are separable); with a risk model, the trades' tracking error, and with
    idiosyncratic risk its own bound (``sum d_i^2 e_i^2 <= e' S e``)."""
    if data.fractional or state.value_after <= 0:
        return []
    worth = data.lot * data.prices / state.value_after  # one lot, as a post-trade weight
    out = np.flatnonzero((data.target > 0) & (worth > data.target))
    if data.target[out].sum() < _OUT_OF_REACH * np.abs(data.target).sum() or out.size == 0:
        return []
    nearest = np.round(data.target / worth) * worth
    if not data.allow_short:
        nearest = np.maximum(nearest, 0.0)
    floor = float(np.sqrt(np.sum((nearest - data.target) ** 2)))
    gap = state.weights_after - data.target
    reached = float(np.sqrt(gap @ gap + (state.cash_weight_after - data.cash_target) ** 2))
    sentence = (
        f"targets out of reach of whole shares: {out.size} of {int(np.count_nonzero(data.target))} targeted names "
        f"({_names([data.symbols[i] for i in out[np.argsort(-worth[out])]])}) cost more per lot than their "
        f"target value ({_pct(float(data.target[out].sum()))} of the account in all), so each holds no share or "
        f"at least one lot: whole shares allow a tracking distance of no less than {floor:.4g} (each name at "
        f"its nearest whole lot), these trades reach {reached:.4g}"
    )
    if data.factor_root is not None:
        risk = float(np.sum((data.factor_root.T @ gap) ** 2))
        idio = np.zeros(data.n) if data.idio_sd is None else data.idio_sd
        risk += float(np.sum((idio * gap) ** 2))
        bound = float(np.sqrt(np.sum((idio * (nearest - data.target)) ** 2)))
        least = f"; whole shares allow no less than {bound:.4g}" if bound > 0 else ""
        sentence += (
            f" and a tracking error of {np.sqrt(risk):.4g} per period of the risk model "
            f"({np.sqrt(_PERIODS * risk):.2%} annualised over {_PERIODS} periods{least})"
        )
    return [f"{sentence}; fractional shares (allow_fractional_shares=True) or a larger account reach the targets"]
