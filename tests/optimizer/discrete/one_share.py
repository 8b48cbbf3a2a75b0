"""One-share moves of a risk-aware whole-share answer, priced independently of finwiz (issue 23).

Written from the README's definitions, not from finwiz's code: ``Case`` is a request as arrays
(prices, held shares, cash, the target, position and sector caps, a no-sell list, a covariance
``sigma`` and ``risk_aversion``), ``objective`` the ``RISK_AWARE`` objective of holding ``q``
shares, ``feasible`` its limits; ``best_single`` and ``best_pair`` the best improving move of one
share of one asset, or one share each of two, over every asset and every pair (priced exactly:
the objective is quadratic, so a pair's change is the two moves' own plus their cross term, then
checked on the objective and the limits); ``local_search`` takes the best until none is left.

- R = V + cash flow (no flow here); each asset's trade value T_i = (q_i - q0_i) p_i; w_i = q_i p_i / R
  and cash = (cash - sum T) / R (weights before costs); costs C = rate sum |T_i|;
  objective = ||w - w*||^2 + (cash - cash*)^2 + C / R + risk_aversion (w - w*)' S (w - w*) / mean(diag S).
- limits on post-trade weights (fractions of V' = R - C): q_i p_i <= cap V', each sector <= its
  cap x V'; cash after costs >= 0; long only; no sale of a no-sell name.
- tracking error: sqrt(252 e' S e), e the post-trade weights minus the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Case", "best_pair", "best_single", "feasible", "local_search", "objective", "tracking_error"]

PERIODS = 252
IMPROVES = 1e-9
"""A move improves when it lowers the objective by more than this fraction of it."""
SLACK = 1e-9
"""Limits are kept to this fraction of the account's value (float noise)."""


@dataclass
class Case:
    """One request as arrays: prices, held shares, cash, the target, limits and the covariance."""

    symbols: list[str]
    prices: np.ndarray
    held: np.ndarray
    cash: float
    target: np.ndarray
    rate: float
    position_cap: float
    sector_cap: float
    sectors: np.ndarray  # classified sectors x assets, 0/1
    no_sell: np.ndarray
    sigma: np.ndarray
    aversion: float

    @property
    def r(self) -> float:
        return float(self.held @ self.prices) + self.cash

    @property
    def k(self) -> float:
        return self.aversion / float(np.mean(np.diag(self.sigma)))


# --------------------------------------------------------------------------- the README's objective and limits


def objective(case: Case, q: np.ndarray) -> float:
    """The RISK_AWARE objective of holding ``q`` shares after trading (see the module)."""
    r = case.r
    trade = (q - case.held) * case.prices
    e = q * case.prices / r - case.target
    gap = (case.cash - trade.sum()) / r - (1 - case.target.sum())
    cost = case.rate * np.abs(trade).sum() / r
    return float(e @ e + gap**2 + cost + case.k * e @ case.sigma @ e)


def feasible(case: Case, q: np.ndarray) -> bool:
    """Whether ``q`` keeps every limit (see the module)."""
    r = case.r
    trade = (q - case.held) * case.prices
    cost = case.rate * np.abs(trade).sum()
    after = r - cost
    held_value = q * case.prices
    slack = SLACK * r
    return bool(
        (q >= 0).all()
        and (q[case.no_sell] >= case.held[case.no_sell]).all()
        and case.cash - trade.sum() - cost >= -slack
        and (held_value <= case.position_cap * after + slack).all()
        and (case.sectors @ held_value <= case.sector_cap * after + slack).all()
    )


def tracking_error(case: Case, q: np.ndarray) -> float:
    """Annualised tracking error of the post-trade weights (fractions of V')."""
    trade = (q - case.held) * case.prices
    after = case.r - case.rate * np.abs(trade).sum()
    e = q * case.prices / after - case.target
    return float(np.sqrt(PERIODS * e @ case.sigma @ e))


# --------------------------------------------------------------------------- one-share moves, priced exactly


@dataclass
class Moves:
    """Every asset one share up (first n) and one share down (last n) from ``q``: each move's exact
    change of the objective, its change of the costs and of the sector values, and the pair cross
    terms' factor."""

    asset: np.ndarray
    step: np.ndarray  # shares, +1 or -1
    change: np.ndarray  # the objective's change of the move alone
    cost: np.ndarray  # its change of the costs (currency)


def moves_at(case: Case, q: np.ndarray) -> Moves:
    n, r, p = len(q), case.r, case.prices
    trade = (q - case.held) * p
    e = q * p / r - case.target
    gap = (case.cash - trade.sum()) / r - (1 - case.target.sum())
    se = case.sigma @ e
    asset = np.concatenate([np.arange(n), np.arange(n)])
    step = np.concatenate([np.ones(n), -np.ones(n)])
    delta = step * p[asset] / r
    cost = case.rate * (np.abs(trade[asset] + step * p[asset]) - np.abs(trade[asset]))
    change = (
        2 * e[asset] * delta
        + delta**2
        - 2 * gap * delta
        + delta**2
        + cost / r
        + case.k * (2 * delta * se[asset] + delta**2 * case.sigma[asset, asset])
    )
    return Moves(asset, step, change, cost)


def pair_changes(case: Case, moves: Moves) -> np.ndarray:
    """The exact change of every exchange (a, b) of two moves of different assets: the two moves'
    own changes plus the cross terms of the cash square and the risk term (the tracking square
    and the costs are separable)."""
    delta = moves.step * case.prices[moves.asset] / case.r
    cross = 2 * np.outer(delta, delta) * (1 + case.k * case.sigma[np.ix_(moves.asset, moves.asset)])
    total = moves.change[:, None] + moves.change[None, :] + cross
    total[moves.asset[:, None] == moves.asset[None, :]] = np.inf
    return total


def best_single(case: Case, q: np.ndarray, f: float) -> np.ndarray | None:
    """The best improving single-share move that keeps every limit (None: there is none)."""
    moves = moves_at(case, q)
    for k in np.argsort(moves.change):
        if not moves.change[k] < -IMPROVES * f:
            return None
        trial = q.copy()
        trial[moves.asset[k]] += moves.step[k]
        if feasible(case, trial) and objective(case, trial) < f * (1 - IMPROVES):
            return trial
    return None


def best_pair(case: Case, q: np.ndarray, f: float, limit: int | None = None) -> np.ndarray | None:
    """The best improving exchange of one share each of two assets that keeps every limit (every
    pair; candidates in order of their priced change, each checked exactly)."""
    moves = moves_at(case, q)
    total = pair_changes(case, moves)
    flat = total.ravel()
    candidates = np.flatnonzero(flat < -IMPROVES * f)
    width = total.shape[1]
    # Cash: a pair whose buys exceed the cash cannot be taken (the common block), filtered at once.
    trade = (q - case.held) * case.prices
    cash_left = case.cash - trade.sum() - case.rate * np.abs(trade).sum()
    spend = moves.step * case.prices[moves.asset] + moves.cost
    a, b = candidates // width, candidates % width
    candidates = candidates[spend[a] + spend[b] <= cash_left + SLACK * case.r]
    for k in candidates[np.argsort(flat[candidates])][:limit]:
        trial = q.copy()
        trial[moves.asset[k // width]] += moves.step[k // width]
        trial[moves.asset[k % width]] += moves.step[k % width]
        if feasible(case, trial) and objective(case, trial) < f * (1 - IMPROVES):
            return trial
    return None


def local_search(case: Case, q: np.ndarray) -> tuple[np.ndarray, int]:
    """The best improving single-share move, else the best improving pair, until neither."""
    if not feasible(case, q):
        raise ValueError("local search from an infeasible start")
    steps = 0
    while True:
        f = objective(case, q)
        nxt = best_single(case, q, f)
        if nxt is None:
            nxt = best_pair(case, q, f)
        if nxt is None:
            return q, steps
        q, steps = nxt, steps + 1
