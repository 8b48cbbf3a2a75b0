"""A seeded random load of 2,000 requests (every limit kind, taxes, long/short, market impact, user
terms): no ``SolverError``, no other crash, no refusal of a small request that some whole-share
trades can meet (an independent 0/1 program on the README's definitions, HiGHS; a taxable refusal
is checked by a necessary test: the loss lots the wash-sale rule leaves free reach the budget), and the same
trades whatever the order the requests are solved in (a fresh engine, reversed, every 4th).

    pytest benchmarks/test_bench_load.py -p no:randomly -s

Generated data only (no ``../shared``); 3-12 assets mostly, one request in ten 30-60.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from finwiz import FinwizError, InfeasibleRebalanceError, PortfolioConfiguration, SolverError
from finwiz.optimizer import MarketImpactModel, RebalancingEngine

REQUESTS = 2_000
KINDS = (
    "plain",
    "caps",
    "sectors",
    "esg",
    "turnover",
    "bands",
    "restricted",
    "cash_flow",
    "lots",
    "short",
    "tax",
    "impact",
)
AS_OF = dt.date(2024, 6, 28)


def make_request(seed: int) -> tuple[str, PortfolioConfiguration, pd.Series, dict[str, Any]]:
    """Request ``seed``: its kind (cycled), configuration, prices and engine options."""
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    n = int(rng.integers(30, 61)) if seed % 10 == 9 else int(rng.integers(3, 13))
    symbols = [f"A{i:02d}" for i in range(n)]
    prices = pd.Series(np.round(np.exp(rng.uniform(np.log(3), np.log(600), n)), 2), index=symbols)
    value = float(rng.choice([20_000.0, 250_000.0, 5_000_000.0]))
    shares = np.floor(rng.dirichlet(np.ones(n)) * rng.uniform(0.7, 1.0) * value / prices.to_numpy())
    cash = round(value - float(shares @ prices.to_numpy()), 2)
    target = rng.dirichlet(np.ones(n)) * rng.uniform(0.85, 1.0)
    fields: dict[str, Any] = {
        "holdings": [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True) if q > 0],
        "target_weights": dict(zip(symbols, target.tolist(), strict=True)),
        "cash": cash,
        "tolerance": 0.0,
        "method": str(rng.choice(["minimize_trades", "minimize_costs"])),
        "transaction_cost_rate": float(rng.choice([0.0, 0.001, 0.003])),
        "min_trade_size": float(rng.choice([0.0, 100.0, 1_000.0])),
        "allow_fractional_shares": bool(rng.uniform() < 0.3),
    }
    options: dict[str, Any] = {}
    if kind == "caps":
        fields["max_position_weight"] = float(max(1.2 / n, rng.uniform(0.1, 0.4)))
        fields["min_position_weights"] = {symbols[0]: float(target[0] * 0.5)}
    elif kind == "sectors":
        fields["sectors"] = {s: f"S{rng.integers(0, 3)}" for s in symbols}
        fields["max_sector_weight"] = float(rng.uniform(0.35, 0.7))
    elif kind == "esg":
        fields["esg_scores"] = {s: float(rng.uniform(0, 10)) for s in symbols}
        fields["min_esg_score"] = 3.0
        fields["min_average_esg_score"] = float(rng.uniform(3.0, 6.0))
    elif kind == "turnover":
        fields["max_turnover"] = float(rng.uniform(0.02, 0.4))
    elif kind == "bands":
        fields["tolerance"] = float(rng.choice([0.005, 0.02, 0.05]))
    elif kind == "restricted":
        fields["no_buy"], fields["no_sell"], fields["no_trade"] = [symbols[0]], [symbols[1]], [symbols[2]]
    elif kind == "cash_flow":
        fields["cash_flow"] = round(float(rng.uniform(-0.1, 0.2)) * value, 2)
        fields["min_cash_weight"] = float(rng.choice([0.0, 0.02]))
    elif kind == "lots":
        fields["lot_sizes"] = {s: float(rng.choice([5, 10, 100])) for s in symbols[: n // 2]}
    elif kind == "short":
        fields["allow_short"] = True
        short = rng.uniform(size=n) < 0.3
        fields["target_weights"] = dict(zip(symbols, np.where(short, -target * 0.3, target).tolist(), strict=True))
        fields["max_gross_exposure"] = float(rng.uniform(1.0, 1.6))
    elif kind == "tax":
        lots = []
        for s, q in zip(symbols, shares, strict=True):
            if q <= 0:
                continue
            first = float(np.ceil(q / 2))
            # The younger lot inside the wash-sale window (its loss lots withheld) or past it.
            young = int(rng.choice([30, 45]))
            parts = [(first, 400), (q - first, young)] if q - first > 0 else [(first, 400)]
            lots.append(
                {
                    "symbol": s,
                    "shares": float(q),
                    "lots": [
                        {
                            "shares": float(k),
                            "cost_basis": float(prices[s] * rng.uniform(0.6, 1.4)),
                            "acquired": AS_OF - dt.timedelta(days=days),
                        }
                        for k, days in parts
                    ],
                }
            )
        fields["holdings"] = lots
        budget = None if rng.uniform() < 0.5 else float(rng.uniform(-0.002, 0.01) * value)
        fields["tax"] = {
            "as_of": AS_OF,
            "short_term_rate": 0.37,
            "long_term_rate": 0.2,
            "max_realized_gain": budget,
        }
    elif kind == "impact":
        options["market_impact"] = MarketImpactModel(
            pd.Series(rng.lognormal(np.log(5e6), 1.0, n), index=symbols),
            pd.Series(rng.uniform(0.01, 0.04, n), index=symbols),
        )
        if rng.uniform() < 0.5:
            fields["max_position_weight"] = float(max(1.2 / n, 0.2))
    return kind, PortfolioConfiguration(**fields), prices, options


def outcome(engine: RebalancingEngine, seed: int) -> tuple[str, Any]:
    _, config, prices, options = make_request(seed)
    try:
        result = engine.rebalance(config, prices, **options)
    except SolverError as exc:
        return "solver_error", str(exc)
    except InfeasibleRebalanceError as exc:
        return "infeasible", str(exc)
    except FinwizError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a crash: never expected
        return "crash", f"{type(exc).__name__}: {exc}"
    if not result.is_compliant:
        return "not_compliant", [c.constraint for c in result.compliance if not c.satisfied]
    return "ok", tuple((t.symbol, t.signed_shares) for t in result.trades)


def loss_budget_reachable(config: PortfolioConfiguration, prices: pd.Series) -> bool:
    """Whether a taxable request's gain budget passes a necessary test of feasibility: selling
    every loss lot the wash-sale rule leaves free (no lot of the asset bought within the window)
    realises at least the loss a negative budget asks for (False: proven infeasible)."""
    tax = config.tax
    assert tax is not None
    if tax.max_realized_gain is None or tax.max_realized_gain >= 0:
        return True
    free_losses = 0.0
    for holding in config.holdings:
        if any((tax.as_of - lot.acquired).days <= tax.wash_sale_days for lot in holding.lots):
            continue
        free_losses += sum(min((prices[holding.symbol] - lot.cost_basis) * lot.shares, 0.0) for lot in holding.lots)
    return free_losses <= tax.max_realized_gain


def whole_share_feasible(config: PortfolioConfiguration, prices: pd.Series) -> bool | None:
    """Whether some whole-share trades keep every limit, by a 0/1 program written from the README's
    definitions (not the engine's): per asset buy and sell in lots, a binary for each side (the
    minimum trade, not both), cash after >= floor x V', post-trade weights (of V' = V - costs +
    cash flow) within caps, floors and sector caps, turnover, bands, restricted lists, the ESG screen
    and average. None for what it does not model (taxes, short, impact, odd-lot sell-outs)."""
    if config.tax is not None or config.allow_short:
        return None
    symbols = list(prices.index)
    n, p = len(symbols), prices.to_numpy()
    held = np.array([config.shares_by_symbol().get(s, 0.0) for s in symbols])
    lot = np.array([config.lot_sizes.get(s, 1.0) for s in symbols])
    if np.any(np.abs(held / lot - np.round(held / lot)) > 1e-9):
        return None
    value = float(held @ p) + config.cash
    v_after = value + config.cash_flow
    rate = config.transaction_cost_rate
    target = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    # x = [B (n lots bought), S (n lots sold), yb (n), ys (n)]
    nv = 4 * n
    rows: list[np.ndarray] = []
    lo: list[float] = []
    up: list[float] = []

    def add(row: np.ndarray, low: float, high: float) -> None:
        rows.append(row)
        lo.append(low)
        up.append(high)

    bv, sv = p * lot, p * lot  # value of one lot bought / sold
    big = 1e7
    for i in range(n):
        r = np.zeros(nv)
        r[i], r[2 * n + i] = bv[i], -max(config.min_trade_size, 0.0)  # buy value >= min x yb
        add(r, 0.0, np.inf)
        r = np.zeros(nv)
        r[n + i], r[3 * n + i] = sv[i], -max(config.min_trade_size, 0.0)
        add(r, 0.0, np.inf)
        r = np.zeros(nv)
        r[i], r[2 * n + i] = 1.0, -big
        add(r, -np.inf, 0.0)
        r = np.zeros(nv)
        r[n + i], r[3 * n + i] = 1.0, -big
        add(r, -np.inf, 0.0)
        r = np.zeros(nv)
        r[2 * n + i], r[3 * n + i] = 1.0, 1.0
        add(r, -np.inf, 1.0)
    # costs c = rate x sum traded value; V' = v_after - c
    cost = np.concatenate([rate * bv, rate * sv, np.zeros(2 * n)])
    net = np.concatenate([bv, -sv, np.zeros(2 * n)])
    # cash after = cash + cash_flow - net - c >= m (v_after - c)
    m = config.min_cash_weight
    add(-net - cost + m * cost, -(config.cash + config.cash_flow) + m * v_after, np.inf)
    position = [np.concatenate([np.eye(n)[i] * bv, -np.eye(n)[i] * sv, np.zeros(2 * n)]) for i in range(n)]
    caps = np.array([config.max_position_weights.get(s, config.max_position_weight or np.inf) for s in symbols])
    for i in range(n):
        if np.isfinite(caps[i]):  # (held + trade) p <= cap (v_after - c)
            add(position[i] + caps[i] * cost, -np.inf, caps[i] * v_after - held[i] * p[i])
        floor = config.min_position_weights.get(symbols[i], 0.0)
        if floor > 0:
            add(position[i] + floor * cost, floor * v_after - held[i] * p[i], np.inf)
    if config.max_sector_weight is not None:
        for sector in set(config.sectors.values()):
            members = np.array([config.sectors.get(s) == sector for s in symbols])
            row = sum(position[i] for i in np.flatnonzero(members))
            add(
                row + config.max_sector_weight * cost,
                -np.inf,
                config.max_sector_weight * v_after - float(held[members] @ p[members]),
            )
    if config.max_turnover is not None:
        add(np.concatenate([bv, sv, np.zeros(2 * n)]), -np.inf, config.max_turnover * value)
    if config.min_average_esg_score is not None:
        score = np.array([config.esg_scores[s] for s in symbols]) - config.min_average_esg_score
        add(sum(score[i] * position[i] for i in range(n)), -float(score @ (held * p)), np.inf)
    upper = np.concatenate([np.full(2 * n, np.inf), np.ones(2 * n)])
    upper[n : 2 * n] = held / lot  # long only
    current = held * p / value
    for i, s in enumerate(symbols):
        if abs(current[i] - target[i]) <= config.tolerance or s in config.no_trade:
            upper[i] = upper[n + i] = 0.0
        if s in config.no_buy or (
            config.min_esg_score is not None and config.esg_scores.get(s, -np.inf) < config.min_esg_score
        ):
            upper[i] = 0.0
        if s in config.no_sell:
            upper[n + i] = 0.0
    integrality = np.concatenate([np.full(2 * n, 0 if config.allow_fractional_shares else 1), np.ones(2 * n)])
    result = milp(
        np.zeros(nv),
        constraints=LinearConstraint(sparse.csr_array(np.array(rows)), np.array(lo), np.array(up)),
        integrality=integrality,
        bounds=Bounds(np.zeros(nv), upper),
        options={"time_limit": 20.0},
    )
    if result.status == 2:
        return False
    return True if result.x is not None else None


def test_a_random_load_answers_every_feasible_request_the_same_in_any_order(benchmark: Any) -> None:
    seeds = list(range(REQUESTS))
    counts: Counter[str] = Counter()
    kinds: Counter[tuple[str, str]] = Counter()
    first: dict[int, tuple[str, Any]] = {}
    failures: list[tuple[int, str, Any]] = []

    def run() -> None:
        engine = RebalancingEngine()
        for seed in seeds:
            first[seed] = outcome(engine, seed)

    start = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = time.perf_counter() - start
    for seed, (status, detail) in first.items():
        counts[status] += 1
        kinds[(make_request(seed)[0], status)] += 1
        if status in ("solver_error", "crash", "not_compliant"):
            failures.append((seed, status, detail))
    refused_feasible, tax_unchecked = [], []
    for seed, (status, _) in first.items():
        if status != "infeasible":
            continue
        _, config, prices, options = make_request(seed)
        if config.tax is not None:
            if loss_budget_reachable(config, prices):
                tax_unchecked.append(seed)
            continue
        if options or len(prices) > 12:
            continue
        if whole_share_feasible(config, prices):
            refused_feasible.append(seed)
    # The same trades in another order, on a fresh engine.
    engine = RebalancingEngine()
    reordered = [seed for seed in reversed(seeds) if seed % 4 == 0]
    differ_all = [seed for seed in reordered if outcome(engine, seed) != first[seed]]
    # Fractional requests too (issue 21: 10 of 500 differed in the last digits before each kept its
    # own OSQP workspace and Clarabel was built fresh on the cvxpy path).
    differ = [seed for seed in differ_all if not make_request(seed)[1].allow_fractional_shares]
    fractional_differ = sorted(set(differ_all) - set(differ))
    benchmark.extra_info.update(
        requests=REQUESTS,
        seconds=seconds,
        **{f"count_{k}": v for k, v in counts.items()},
        refused_but_feasible=len(refused_feasible),
        tax_refusals_unchecked=len(tax_unchecked),
        reordered=len(reordered),
        differ_in_order=len(differ),
        fractional_differ_in_order=len(fractional_differ),
    )
    print(f"\n{REQUESTS} requests in {seconds:.0f} s: {dict(counts)}")
    print("by kind:", dict(sorted(kinds.items())))
    print(f"refused but feasible: {refused_feasible}; differ in order: {differ} of {len(reordered)}")
    print(f"taxable refusals the loss test cannot prove infeasible (unchecked): {tax_unchecked}")
    print(f"fractional, differ in the last digits: {fractional_differ}")
    for seed, status, detail in failures[:10]:
        print("FAIL", seed, make_request(seed)[0], status, str(detail)[:300])
    assert not failures
    assert not refused_feasible
    assert not differ
    assert not fractional_differ
