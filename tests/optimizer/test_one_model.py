"""One model, stated once: extension points keep every guarantee, terms are values, errors name
the culprit, market impact works end to end, infeasibility says who and how much."""

from __future__ import annotations

import threading
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

from finwiz import (
    ConfigurationError,
    InfeasibleRebalanceError,
    OptimizedTrades,
    PortfolioConfiguration,
    TermError,
    TradeAction,
    TradeRecommendation,
    rebalance,
)
from finwiz.optimizer import (
    MarketImpactModel,
    MarketImpactTerm,
    OptimizationConstraint,
    OptimizationStrategy,
    RebalancingEngine,
    TargetTrackingTerm,
    Term,
    TermParts,
    TradeCountTerm,
    TransactionCostTerm,
    Variables,
)

# ----------------------------------------------------------------------------- user strategies


class Proposal(OptimizationStrategy):
    """A seed-style strategy that proposes fixed signed share trades."""

    def __init__(self, name: str, trades: dict[str, float]) -> None:
        self.name = name
        self.trades = trades

    def optimize(
        self, needs: Any, portfolio: Any, target: Any, prices: Any, capital: Any, constraints: Any, config: Any
    ) -> OptimizedTrades:  # type: ignore[override]
        recs = [
            TradeRecommendation(
                symbol=s,
                action=TradeAction.BUY if q > 0 else TradeAction.SELL,
                shares=abs(q),
                price=prices[s],
                trade_value=abs(q) * prices[s],
                transaction_cost=0.0,
                total_estimated_cost=0.0,
            )
            for s, q in self.trades.items()
        ]
        return OptimizedTrades(trades=recs, total_cost=0.0, capital_used=0.0, method_used=self.name)


def _engine_with(strategy: OptimizationStrategy) -> RebalancingEngine:
    engine = RebalancingEngine()
    engine.strategies[strategy.name] = strategy
    return engine


def test_an_overspending_strategy_is_repaired_never_returned_as_optimal(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    symbol = sample_config.symbols[0]
    too_much = 2_500_000 / float(sample_prices[symbol])
    engine = _engine_with(Proposal("spender", {symbol: float(np.floor(too_much))}))
    result = engine.rebalance(sample_config.model_copy(update={"method": "spender"}), sample_prices)
    assert result.cash_after >= -1e-6
    assert result.is_compliant
    assert any("repaired" in w and "cash_floor" in w for w in result.warnings)
    assert result.solver.startswith("custom, repaired")
    # Repaired to the nearest compliant trades: it still buys as much of the symbol as cash allows.
    bought = {t.symbol: t.shares for t in result.trades if t.action is TradeAction.BUY}
    assert bought.get(symbol, 0.0) * float(sample_prices[symbol]) > 0.5 * sample_config.cash


def test_a_fractional_strategy_in_whole_share_mode_is_repaired(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    symbol = sample_config.symbols[1]
    engine = _engine_with(Proposal("fractional", {symbol: 1.5}))
    result = engine.rebalance(sample_config.model_copy(update={"method": "fractional"}), sample_prices)
    assert result.rounding == "whole_shares"
    assert all(float(t.shares).is_integer() for t in result.trades)
    assert any("not a whole lot" in w for w in result.warnings)


def test_a_compliant_strategy_is_returned_as_it_is(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    symbol = sample_config.symbols[2]
    shares = float(np.ceil(1_000 / float(sample_prices[symbol])))  # above the $100 minimum trade
    engine = _engine_with(Proposal("modest", {symbol: shares}))
    result = engine.rebalance(sample_config.model_copy(update={"method": "modest"}), sample_prices)
    assert [(t.symbol, t.signed_shares) for t in result.trades] == [(symbol, shares)]
    assert result.solver == "custom"
    assert not result.warnings


# ----------------------------------------------------------------------------- a user's term


class SectorPenalty(Term):
    """A user's cvxpy term: ``penalty x`` the weight of one sector (a linear penalty)."""

    name = "sector_penalty"

    def __init__(self, members: np.ndarray, penalty: float) -> None:
        self.members = members
        self.penalty = penalty

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        weight = cp.Parameter(nonneg=True, name="penalty")
        return TermParts(params={"penalty": weight}, objective=weight * (self.members @ v.weights))

    def values(self, data: Any) -> dict[str, float]:
        return {"penalty": self.penalty}


def _near_target_book(sample_prices: pd.Series, sample_sector_map: dict[str, str], fractional: bool):  # type: ignore[no-untyped-def]
    symbols = list(sample_prices.index)
    n = len(symbols)
    value = 2_000_000.0
    target = np.full(n, 0.98 / n)
    rng = np.random.default_rng(5)
    held = target * (1 + rng.uniform(-0.05, 0.05, n))
    shares = np.floor(held * value / sample_prices.to_numpy())
    cash = value - float(shares @ sample_prices.to_numpy())
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        cash=cash,
        tolerance=0.0,
        transaction_cost_rate=0.0005,
        min_trade_size=0.0,
        allow_fractional_shares=fractional,
        sectors=sample_sector_map,
        method="penalised",
    )
    sector = sample_sector_map[symbols[0]]
    members = np.array([sample_sector_map[s] == sector for s in symbols], dtype=float)
    return config, members


def _independent_optimum(
    config: PortfolioConfiguration, prices: pd.Series, members: np.ndarray, penalty: float
) -> float:
    """The sector weight at the optimum of the same objective, written directly in cvxpy."""
    symbols = config.symbols
    p = prices.reindex(symbols).to_numpy()
    q0 = np.array([config.shares_by_symbol()[s] for s in symbols])
    value = float(q0 @ p + config.cash)
    x0 = q0 * p / value
    t = np.array([config.target_weights[s] for s in symbols])
    buy, sell = cp.Variable(len(symbols), nonneg=True), cp.Variable(len(symbols), nonneg=True)
    w = x0 + buy - sell
    cost = config.transaction_cost_rate * cp.sum(buy + sell)
    objective = cp.sum_squares(w - t) + cp.square(cp.sum(w) - t.sum()) + cost + penalty * (members @ w)
    cp.Problem(cp.Minimize(1e4 * objective), [sell <= x0, cp.sum(buy - sell) + cost <= config.cash / value]).solve(
        solver="CLARABEL"
    )
    return float(members @ w.value / (1 - float(cost.value)))


@pytest.mark.parametrize("fractional", [True, False])
def test_a_user_term_keeps_its_effect_through_the_whole_share_step(
    sample_prices: pd.Series, sample_sector_map: dict[str, str], fractional: bool
) -> None:
    config, members = _near_target_book(sample_prices, sample_sector_map, fractional)
    engine = RebalancingEngine()
    weights = []
    for penalty in (0.001, 0.01, 0.1):
        engine.strategies["penalised"] = [TargetTrackingTerm(), TransactionCostTerm(), SectorPenalty(members, penalty)]
        result = engine.rebalance(config, sample_prices)
        got = sum(result.post_trade_weights[s] for s, m in zip(config.symbols, members, strict=True) if m)
        assert got == pytest.approx(_independent_optimum(config, sample_prices, members, penalty), abs=0.002)
        weights.append(got)
    assert weights[0] > weights[1] > weights[2]  # more penalty, less of the sector


class MisspelledTerm(SectorPenalty):
    def values(self, data: Any) -> dict[str, float]:
        return {"penalt": self.penalty}


def test_a_misspelled_parameter_key_names_the_term_and_the_key(
    sample_prices: pd.Series, sample_sector_map: dict[str, str]
) -> None:
    config, members = _near_target_book(sample_prices, sample_sector_map, True)
    engine = RebalancingEngine()
    engine.strategies["penalised"] = [TargetTrackingTerm(), MisspelledTerm(members, 0.01)]
    with pytest.raises(TermError, match=r"sector_penalty.*'penalty'"):
        engine.rebalance(config, sample_prices)


class BadLimits(OptimizationConstraint):
    def limits(self) -> dict[str, float]:
        return {"max_sector_weigth": 0.3}


class BoolValidate(OptimizationConstraint):
    def validate(self, trades: Any, current_portfolio: Any, market_data: Any) -> Any:
        return True


@pytest.mark.parametrize(("constraint", "message"), [(BadLimits(), "max_sector_weigth"), (BoolValidate(), "validate")])
def test_a_malformed_custom_constraint_is_a_configuration_error(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, constraint: OptimizationConstraint, message: str
) -> None:
    config = sample_config.model_copy(update={"custom_constraints": [constraint]})
    with pytest.raises(ConfigurationError, match=message) as info:
        rebalance(config, sample_prices)
    assert type(constraint).__name__ in str(info.value)


# ----------------------------------------------------------------------------- stateless terms


def test_one_strategy_object_serves_eight_threads(make_config, sample_prices: pd.Series) -> None:  # type: ignore[no-untyped-def]
    engine = RebalancingEngine()
    engine.strategies["shared"] = [TargetTrackingTerm(), TransactionCostTerm(), TradeCountTerm(weight=2e-5)]
    configs = [make_config(sample_prices, seed=seed, method="shared", max_turnover=0.3) for seed in range(16)]
    expected = [engine.rebalance(c, sample_prices).post_trade_holdings for c in configs]
    got: dict[int, dict[str, float]] = {}
    errors: list[BaseException] = []

    def work(indices: range) -> None:
        try:
            for i in indices:
                got[i] = engine.rebalance(configs[i], sample_prices).post_trade_holdings
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(range(k, 16, 8),)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [got[i] for i in range(16)] == expected


# ----------------------------------------------------------------------------- market impact


def _impact_book(n: int = 50, seed: int = 2) -> tuple[PortfolioConfiguration, pd.Series, MarketImpactModel]:
    rng = np.random.default_rng(seed)
    symbols = [f"M{i:02d}" for i in range(n)]
    prices = pd.Series(rng.uniform(20, 300, n), index=symbols)
    value = 50_000_000.0
    weights = rng.dirichlet(np.ones(n)) * 0.97
    shares = np.floor(weights * value / prices.to_numpy())
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        target_weights=dict.fromkeys(symbols, 0.97 / n),
        cash=value - float(shares @ prices.to_numpy()),
        tolerance=0.0,
        method="minimize_costs",
    )
    volume = pd.Series(rng.uniform(5e6, 5e8, n), index=symbols)
    sigma = pd.Series(rng.uniform(0.01, 0.03, n), index=symbols)
    return config, prices, MarketImpactModel(volume, sigma)


@pytest.mark.parametrize("exact", [False, True])
def test_market_impact_end_to_end(exact: bool) -> None:
    config, prices, model = _impact_book()
    engine = RebalancingEngine()
    engine.strategies["impact"] = [TargetTrackingTerm(), TransactionCostTerm(), MarketImpactTerm(exact=exact)]
    result = engine.rebalance(config.model_copy(update={"method": "impact"}), prices, market_impact=model)
    without = rebalance(config, prices)
    assert result.is_compliant
    assert result.market_impact_costs > 0
    k = model.coefficient * model.volatility * np.sqrt(1.0 / model.daily_dollar_volume)
    for t in result.trades:
        expected = float(k[t.symbol]) * t.trade_value**1.5  # k sigma |T|^1.5 / sqrt(ADV)
        assert t.market_impact_cost == pytest.approx(expected, abs=0.005)  # to the cent
    cash = config.cash + sum(-t.signed_trade_value - t.total_estimated_cost for t in result.trades)
    assert result.cash_after == pytest.approx(cash, abs=0.01)
    assert max(t.trade_value for t in result.trades) < max(t.trade_value for t in without.trades)


# ----------------------------------------------------------------------------- infeasibility


def test_an_infeasible_request_names_the_member_in_value_and_currency() -> None:
    prices = {f"E{i}": 10.0 for i in range(3)} | {f"T{i}": 10.0 for i in range(10)}
    holdings = [{"symbol": f"E{i}", "shares": 900} for i in range(3)]
    holdings += [{"symbol": f"T{i}", "shares": 730} for i in range(10)]
    sectors = {f"E{i}": "Energy" for i in range(3)} | {f"T{i}": f"Sector{i}" for i in range(10)}
    config = PortfolioConfiguration(
        holdings=holdings,
        target_weights=dict.fromkeys(prices, 1 / 13),
        sectors=sectors,
        max_sector_weight=0.10,
        max_turnover=0.02,
        tolerance=0.0,
        min_trade_size=0.0,
        method="minimize_costs",
    )
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(config, prices)
    by_name = {c.name: c for c in info.value.conflicts}
    assert by_name["sector_cap"].member == "Energy"
    value = sum(h["shares"] * 10.0 for h in holdings)
    for conflict in info.value.conflicts:
        assert conflict.relaxation > 1e-7  # nothing below solver noise is listed
        assert conflict.dollars == pytest.approx(conflict.relaxation * value, rel=1e-9)
    assert "sector_cap[Energy]" in str(info.value)
    assert "long_only" not in by_name
    # 27 % in Energy, sector caps of 10 %, but only 2 % turnover allowed: both must be named.
    assert {"sector_cap", "turnover_cap"} <= set(info.value.constraint_names)
    assert by_name["turnover_cap"].relaxation == pytest.approx(0.27 - 0.10 - 0.02, abs=0.01)
    assert "turnover_cap" in str(info.value)


# ----------------------------------------------------------------------------- whole shares


def _objective(config: PortfolioConfiguration, prices: dict[str, float], trades: dict[str, float]) -> float:
    """MINIMIZE_COSTS's objective, recomputed from shares and prices: tracking of weights of the
    value after the cash flow (cash before costs) plus the cost as a fraction of it."""
    symbols = config.symbols
    held = config.shares_by_symbol()
    p = np.array([prices[s] for s in symbols])
    q = np.array([held[s] + trades.get(s, 0.0) for s in symbols])
    t = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    ref = float(np.array([held[s] for s in symbols]) @ p + config.cash + config.cash_flow)
    w = q * p / ref
    traded = sum(abs(v) * prices[s] for s, v in trades.items())
    return float(np.sum((w - t) ** 2) + (w.sum() - t.sum()) ** 2 + config.transaction_cost_rate * traded / ref)


def _keeps_limits(config: PortfolioConfiguration, prices: dict[str, float], trades: dict[str, float]) -> bool:
    symbols = config.symbols
    held = config.shares_by_symbol()
    after = {s: held[s] + trades.get(s, 0.0) for s in symbols}
    if any(v < -1e-9 for v in after.values()):
        return False
    value = {s: after[s] * prices[s] for s in symbols}
    traded = sum(abs(v) * prices[s] for s, v in trades.items())
    cash = (
        config.cash
        + config.cash_flow
        - sum(v * prices[s] for s, v in trades.items())
        - config.transaction_cost_rate * traded
    )
    total = sum(value.values()) + cash
    before = sum(held[s] * prices[s] for s in symbols) + config.cash
    caps_ok = config.max_position_weight is None or all(
        v / total <= config.max_position_weight + 1e-12 for v in value.values()
    )
    turnover_ok = config.max_turnover is None or traded / before <= config.max_turnover + 1e-12
    return cash >= -1e-9 and caps_ok and turnover_ok


def _random_book(
    seed: int, n: int, value: float, max_turnover: float | None, cash_flow: float = 0.0
) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """A drifted ``n``-asset book worth ``value``, 10 bp costs, position caps below the largest target."""
    rng = np.random.default_rng(seed)
    symbols = [f"A{i:02d}" for i in range(n)]
    prices = {s: float(np.round(rng.uniform(5, 400), 2)) for s in symbols}
    target = rng.dirichlet(np.ones(n)) * 0.97
    shares = np.floor(rng.dirichlet(np.ones(n)) * 0.9 * value / np.array(list(prices.values())))
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True) if q > 0],
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        cash=value - float(shares @ np.array(list(prices.values()))),
        tolerance=0.0,
        min_trade_size=0.0,
        transaction_cost_rate=0.001,
        method="minimize_costs",
        max_position_weight=float(target.max() * 0.8),
        max_turnover=max_turnover,
        cash_flow=cash_flow,
    )
    return config, prices


def _single_share_moves(
    config: PortfolioConfiguration, prices: dict[str, float], trades: dict[str, float]
) -> list[tuple[str, float, float]]:
    """Every asset moved by one share either way that keeps every limit, with its true objective."""
    out = []
    for s in prices:
        for step in (1.0, -1.0):
            moved = dict(trades)
            moved[s] = moved.get(s, 0.0) + step
            if moved[s] == 0:
                del moved[s]
            if _keeps_limits(config, prices, moved):
                out.append((s, step, _objective(config, prices, moved)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_no_single_lot_move_improves_the_returned_trades(seed: int) -> None:
    """The whole-share answer is a local optimum of the true objective: moving any one asset by
    one share (kept within every limit) does not lower it, recomputed independently."""
    config, prices = _random_book(seed, 25, 200_000, [None, 0.1][seed % 2], [0.0, 15_000.0, -8_000.0][seed % 3])
    result = rebalance(config, prices)
    trades = {t.symbol: t.signed_shares for t in result.trades}
    best = _objective(config, prices, trades)
    assert result.objective_value == pytest.approx(best, rel=1e-9, abs=1e-12)  # the reported objective is the true one
    for s, step, objective in _single_share_moves(config, prices, trades):
        assert objective >= best - 1e-7 * abs(best) - 1e-12, (s, step)


@pytest.mark.parametrize("seed", [0, 1, 10, 14])  # 10 and 14: a coarse descent left a share there
def test_exact_mode_answer_cannot_be_improved_by_one_share(seed: int) -> None:
    """Exact mode's answer (the MIP solver's, polished by a strict descent): no single share of any
    asset, kept within every limit, lowers the true objective at all, recomputed independently."""
    pytest.importorskip("pyscipopt")
    config, prices = _random_book(100 + seed, 12, 60_000, [None, 0.1][seed % 2])
    result = rebalance(config, prices, exact=True)
    trades = {t.symbol: t.signed_shares for t in result.trades}
    best = _objective(config, prices, trades)
    for s, step, objective in _single_share_moves(config, prices, trades):
        assert objective >= best - 1e-9 * abs(best) - 1e-12, (s, step)


def test_a_strategy_selling_out_an_odd_lot_keeps_the_lot_rule(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    """Selling the whole holding is a whole trade, lots or not (as in the engine's own answers)."""
    held = sample_config.shares_by_symbol()
    symbol = next(s for s in sample_config.symbols if held[s] % 10 and held[s] * sample_prices[s] > 100)
    config = sample_config.model_copy(update={"method": "sell_out", "lot_sizes": {symbol: 10.0}})
    engine = _engine_with(Proposal("sell_out", {symbol: -held[symbol]}))
    result = engine.rebalance(config, sample_prices)
    assert [(t.symbol, t.signed_shares) for t in result.trades] == [(symbol, -held[symbol])]
    assert result.solver == "custom"
