"""Tax-lot instances and an independent reference model of tax-aware rebalancing (issue 12).

Instances (:class:`TaxInstance`): plain arrays of prices, targets, cash and tax lots, turned into a
finwiz request by :meth:`TaxInstance.config`. Two sources:

* :func:`random_instance`: small seeded instances (5-12 assets, 2-6 lots each) that read no shared
  data, for ``tests/optimizer/tax/test_tax_reference.py``;
* :func:`history_instance`: lot histories on the shared 431-asset returns (pass the frame that
  ``benchmarks/conftest.py`` loads): monthly purchases over the years before ``as_of`` at the
  historical prices rebuilt from the returns, so lots carry real gains and losses, short- and
  long-term, on a drifted account with a target.

The reference (:func:`reference_optimum`, :func:`evaluate`) is written from the issue's model, not
from finwiz's code, in plain numpy and cvxpy. ``MINIMIZE_COSTS`` with zero costs and no minimum
trade; ``V = cash + p'x`` (x the shares held), ``b``/``s`` shares bought/sold, ``q_l`` shares sold
from lot ``l`` (``s = A q``, ``0 <= q <= n``)::

    min  ||w - t||^2 + (w_c - t_c)^2 + tax_weight * T / V
    w = (x + b - s) o p / V,  w_c = (cash - p'(b - s)) / V >= 0,  T = sum_l rate_l (p_l - c_l) q_l
    sum_l (p_l - c_l) q_l <= max_realized_gain,  b_i <= M_i y_i,  s_i <= x_i (1 - y_i),  y binary

``rate_l`` is the long-term rate when ``(as_of - acquired_l).days > long_term_days``. Wash sales as
read here: no buy of an asset sold at a loss within ``wash_sale_days`` before ``as_of``; no lot of an
asset bought within the window (a recent purchase, or a lot acquired then) sold at a loss (a loss
lot: ``c_l > p``). Whole shares make ``b``
and ``q`` integer (lots hold whole shares). Solved as an MIQP by SCIP.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

SHORT_TERM_RATE = 0.37
LONG_TERM_RATE = 0.20
LONG_TERM_DAYS = 365
WASH_SALE_DAYS = 30
OBJECTIVE_SCALE = 1e4  # SCIP's feasibility tolerance is absolute: keep the objective's epigraph row near 1
CENT = 0.005  # half a cent: money figures agree "to the cent"


@dataclass(frozen=True)
class RecentTrade:
    """A trade within the wash-sale window: ``loss`` > 0 only for a sale at a loss."""

    symbol: str
    day: date
    shares: float
    loss: float = 0.0
    lot_id: str | None = None


@dataclass(frozen=True)
class TaxInstance:
    """A taxable account as arrays: assets ``symbols`` at ``prices``, lots by asset index."""

    symbols: tuple[str, ...]
    prices: np.ndarray
    target: np.ndarray  # fractions of V, sums to 1 - cash target
    cash: float
    lot_asset: np.ndarray  # asset index of each lot
    lot_shares: np.ndarray
    lot_basis: np.ndarray  # cost basis per share
    lot_acquired: tuple[date, ...]
    as_of: date
    fractional: bool = True
    tax_weight: float = 1.0
    max_realized_gain: float | None = None
    short_term_rate: float = SHORT_TERM_RATE
    long_term_rate: float = LONG_TERM_RATE
    long_term_days: int = LONG_TERM_DAYS
    wash_sale_days: int = WASH_SALE_DAYS
    recent_sales: tuple[RecentTrade, ...] = ()
    recent_purchases: tuple[RecentTrade, ...] = ()
    tax_model: str = "linear"  # "netting": the year's tax with the trades minus without (netting_tax)
    realized_short_ytd: float = 0.0
    realized_long_ytd: float = 0.0
    loss_carryforward: float = 0.0
    ordinary_loss_limit: float = 3000.0
    pay_tax_from_cash: bool = False  # cash after = cash - trades - tax >= 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_(self, **changes: Any) -> TaxInstance:
        return dataclasses.replace(self, **changes)

    @property
    def n(self) -> int:
        return len(self.symbols)

    @property
    def lots(self) -> int:
        return len(self.lot_shares)

    @property
    def lot_ids(self) -> list[str]:
        counts: dict[int, int] = {}
        ids = []
        for i in self.lot_asset.tolist():
            counts[i] = counts.get(i, 0) + 1
            ids.append(f"{self.symbols[i]}#{counts[i]}")
        return ids

    @property
    def shares(self) -> np.ndarray:
        return np.bincount(self.lot_asset, weights=self.lot_shares, minlength=self.n)

    @property
    def value(self) -> float:
        return float(self.shares @ self.prices) + self.cash

    @property
    def lot_price(self) -> np.ndarray:
        return self.prices[self.lot_asset]

    @property
    def lot_gain_per_share(self) -> np.ndarray:
        return self.lot_price - self.lot_basis

    @property
    def long_term(self) -> np.ndarray:
        return np.array([(self.as_of - a).days > self.long_term_days for a in self.lot_acquired])

    @property
    def lot_rate(self) -> np.ndarray:
        return np.where(self.long_term, self.long_term_rate, self.short_term_rate)

    def year_tax(self, short: float, long: float) -> float:
        """The year's tax with ``short`` / ``long`` more net gains (:func:`netting_tax`, the ordinary
        rate the short-term rate)."""
        s = self.realized_short_ytd + short
        g = self.realized_long_ytd - self.loss_carryforward + long
        return netting_tax(
            s, g, self.short_term_rate, self.long_term_rate, self.short_term_rate, self.ordinary_loss_limit
        )

    def _recent(self, trades: tuple[RecentTrade, ...], losses_only: bool) -> np.ndarray:
        blocked = np.zeros(self.n, bool)
        for t in trades:
            if (self.as_of - t.day).days <= self.wash_sale_days and (t.loss > 0 or not losses_only):
                blocked[self.symbols.index(t.symbol)] = True
        return blocked

    @property
    def no_buy(self) -> np.ndarray:
        """Assets sold at a loss within the window: not bought."""
        return self._recent(self.recent_sales, losses_only=True)

    @property
    def blocked_loss_lots(self) -> np.ndarray:
        """Loss lots of assets bought within the window (a recent purchase, or a lot acquired in
        the window): not sold."""
        bought = self._recent(self.recent_purchases, losses_only=False)
        fresh = np.array([(self.as_of - a).days <= self.wash_sale_days for a in self.lot_acquired], bool)
        bought |= np.bincount(self.lot_asset[fresh], minlength=self.n) > 0
        return bought[self.lot_asset] & (self.lot_gain_per_share < 0)

    def config(self, *, taxed: bool = True, **overrides: Any) -> Any:
        """The finwiz request: MINIMIZE_COSTS, zero costs, no minimum trade, tolerance 0."""
        from finwiz import Holding, PortfolioConfiguration, TaxLot, TaxSettings
        from finwiz.schemas import RecentPurchase, RecentSale

        ids = self.lot_ids
        holdings = []
        for i, symbol in enumerate(self.symbols):
            members = np.flatnonzero(self.lot_asset == i)
            if len(members) == 0:
                continue
            lots = [
                TaxLot(
                    shares=float(self.lot_shares[k]),
                    cost_basis=float(self.lot_basis[k]),
                    acquired=self.lot_acquired[k],
                    lot_id=ids[k],
                )
                for k in members
            ]
            holdings.append(Holding(symbol=symbol, shares=float(self.lot_shares[members].sum()), lots=lots))
        tax = None
        if taxed:
            tax = TaxSettings(
                as_of=self.as_of,
                short_term_rate=self.short_term_rate,
                long_term_rate=self.long_term_rate,
                long_term_days=self.long_term_days,
                wash_sale_days=self.wash_sale_days,
                max_realized_gain=self.max_realized_gain,
                tax_weight=self.tax_weight,
                tax_model=self.tax_model,
                realized_short_ytd=self.realized_short_ytd,
                realized_long_ytd=self.realized_long_ytd,
                loss_carryforward=self.loss_carryforward,
                ordinary_loss_limit=self.ordinary_loss_limit,
                pay_tax_from_cash=self.pay_tax_from_cash,
                recent_sales=[
                    RecentSale(symbol=t.symbol, date=t.day, shares=t.shares, loss=t.loss) for t in self.recent_sales
                ],
                recent_purchases=[
                    RecentPurchase(symbol=t.symbol, date=t.day, shares=t.shares, lot_id=t.lot_id)
                    for t in self.recent_purchases
                ],
            )
        fields: dict[str, Any] = {
            "holdings": holdings,
            "target_weights": {s: float(w) for s, w in zip(self.symbols, self.target, strict=True) if w > 0},
            "cash": self.cash,
            "method": "minimize_costs",
            "tolerance": 0.0,
            "transaction_cost_rate": 0.0,
            "min_trade_size": 0.0,
            "allow_fractional_shares": self.fractional,
            "tax": tax,
        }
        fields.update(overrides)
        return PortfolioConfiguration(**fields)

    def price_map(self) -> dict[str, float]:
        return dict(zip(self.symbols, self.prices.tolist(), strict=True))


# --------------------------------------------------------------------------- the netting rule


def netting_tax(s: float, g: float, rs: float, rl: float, ro: float, limit: float) -> float:
    """The year's tax on net short-term ``s`` and net long-term ``g`` (carry-overs in them), written
    from Schedule D as one formula: a net gain is taxed at the rate of the term it is left in --
    the short-term rate on ``min(s, s + g)`` when positive, the long-term rate on ``min(g, s + g)``
    when positive -- and a net loss saves ``ro`` on at most ``limit`` of it."""
    t = s + g
    return rs * max(0.0, min(s, t)) + rl * max(0.0, min(g, t)) - ro * min(limit, max(0.0, -t))


def worksheet(
    st_net: Decimal, lt_net: Decimal, rs: Decimal, rl: Decimal, ro: Decimal, limit: Decimal, cs: Decimal, cl: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """Schedule D lines 7, 15, 16, 21 and the Capital Loss Carryover Worksheet, line by line:
    ``(tax, short-term carry-over, long-term carry-over)``."""
    line7 = st_net - cs  # net short-term gain or (loss), the carry-over included
    line15 = lt_net - cl  # net long-term
    line16 = line7 + line15
    if line16 > 0:
        if line7 > 0 and line15 > 0:
            tax = rs * line7 + rl * line15
        elif line15 > 0:  # the short-term loss reduced the long-term gain
            tax = rl * line16
        else:
            tax = rs * line16
        return tax, Decimal(0), Decimal(0)
    if line16 == 0:
        return Decimal(0), Decimal(0), Decimal(0)
    line21 = min(-line16, limit)  # the deduction against ordinary income
    # Worksheet, short-term part (lines 4-8) and long-term part (lines 9-13).
    w4 = line21
    w5 = -line7 if line7 < 0 else Decimal(0)
    w6 = line15 if line15 > 0 else Decimal(0)
    w7 = w4 + w6
    short_carry = max(w5 - w7, Decimal(0))
    w9 = -line15 if line15 < 0 else Decimal(0)
    w10 = line7 if line7 > 0 else Decimal(0)
    w11 = max(w4 - w5, Decimal(0))
    w12 = w10 + w11
    long_carry = max(w9 - w12, Decimal(0))
    return -ro * line21, short_carry, long_carry


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """A trade list (shares bought/sold per asset, sold per lot) scored in the reference model."""

    objective: float
    distance2: float  # ||w - t||^2 + (w_c - t_c)^2
    tax: float
    net_gain: float
    gains: float  # realised gains (>= 0)
    losses: float  # realised losses, a magnitude (the harvested losses)
    short_term_net: float
    long_term_net: float
    lot_gain: np.ndarray
    violations: list[str]

    @property
    def distance(self) -> float:
        return float(np.sqrt(self.distance2))


def evaluate(inst: TaxInstance, buy: np.ndarray, sell: np.ndarray, lot_sold: np.ndarray) -> Evaluation:
    """Score ``(buy, sell, lot_sold)`` in the reference model and list every limit it breaks."""
    p, v = inst.prices, inst.value
    after = inst.shares + buy - sell
    trade = float(p @ (buy - sell))
    w = after * p / v
    w_c = (inst.cash - trade) / v
    t_c = 1.0 - float(inst.target.sum())
    distance2 = float(np.sum((w - inst.target) ** 2) + (w_c - t_c) ** 2)
    lot_gain = inst.lot_gain_per_share * lot_sold
    long = inst.long_term
    tax = float(inst.lot_rate @ lot_gain)
    if inst.tax_model == "netting":
        tax = inst.year_tax(float(lot_gain[~long].sum()), float(lot_gain[long].sum())) - inst.year_tax(0.0, 0.0)
    violations = []
    share_tol = 1e-6 * max(1.0, float(np.abs(inst.lot_shares).max()))
    if (buy < -share_tol).any() or (lot_sold < -share_tol).any():
        violations.append("negative trade")
    if (lot_sold > inst.lot_shares + share_tol).any():
        violations.append("a lot sold beyond its shares")
    by_asset = np.bincount(inst.lot_asset, weights=lot_sold, minlength=inst.n)
    if np.abs(by_asset - sell).max(initial=0.0) > share_tol:
        violations.append("lot sales do not add up to the asset's sale")
    if ((buy > share_tol) & (sell > share_tol)).any():
        violations.append("an asset both bought and sold")
    if w_c < -1e-9:
        violations.append(f"cash below zero ({inst.cash - trade:.2f})")
    if inst.pay_tax_from_cash and inst.cash - trade - tax < -CENT:
        violations.append(f"cash below zero after the tax ({inst.cash - trade - tax:.2f})")
    if inst.max_realized_gain is not None and lot_gain.sum() > inst.max_realized_gain + CENT:
        violations.append(f"net realised gain {lot_gain.sum():.2f} above the budget {inst.max_realized_gain:.2f}")
    if (buy[inst.no_buy] > share_tol).any():
        violations.append("wash sale: bought an asset sold at a loss in the window")
    if (lot_sold[inst.blocked_loss_lots] > share_tol).any():
        violations.append("wash sale: sold a loss lot of an asset bought in the window")
    if not inst.fractional:
        whole = np.concatenate([buy, lot_sold])
        if np.abs(whole - np.round(whole)).max(initial=0.0) > 1e-9:
            violations.append("fractional shares in a whole-share request")
    return Evaluation(
        objective=distance2 + inst.tax_weight * tax / v,
        distance2=distance2,
        tax=tax,
        net_gain=float(lot_gain.sum()),
        gains=float(lot_gain[lot_gain > 0].sum()),
        losses=float(-lot_gain[lot_gain < 0].sum()),
        short_term_net=float(lot_gain[~long].sum()),
        long_term_net=float(lot_gain[long].sum()),
        lot_gain=lot_gain,
        violations=violations,
    )


def relieve(inst: TaxInstance, sell: np.ndarray, policy: str = "fifo") -> np.ndarray:
    """Shares sold from each lot when an asset's sale relieves its lots by ``policy``: ``fifo``
    (oldest first, the brokers' default) or ``best`` (lowest tax per share first)."""
    lot_sold = np.zeros(inst.lots)
    acquired = np.array([a.toordinal() for a in inst.lot_acquired])
    tax_per_share = inst.lot_rate * inst.lot_gain_per_share
    for i in np.flatnonzero(sell > 0):
        members = np.flatnonzero(inst.lot_asset == i)
        key = acquired[members] if policy == "fifo" else tax_per_share[members]
        left = float(sell[i])
        for k in members[np.argsort(key, kind="stable")]:
            take = min(left, float(inst.lot_shares[k]))
            lot_sold[k] = take
            left -= take
            if left <= 0:
                break
    return lot_sold


def trades_of(inst: TaxInstance, result: Any, policy: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(buy, sell, lot_sold)`` of a finwiz result: lot sales from ``trade.lots`` (by lot id), or
    relieved by ``policy`` (:func:`relieve`) for a tax-blind result, whose sells list no lots."""
    index = {s: i for i, s in enumerate(inst.symbols)}
    lot_index = {lot_id: k for k, lot_id in enumerate(inst.lot_ids)}
    buy, sell, lot_sold = np.zeros(inst.n), np.zeros(inst.n), np.zeros(inst.lots)
    for trade in result.trades:
        side = str(getattr(trade.action, "value", trade.action)).lower()
        if side == "buy":
            buy[index[trade.symbol]] += trade.shares
        elif side == "sell":
            sell[index[trade.symbol]] += trade.shares
            for sale in trade.lots:
                lot_sold[lot_index[sale.lot_id]] += sale.shares
    if policy is not None:
        lot_sold = relieve(inst, sell, policy)
    return buy, sell, lot_sold


# --------------------------------------------------------------------------- the reference MIQP


@dataclass
class ReferenceAnswer:
    buy: np.ndarray
    sell: np.ndarray
    lot_sold: np.ndarray
    evaluation: Evaluation
    status: str
    proven: bool  # SCIP proved optimality within a relative gap of 1e-6 (else: its best answer in the time limit)
    seconds: float
    bound: float | None = None  # SCIP's lower bound on the optimum

    @property
    def objective(self) -> float:
        return self.evaluation.objective


def _model(
    inst: TaxInstance, sides: np.ndarray | None = None
) -> tuple[cp.Problem, cp.Variable, cp.Variable, cp.Variable | None]:
    """The reference problem; ``sides`` (1 buy, 0 sell, per asset) fixes the side instead of ``y``."""
    p, v, x = inst.prices, inst.value, inst.shares
    integer = not inst.fractional
    most = np.floor(v / p) + 1.0  # no asset can be bought beyond the account's value
    # finite bounds on every variable (cvxpy's bound propagation warns on inf x 0 otherwise)
    b = cp.Variable(inst.n, integer=integer, bounds=[np.zeros(inst.n), most])
    q = cp.Variable(inst.lots, integer=integer, bounds=[np.zeros(inst.lots), inst.lot_shares])
    rows = np.zeros((inst.n, inst.lots))
    rows[inst.lot_asset, np.arange(inst.lots)] = 1.0
    s = rows @ q
    y = cp.Variable(inst.n, boolean=True) if sides is None else None
    side = y if y is not None else sides
    w = cp.multiply(p / v, x + b - s)
    trade = p @ b - p @ s
    gain = cp.multiply(inst.lot_gain_per_share, q)
    constraints = [inst.cash - trade >= 0, b <= cp.multiply(most, side), s <= cp.multiply(x, 1 - side)]
    if inst.max_realized_gain is not None:
        constraints.append(cp.sum(gain) <= inst.max_realized_gain)
    if inst.no_buy.any():
        constraints.append(b[np.flatnonzero(inst.no_buy)] == 0)
    if inst.blocked_loss_lots.any():
        constraints.append(q[np.flatnonzero(inst.blocked_loss_lots)] == 0)
    t_c = 1.0 - float(inst.target.sum())
    tax = inst.lot_rate @ gain
    if inst.tax_model == "netting":
        tax = _netting_rows(inst, gain, constraints)
    if inst.pay_tax_from_cash:
        constraints.append(inst.cash - trade - tax >= 0)
    objective = (
        cp.sum(cp.square(w - inst.target)) + cp.square((inst.cash - trade) / v - t_c) + inst.tax_weight * tax / v
    )
    return cp.Problem(cp.Minimize(OBJECTIVE_SCALE * objective), constraints), b, q, y


def _netting_rows(inst: TaxInstance, gain: cp.Expression, constraints: list[cp.Constraint]) -> cp.Expression:
    """:func:`netting_tax` of the year's nets with the trades, less without, as a MIP: ``u >=
    min(s, t)^+`` and ``v >= min(g, t)^+`` by a binary each (minimised, they meet their bound),
    the deduction ``d <= min(limit, (-t)^+)`` by a third (maximised, it meets its bound)."""
    long = inst.long_term
    s = inst.realized_short_ytd + cp.sum(gain[np.flatnonzero(~long)]) if (~long).any() else inst.realized_short_ytd
    g0 = inst.realized_long_ytd - inst.loss_carryforward
    g = g0 + cp.sum(gain[np.flatnonzero(long)]) if long.any() else cp.Constant(g0)
    t = s + g
    big = (
        2.0 * (float(np.abs(inst.lot_gain_per_share) @ inst.lot_shares) + abs(inst.realized_short_ytd) + abs(g0)) + 1.0
    )
    u, w, d = (cp.Variable(nonneg=True) for _ in range(3))
    a, b, c = (cp.Variable(boolean=True) for _ in range(3))
    constraints += [u >= s - big * a, u >= t - big * (1 - a), w >= g - big * b, w >= t - big * (1 - b)]
    constraints += [d <= inst.ordinary_loss_limit, d <= big * c, d <= -t + big * (1 - c)]
    rs, rl = inst.short_term_rate, inst.long_term_rate
    return rs * u + rl * w - rs * d - inst.year_tax(0.0, 0.0)


def _answer(inst: TaxInstance, b: cp.Variable, q: cp.Variable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buy, lot_sold = np.maximum(np.asarray(b.value, float), 0.0), np.maximum(np.asarray(q.value, float), 0.0)
    if not inst.fractional:
        buy, lot_sold = np.round(buy), np.round(lot_sold)
    sell = np.bincount(inst.lot_asset, weights=lot_sold, minlength=inst.n)
    return buy, sell, lot_sold


def fixed_sides_optimum(inst: TaxInstance, sides: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The convex problem with each asset's side fixed (fractional shares), solved by Clarabel:
    ``(objective, buy, sell, lot_sold)``, objective ``inf`` when infeasible."""
    problem, b, q, _ = _model(inst.with_(fractional=True), sides.astype(float))
    problem.solve(solver=cp.CLARABEL)
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return np.inf, np.zeros(inst.n), np.zeros(inst.n), np.zeros(inst.lots)
    buy, sell, lot_sold = _answer(inst.with_(fractional=True), b, q)
    return evaluate(inst, buy, sell, lot_sold).objective, buy, sell, lot_sold


def reference_optimum(inst: TaxInstance, time_limit: float = 30.0) -> ReferenceAnswer:
    """The MIQP optimum by SCIP (``time_limit`` seconds). With fractional shares the answer is
    polished: the convex problem re-solved by Clarabel with SCIP's sides fixed, the better kept."""
    start = time.perf_counter()
    problem, b, q, y = _model(inst)
    params = {"limits/time": time_limit, "limits/gap": 1e-6, "numerics/feastol": 1e-8}  # default 1e-6: 5e-5 off
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" at the gap limit: read from scip_status
        problem.solve(solver=cp.SCIP, scip_params=params)
    if b.value is None or y is None:
        raise RuntimeError(f"reference MIQP: SCIP returned {problem.status} with no solution")
    stats = (problem.solver_stats.extra_stats or {}) if problem.solver_stats else {}
    scip_status = str(stats.get("scip_status", problem.status))
    model = stats.get("model")
    bound = None
    if model is not None:  # SCIP leaves out the constant cvxpy keeps apart: put it back
        offset = float(problem.value) - float(model.getPrimalbound())
        bound = (float(model.getDualbound()) + offset) / OBJECTIVE_SCALE
    buy, sell, lot_sold = _answer(inst, b, q)
    best = evaluate(inst, buy, sell, lot_sold)
    if inst.fractional and inst.tax_model == "linear":  # the fixed-side problem is convex
        sides = (buy > sell).astype(float)
        sides[(buy <= 0) & (sell <= 0)] = np.round(np.asarray(y.value, float))[(buy <= 0) & (sell <= 0)]
        objective, pb, ps, pq = fixed_sides_optimum(inst, sides)
        polished = evaluate(inst, pb, ps, pq)
        if objective < best.objective and not polished.violations:
            buy, sell, lot_sold, best = pb, ps, pq, polished
    return ReferenceAnswer(
        buy=buy,
        sell=sell,
        lot_sold=lot_sold,
        evaluation=best,
        status=scip_status,
        proven=scip_status in ("optimal", "gaplimit"),
        bound=bound,
        seconds=time.perf_counter() - start,
    )


def best_single_move(inst: TaxInstance, buy: np.ndarray, lot_sold: np.ndarray) -> float:
    """Whole shares: the largest decrease of the objective that one share more or less bought of
    an asset, or sold from a lot, gives while keeping every limit (0 when none does): the local
    check of an MIQP answer that does not rest on SCIP's tolerances."""
    base = evaluate(inst, buy, np.bincount(inst.lot_asset, weights=lot_sold, minlength=inst.n), lot_sold)
    best = 0.0
    for which, size in (("buy", inst.n), ("lot", inst.lots)):
        for k in range(size):
            for step in (-1.0, 1.0):
                b, q = buy.copy(), lot_sold.copy()
                (b if which == "buy" else q)[k] += step
                moved = evaluate(inst, b, np.bincount(inst.lot_asset, weights=q, minlength=inst.n), q)
                if not moved.violations:
                    best = max(best, base.objective - moved.objective)
    return best


def enumerated_optimum(inst: TaxInstance) -> float:
    """Fractional shares only: the optimum over every buy/sell side pattern, each a convex QP (the
    exhaustive check of the MIQP model; 2^n solves, for a handful of assets)."""
    if not inst.fractional:
        raise ValueError("side enumeration is exact only with fractional shares")
    best = np.inf
    for pattern in itertools.product((0.0, 1.0), repeat=inst.n):
        best = min(best, fixed_sides_optimum(inst, np.array(pattern))[0])
    return best


# --------------------------------------------------------------------------- generated instances

RANDOM_AS_OF = date(2024, 6, 28)


def random_instance(
    seed: int,
    *,
    assets: tuple[int, int] = (5, 12),
    lots: tuple[int, int] = (2, 6),
    fractional: bool = True,
    wash_sales: bool = False,
    tax_weight: float = 1.0,
    value: float = 100_000.0,
) -> TaxInstance:
    """A small seeded account (no shared data): random prices, lots bought over five years at bases
    spread around today's price (about two in three at a gain), a drifted book and its target. With
    ``wash_sales``: the most underweight asset was sold at a loss 10 days ago (so it cannot be
    bought) and the most overweight one with a loss lot was bought 5 days ago (a new lot; its loss
    lots cannot be sold)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(assets[0], assets[1] + 1))
    symbols = tuple(f"A{i:02d}" for i in range(n))
    prices = np.round(rng.uniform(20.0, 300.0, n), 2)
    current = rng.dirichlet(np.full(n, 3.0)) * rng.uniform(0.93, 0.99)
    lot_asset, lot_shares, lot_basis, acquired = [], [], [], []
    for i in range(n):
        k = int(rng.integers(lots[0], lots[1] + 1))
        split = rng.dirichlet(np.ones(k)) * current[i] * value / prices[i]
        split = np.round(split, 3) if fractional else np.maximum(np.floor(split), 1.0)
        for shares in split:
            lot_asset.append(i)
            lot_shares.append(float(max(shares, 0.001)))
            lot_basis.append(round(float(prices[i] * np.exp(rng.normal(-0.15, 0.3))), 2))  # mostly gains
            acquired.append(RANDOM_AS_OF - timedelta(days=int(rng.integers(5, 5 * 365))))
    held = np.bincount(np.array(lot_asset), weights=np.array(lot_shares), minlength=n)
    cash = round(float(value - held @ prices), 2)
    if cash < 0:
        cash = round(0.02 * value, 2)
    total = float(held @ prices) + cash
    drift = held * prices / total * np.exp(rng.normal(0.0, 0.35, n))
    target = drift / drift.sum() * 0.98
    inst = TaxInstance(
        symbols=symbols,
        prices=prices,
        target=target,
        cash=cash,
        lot_asset=np.array(lot_asset),
        lot_shares=np.array(lot_shares),
        lot_basis=np.array(lot_basis),
        lot_acquired=tuple(acquired),
        as_of=RANDOM_AS_OF,
        fractional=fractional,
        tax_weight=tax_weight,
    )
    return _with_wash_sales(inst, rng) if wash_sales else inst


def _with_wash_sales(inst: TaxInstance, rng: np.random.Generator) -> TaxInstance:
    gap = inst.shares * inst.prices / inst.value - inst.target
    under = int(np.argmin(gap))
    has_loss = np.bincount(inst.lot_asset, weights=inst.lot_gain_per_share < 0, minlength=inst.n) > 0
    over = int(np.argmax(np.where(has_loss & (np.arange(inst.n) != under), gap, -np.inf)))
    sale = RecentTrade(inst.symbols[under], inst.as_of - timedelta(days=10), 10.0, loss=round(rng.uniform(100, 900), 2))
    new_shares = 1.0 if not inst.fractional else 1.5
    lot_id = f"{inst.symbols[over]}#{int((inst.lot_asset == over).sum()) + 1}"
    purchase = RecentTrade(inst.symbols[over], inst.as_of - timedelta(days=5), new_shares, lot_id=lot_id)
    cash = round(inst.cash - new_shares * float(inst.prices[over]), 2)
    return inst.with_(
        lot_asset=np.append(inst.lot_asset, over),
        lot_shares=np.append(inst.lot_shares, new_shares),
        lot_basis=np.append(inst.lot_basis, round(float(inst.prices[over]) * 1.01, 2)),
        lot_acquired=(*inst.lot_acquired, purchase.day),
        cash=max(cash, 0.0),
        recent_sales=(sale,),
        recent_purchases=(purchase,),
    )


def with_binding_budget(inst: TaxInstance, fraction: float = 0.3, time_limit: float = 30.0) -> TaxInstance:
    """``inst`` with a gain budget its unconstrained reference optimum breaks: ``fraction`` of the
    net gain it realises, or, when it realises a net loss, that loss plus a quarter of the losses
    still available in the loss lots of assets it does not buy (a harvest it must make)."""
    free = reference_optimum(inst.with_(max_realized_gain=None), time_limit)
    net = free.evaluation.net_gain
    if net > 1.0:
        return inst.with_(max_realized_gain=round(fraction * net, 2))
    open_loss = np.maximum(-inst.lot_gain_per_share, 0.0) * (inst.lot_shares - free.lot_sold)
    open_loss[(free.buy[inst.lot_asset] > 0) | inst.blocked_loss_lots] = 0.0
    return inst.with_(max_realized_gain=round(net - 0.25 * float(open_loss.sum()), 2))


# --------------------------------------------------------------------------- lot histories on real returns


def price_history(returns: pd.DataFrame, last: np.ndarray) -> pd.DataFrame:
    """Prices rebuilt from daily returns so that the last row equals ``last``."""
    growth = (1.0 + returns).cumprod()
    return growth / growth.iloc[-1] * last


def _monthly_lots(
    history: pd.DataFrame,
    shares: np.ndarray,
    lots: tuple[int, int],
    years: int,
    fractional: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[date, ...]]:
    """Each held asset split into lots bought on distinct month-ends over the last ``years`` years,
    at that day's historical price."""
    as_of = history.index[-1]
    window = history.loc[history.index > as_of - pd.DateOffset(years=years)]
    month_ends = window.groupby(window.index.to_period("M")).tail(1).iloc[:-1]  # the last month is as_of's
    lot_asset, lot_shares, lot_basis, acquired = [], [], [], []
    for i in np.flatnonzero(shares > 0):
        k = int(rng.integers(lots[0], lots[1] + 1))
        if not fractional:
            k = min(k, int(shares[i]))
        months = np.sort(rng.choice(len(month_ends), k, replace=False))
        if fractional:
            split = np.round(rng.dirichlet(np.full(k, 2.0)) * shares[i], 4)
            split[-1] = round(float(shares[i] - split[:-1].sum()), 4)
        else:
            split = 1.0 + rng.multinomial(int(shares[i]) - k, rng.dirichlet(np.full(k, 2.0))).astype(float)
        for m, piece in zip(months, split, strict=True):
            if piece <= 0:
                continue
            lot_asset.append(i)
            lot_shares.append(float(piece))
            lot_basis.append(round(float(month_ends.iloc[m, i]), 2))
            acquired.append(month_ends.index[m].date())
    return np.array(lot_asset), np.array(lot_shares), np.array(lot_basis), tuple(acquired)


def history_instance(
    returns: pd.DataFrame,
    prices: np.ndarray,
    target: np.ndarray,
    shares: np.ndarray,
    cash: float,
    *,
    lots: tuple[int, int] = (8, 12),
    years: int = 5,
    fractional: bool = False,
    seed: int = 0,
    **options: Any,
) -> TaxInstance:
    """The account ``shares`` (+ ``cash``) with lot histories rebuilt from ``returns`` (all days
    up to ``as_of``, the last row): monthly purchases over ``years`` years at historical prices."""
    history = price_history(returns, prices)
    rng = np.random.default_rng(seed)
    shares = shares if fractional else np.floor(shares)
    lot_asset, lot_shares, lot_basis, acquired = _monthly_lots(history, shares, lots, years, fractional, rng)
    held = np.bincount(lot_asset, weights=lot_shares, minlength=len(prices))
    return TaxInstance(
        symbols=tuple(str(s) for s in returns.columns),
        prices=np.asarray(prices, float),
        target=np.asarray(target, float),
        cash=float(cash + (shares - held) @ prices),  # shares no lot could hold (none, normally) as cash
        lot_asset=lot_asset,
        lot_shares=lot_shares,
        lot_basis=lot_basis,
        lot_acquired=acquired,
        as_of=history.index[-1].date(),
        fractional=fractional,
        **options,
    )


def small_history_instance(
    returns: pd.DataFrame,
    n: int,
    seed: int,
    *,
    value: float = 250_000.0,
    lots: tuple[int, int] = (3, 10),
    fractional: bool = False,
    **options: Any,
) -> TaxInstance:
    """``n`` random assets of ``returns`` (a $250k account, 3-10 lots each, drifted from a
    Dirichlet target with 2 % cash), the exact-MIQP comparison's instance."""
    rng = np.random.default_rng(3000 + seed)
    pick = np.sort(rng.choice(returns.shape[1], n, replace=False))
    frame = returns.iloc[:, pick]
    last = np.round(rng.uniform(20.0, 300.0, n), 2)
    target = rng.dirichlet(np.full(n, 3.0)) * 0.98
    drifted = target * np.exp(rng.normal(0.0, 0.3, n))
    current = drifted / drifted.sum() * 0.97
    shares = current * value / last
    shares = np.round(shares, 4) if fractional else np.floor(shares)
    cash = value - float(shares @ last)
    return history_instance(frame, last, target, shares, cash, lots=lots, fractional=fractional, seed=seed, **options)
