"""An independent whole-share model, written from the README's definitions (not from finwiz's code).

``Instance`` is a small account (drifted holdings, limits that bind); ``generate(seed)`` makes one
from a seeded generator that knows nothing of finwiz's rounding. ``objective(instance, shares)``
prices net share trades by the README's objective, ``violations`` lists the limits they break, and
``solve_miqp`` solves the whole-share problem exactly (cvxpy + SCIP), so tests and benchmarks can
compare finwiz's answer with the true optimum.

The objective, as the README states it (weights are fractions of ``R = V + cash flow``, cash
before costs): ``sum_i (w_i - t_i)^2 + (cash - cash*)^2 + costs / R`` (+ ``lambda x #trades``
for the default strategy, ``lambda = 0.1 x mean_i (x0_i - t_i)^2``) with
``w_i = (held_i + T_i) / R``, ``cash = (cash0 + F - sum T) / R``, ``cash* = 1 - sum t``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Instance",
    "config_of",
    "from_cash",
    "generate",
    "objective",
    "single_and_pair_gains",
    "solve_miqp",
    "triple_gain",
    "violations",
]

_SECTORS = ("Tech", "Health", "Energy", "Finance", "Industrials", "Utilities")


@dataclass
class Instance:
    symbols: list[str]
    prices: np.ndarray
    held: np.ndarray  # shares held
    cash: float
    target: np.ndarray
    sectors: list[str]
    method: str = "minimize_costs"
    rate: float = 0.001
    min_trade: float = 0.0
    lots: dict[int, int] = field(default_factory=dict)  # asset -> lot size (shares)
    cash_flow: float = 0.0
    tolerance: float = 0.0
    max_position: float | None = None
    max_sector: float | None = None
    max_turnover: float | None = None
    no_sell: list[int] = field(default_factory=list)
    min_position: float = 0.0  # currency: every post-trade position is 0 or at least this

    @property
    def n(self) -> int:
        return len(self.symbols)

    @property
    def value(self) -> float:
        return float(self.held @ self.prices + self.cash)

    @property
    def ref(self) -> float:
        return self.value + self.cash_flow

    def lot(self) -> np.ndarray:
        return np.array([self.lots.get(i, 1) for i in range(self.n)], dtype=float)

    def frozen(self) -> np.ndarray:
        """Assets inside their band (not traded), unless above their own cap (README: Tolerance band)."""
        x0 = self.held * self.prices / self.ref
        cap = np.inf if self.max_position is None else self.max_position
        return (np.abs(x0 - self.target) <= self.tolerance) & (self.tolerance > 0) & ~(x0 > cap)

    def penalty(self) -> float:
        if self.method != "minimize_trades":
            return 0.0
        x0 = self.held * self.prices / self.ref
        return 0.1 * float(np.mean((x0 - self.target) ** 2))


def generate(seed: int, n: int | None = None, value: float | None = None, method: str | None = None) -> Instance:
    """A small drifted account whose limits bind at the continuous optimum (seeded)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(15, 41)) if n is None else n
    value = float(np.exp(rng.uniform(np.log(5e3), np.log(4e5)))) if value is None else value
    prices = np.round(np.exp(rng.uniform(np.log(5.0), np.log(900.0), n)), 2)
    sectors = [_SECTORS[i] for i in rng.integers(0, int(rng.integers(3, len(_SECTORS) + 1)), n)]
    target = rng.dirichlet(np.full(n, 2.0)) * (1.0 - rng.uniform(0.0, 0.03))
    drift = target * np.exp(rng.normal(0.0, 0.35, n))
    invested = 1.0 - rng.uniform(0.0, 0.08)
    held = np.floor(drift / drift.sum() * invested * value / prices)
    cash = float(round(value - held @ prices, 2))
    cash = max(cash, 0.0)
    inst = Instance([f"S{i:02d}" for i in range(n)], prices, held, cash, target, sectors)
    inst.method = method or ("minimize_costs" if rng.random() < 0.5 else "minimize_trades")
    inst.rate = float(rng.choice([0.0, 0.0005, 0.001, 0.002]))
    x0 = held * prices / inst.value
    kinds = rng.permutation(["position", "sector", "turnover", "min_trade", "lots", "flow", "band", "no_sell"])
    chosen = set(kinds[: int(rng.integers(2, 6))])
    if "flow" in chosen:
        inst.cash_flow = float(round(value * rng.uniform(-0.1, 0.15), 2))
    if "position" in chosen:
        inst.max_position = float(round(np.quantile(np.maximum(target, x0), 0.85), 4))
    if "sector" in chosen:
        by = {s: target[[k for k in range(n) if sectors[k] == s]].sum() for s in set(sectors)}
        inst.max_sector = float(round(max(by.values()) * rng.uniform(0.8, 0.97), 4))
    if "turnover" in chosen:
        inst.max_turnover = float(round(0.5 * np.abs(x0 - target).sum() * rng.uniform(0.4, 0.9), 4))
    if "min_trade" in chosen:
        inst.min_trade = float(round(value * rng.uniform(0.003, 0.02), 0))
    if "lots" in chosen:
        for i in rng.choice(n, size=max(1, n // 5), replace=False):
            inst.lots[int(i)] = int(rng.choice([5, 10, 25]))
    if "band" in chosen:
        inst.tolerance = float(round(np.median(np.abs(x0 - target)) * rng.uniform(0.3, 1.0), 5))
    if "no_sell" in chosen:
        cap = np.inf if inst.max_position is None else inst.max_position
        allowed = np.flatnonzero(held * prices / inst.ref <= cap)  # a capped asset must be sellable
        inst.no_sell = [int(i) for i in rng.choice(allowed, size=min(len(allowed), max(1, n // 8)), replace=False)]
    # Held lots are whole lots (a lot-size asset held in odd shares is its own question).
    before = inst.held @ inst.prices
    for i, size in inst.lots.items():
        inst.held[i] = np.floor(inst.held[i] / size) * size
    inst.cash = float(round(inst.cash + before - inst.held @ inst.prices, 2))
    return inst


def config_of(inst: Instance) -> tuple[Any, dict[str, float]]:
    """The finwiz request for ``inst``: (PortfolioConfiguration, prices)."""
    from finwiz import Holding, PortfolioConfiguration

    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=float(h)) for s, h in zip(inst.symbols, inst.held, strict=True) if h > 0],
        target_weights={s: float(t) for s, t in zip(inst.symbols, inst.target, strict=True)},
        cash=inst.cash,
        method=inst.method,
        tolerance=inst.tolerance,
        transaction_cost_rate=inst.rate,
        min_trade_size=inst.min_trade,
        lot_sizes={inst.symbols[i]: float(k) for i, k in inst.lots.items()},
        cash_flow=inst.cash_flow,
        max_position_weight=inst.max_position,
        max_sector_weight=inst.max_sector,
        sectors=dict(zip(inst.symbols, inst.sectors, strict=True)) if inst.max_sector is not None else {},
        max_turnover=inst.max_turnover,
        no_sell=[inst.symbols[i] for i in inst.no_sell],
        min_position_value=inst.min_position or None,
    )
    return config, {s: float(p) for s, p in zip(inst.symbols, inst.prices, strict=True)}


def objective(inst: Instance, shares: np.ndarray) -> float:
    """The README's objective at net share trades ``shares``."""
    trade = np.asarray(shares, float) * inst.prices
    r = inst.ref
    w = (inst.held * inst.prices + trade) / r
    cash = (inst.cash + inst.cash_flow - trade.sum()) / r
    cash_target = 1.0 - inst.target.sum()
    costs = inst.rate * np.abs(trade).sum()
    count = np.count_nonzero(np.abs(trade) >= 0.01)
    return float(((w - inst.target) ** 2).sum() + (cash - cash_target) ** 2 + costs / r + inst.penalty() * count)


def violations(inst: Instance, shares: np.ndarray, tol: float = 1e-7) -> list[str]:
    """The README limits broken by net share trades ``shares`` (empty: every limit holds)."""
    shares = np.asarray(shares, float)
    trade = shares * inst.prices
    r, v = inst.ref, inst.value
    costs = inst.rate * np.abs(trade).sum()
    post = r - costs
    x = inst.held * inst.prices + trade
    out = []
    lot = inst.lot()
    if np.any(np.abs(shares / lot - np.round(shares / lot)) > 1e-9):
        out.append("lots")
    if np.any(inst.held + shares < -1e-9):
        out.append("long_only")
    if inst.cash + inst.cash_flow - trade.sum() - costs < -tol * r:
        out.append("cash")
    traded = np.abs(trade) >= 0.01
    if np.any(traded & (np.abs(trade) < inst.min_trade - 1e-6)):
        out.append("min_trade")
    if np.any(traded[inst.frozen()]):
        out.append("band")
    if inst.no_sell and np.any(shares[inst.no_sell] < 0):
        out.append("no_sell")
    if inst.max_position is not None and np.any(x > inst.max_position * post + tol * r):
        out.append("position_cap")
    if inst.max_sector is not None:
        for s in set(inst.sectors):
            members = [i for i in range(inst.n) if inst.sectors[i] == s]
            if x[members].sum() > inst.max_sector * post + tol * r:
                out.append(f"sector_cap:{s}")
    if inst.max_turnover is not None and np.abs(trade).sum() / v > inst.max_turnover + tol:
        out.append("turnover")
    if np.any((np.abs(x) > 1e-9) & (np.abs(x) < inst.min_position * (1 - 1e-9))):
        out.append("min_position")
    return out


@dataclass(frozen=True)
class Optimum:
    shares: np.ndarray
    objective: float
    bound: float
    proven: bool
    seconds: float


def solve_miqp(inst: Instance, time_limit: float = 30.0, gap: float = 1e-5) -> Optimum:
    """The whole-share problem as a mixed-integer QP (cvxpy + SCIP): integer lot counts bought and
    sold, binaries marking trades (minimum trade size, the trade count)."""
    import time

    import cvxpy as cp

    start = time.perf_counter()
    n, r, v = inst.n, inst.ref, inst.value
    lot = inst.lot()
    unit = lot * inst.prices  # currency per lot
    held_value = inst.held * inst.prices
    big = 2.0 * (v + abs(inst.cash_flow))
    kb = cp.Variable(n, integer=True)
    ks = cp.Variable(n, integer=True)
    zb = cp.Variable(n, boolean=True)
    zs = cp.Variable(n, boolean=True)
    buy, sell = cp.multiply(unit, kb), cp.multiply(unit, ks)
    trade = buy - sell
    costs = inst.rate * cp.sum(buy + sell)
    x = held_value + trade
    cash = (inst.cash + inst.cash_flow - cp.sum(trade)) / r
    smallest = max(inst.min_trade, 0.01)
    cons = [
        kb >= 0,
        ks >= 0,
        ks <= np.floor(inst.held / lot + 1e-9),
        buy <= big * zb,
        sell <= big * zs,
        buy >= smallest * zb,
        sell >= smallest * zs,
        zb + zs <= 1,
        inst.cash + inst.cash_flow - cp.sum(trade) - costs >= 0,
    ]
    frozen = np.flatnonzero(inst.frozen())
    if frozen.size:
        cons += [kb[frozen] == 0, ks[frozen] == 0]
    if inst.no_sell:
        cons.append(ks[inst.no_sell] == 0)
    if inst.max_position is not None:
        cons.append(x <= inst.max_position * (r - costs))
    if inst.max_sector is not None:
        for s in set(inst.sectors):
            members = [i for i in range(n) if inst.sectors[i] == s]
            cons.append(cp.sum(x[members]) <= inst.max_sector * (r - costs))
    if inst.max_turnover is not None:
        cons.append(cp.sum(buy + sell) <= inst.max_turnover * v)
    if inst.min_position > 0:  # semi-continuous: x = 0 (held = 0) or min_position <= x <= big
        held = cp.Variable(n, boolean=True)
        cons += [x >= inst.min_position * held, x <= big * held]
    scale = 1e4  # objective in basis-point-squared units: SCIP's tolerances are absolute
    goal = cp.sum_squares(x / r - inst.target) + cp.square(cash - (1.0 - inst.target.sum())) + costs / r
    if inst.penalty() > 0:
        goal = goal + inst.penalty() * cp.sum(zb + zs)
    problem = cp.Problem(cp.Minimize(scale * goal), cons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver="SCIP", scip_params={"limits/time": time_limit, "limits/gap": gap})
    shares = np.round(np.asarray(kb.value) - np.asarray(ks.value)) * lot
    model = (problem.solver_stats.extra_stats or {}).get("model") if problem.solver_stats else None
    value = objective(inst, shares)
    bound = value
    if model is not None:
        offset = float(problem.value) - float(model.getPrimalbound())
        bound = (float(model.getDualbound()) + offset) / scale
    # Stopped at the gap limit: proven to within ``gap`` (SCIP reports that as a user limit).
    proven = problem.status == cp.OPTIMAL or value - bound <= 2 * gap * abs(value)
    return Optimum(shares, value, min(bound, value), proven, time.perf_counter() - start)


def single_and_pair_gains(inst: Instance, shares: np.ndarray) -> tuple[float, str]:
    """The best relative improvement of ``objective`` by one lot of one asset, or one lot of one
    asset against one lot of another, among moves that keep every limit (and which move)."""
    shares = np.asarray(shares, float)
    base = objective(inst, shares)
    lot = inst.lot()
    best, which = 0.0, ""
    steps = [(i, s) for i in range(inst.n) for s in (1.0, -1.0)]

    def trial(move: np.ndarray, label: str) -> None:
        nonlocal best, which
        cand = shares + move
        gain = (base - objective(inst, cand)) / max(abs(base), 1e-300)
        if gain > best + 1e-12 and not violations(inst, cand):
            best, which = gain, label

    for i, s in steps:
        move = np.zeros(inst.n)
        move[i] = s * lot[i]
        trial(move, f"{inst.symbols[i]} {s:+.0f} lot")
        # to no trade, or the minimum (single-asset moves beyond one lot that the minimum forces)
    for i in range(inst.n):
        move = np.zeros(inst.n)
        move[i] = -shares[i]
        if shares[i] != 0:
            trial(move, f"{inst.symbols[i]} to no trade")
    for a, sa in steps:
        for b, sb in steps:
            if b <= a:
                continue
            move = np.zeros(inst.n)
            move[a] = sa * lot[a]
            move[b] = sb * lot[b]
            trial(move, f"{inst.symbols[a]} {sa:+.0f} / {inst.symbols[b]} {sb:+.0f}")
    return best, which


def triple_gain(inst: Instance, shares: np.ndarray) -> tuple[float, str]:
    """The best relative improvement of ``objective`` by one lot each of three assets (up or
    down), among exchanges that keep every limit (and which)."""
    from itertools import combinations, product

    shares = np.asarray(shares, float)
    base = objective(inst, shares)
    lot = inst.lot()
    best, which = 0.0, ""
    for assets in combinations(range(inst.n), 3):
        for signs in product((1.0, -1.0), repeat=3):
            cand = shares.copy()
            cand[list(assets)] += np.array(signs) * lot[list(assets)]
            gain = (base - objective(inst, cand)) / max(abs(base), 1e-300)
            if gain > best + 1e-12 and not violations(inst, cand):
                best, which = (
                    gain,
                    " / ".join(f"{inst.symbols[a]} {s:+.0f}" for a, s in zip(assets, signs, strict=True)),
                )
    return best, which


def from_cash(seed: int, n: int = 20) -> Instance:
    """A start-from-cash allocation like PyPortfolioOpt's ``DiscreteAllocation``: ``n`` names,
    prices $10-$900, Dirichlet(0.7) targets, $10k or $30k, no costs, no limits (seeded)."""
    rng = np.random.default_rng(seed)
    prices = np.round(np.exp(rng.uniform(np.log(10.0), np.log(900.0), n)), 2)
    target = rng.dirichlet(np.full(n, 0.7))
    value = float(rng.choice([10_000.0, 30_000.0]))
    return Instance([f"S{i:02d}" for i in range(n)], prices, np.zeros(n), value, target, ["X"] * n, rate=0.0)
