"""The engine end to end on the bundled S&P sample and on small hand-made portfolios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from finwiz import (
    ESGConstraint,
    InfeasibleRebalanceError,
    InsufficientPriceDataError,
    InvalidPortfolioError,
    OptimizationStrategy,
    OptimizedTrades,
    PortfolioConfiguration,
    PriceDataError,
    RebalancingEngine,
    RebalancingMethod,
    SectorConcentrationConstraint,
    TradeAction,
    TradeRecommendation,
    rebalance,
)
from finwiz.data import sample_price_history
from finwiz.optimizer import TargetTrackingTerm, TurnoverPenaltyTerm
from finwiz.risk import FactorModel


def sector_weights(result, sectors: dict[str, str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out: dict[str, float] = {}
    for symbol, weight in result.post_trade_weights.items():
        out[sectors[symbol]] = out.get(sectors[symbol], 0.0) + weight
    return out


@pytest.mark.parametrize("method", list(RebalancingMethod))
def test_sample_portfolio_rebalances_under_sector_caps(
    method: RebalancingMethod, sample_prices: pd.Series, sample_sector_map: dict[str, str], make_config
) -> None:
    history = sample_price_history().iloc[-750:]
    returns = history.pct_change().dropna()
    cov = returns.cov()
    config = make_config(sample_prices, sectors=sample_sector_map, max_sector_weight=0.25, method=method)
    result = rebalance(config, sample_prices, covariance=cov)
    assert result.status == "optimal"
    assert result.rounding == "whole_shares"
    assert result.tracking_distance_after < result.tracking_distance_before / 3
    for weight in sector_weights(result, sample_sector_map).values():
        assert weight <= 0.25 + 1e-12
    for trade in result.trades:
        assert trade.shares == int(trade.shares)
        assert trade.shares > 0
        assert trade.trade_value >= config.min_trade_size
    assert result.is_compliant


def test_money_adds_up_to_the_cent(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    result = rebalance(sample_config, sample_prices)
    buys = sum(t.trade_value for t in result.buys)
    sells = sum(t.trade_value for t in result.sells)
    costs = sum(t.total_estimated_cost for t in result.trades)
    assert result.cash_after == pytest.approx(sample_config.cash + sells - buys - costs, abs=0.005)
    assert result.total_cost == pytest.approx(costs, abs=1e-9)
    assert result.total_cost == pytest.approx(sum(0.001 * t.trade_value for t in result.trades), abs=1e-9)
    post_value = sum(result.post_trade_holdings[s] * p for s, p in result.prices.items()) + result.cash_after
    assert result.portfolio_value_after == pytest.approx(post_value)
    assert sum(result.post_trade_weights.values()) + result.cash_weight_after == pytest.approx(1.0)


def test_same_input_same_trades(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    first = rebalance(sample_config, sample_prices)
    second = rebalance(sample_config, sample_prices)
    assert [t.model_dump() for t in first.trades] == [t.model_dump() for t in second.trades]


def test_to_frame_has_a_row_per_asset_and_cash(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    frame = rebalance(sample_config, sample_prices).to_frame()
    assert list(frame.index[:-1]) == sample_config.symbols
    assert frame.index[-1] == "CASH"
    assert frame["weight_after"].sum() == pytest.approx(1.0)


def test_prices_are_validated() -> None:
    config = PortfolioConfiguration(holdings=[{"symbol": "AAA", "shares": 1}], target_weights={"BBB": 0.5})
    with pytest.raises(InsufficientPriceDataError, match="BBB"):
        rebalance(config, {"AAA": 10.0})
    for bad in (0.0, -3.0, math.nan, math.inf, "1,234.5"):
        with pytest.raises(PriceDataError, match="AAA"):
            rebalance(config, {"AAA": bad, "BBB": 5.0})
    with pytest.raises(InvalidPortfolioError, match="twice"):
        rebalance(config, {"AAA": 1.0, "aaa": 1.0, "BBB": 2.0})


def test_cash_flows() -> None:
    prices = {"AAA": 10.0, "BBB": 20.0}
    base = {
        "holdings": [{"symbol": "AAA", "shares": 500}, {"symbol": "BBB", "shares": 250}],
        "target_weights": {"AAA": 0.5, "BBB": 0.5},
        "tolerance": 0.0,
        "min_trade_size": 0.0,
    }
    deposit = rebalance(PortfolioConfiguration(**base, cash_flow=5000.0), prices)  # type: ignore[arg-type]
    assert all(t.action is TradeAction.BUY for t in deposit.trades)
    assert deposit.cash_after >= 0
    assert deposit.cash_after < 50
    withdrawal = rebalance(PortfolioConfiguration(**base, cash_flow=-2000.0), prices)  # type: ignore[arg-type]
    assert all(t.action is TradeAction.SELL for t in withdrawal.trades)
    assert withdrawal.cash_after >= 0
    sold = sum(t.trade_value for t in withdrawal.trades) - withdrawal.total_cost
    assert withdrawal.cash_after == pytest.approx(sold - 2000.0, abs=0.005)
    with pytest.raises(InvalidPortfolioError, match="withdrawal"):
        rebalance(PortfolioConfiguration(**base, cash_flow=-20000.0), prices)  # type: ignore[arg-type]


def test_restricted_lists_and_bands() -> None:
    prices = {"AAA": 10.0, "BBB": 20.0, "CCC": 5.0, "DDD": 1.0}
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": n} for s, n in (("AAA", 900), ("BBB", 100), ("CCC", 100), ("DDD", 500))],
        target_weights={"AAA": 0.25, "BBB": 0.25, "CCC": 0.25, "DDD": 0.25},
        no_sell=["AAA"],
        no_buy=["CCC"],
        tolerance=0.02,
        method="minimize_costs",
        min_trade_size=0.0,
        cash=0.0,
    )
    result = rebalance(config, prices)
    traded = {t.symbol: t.action for t in result.trades}
    assert "AAA" not in traded  # over target but may not be sold
    assert traded.get("CCC") in (None, TradeAction.SELL)
    # DDD holds 500 / 12,500 = 4 %, far from 25 %; every trade is outside the band.
    assert traded["DDD"] is TradeAction.BUY


def test_lots_and_minimum_trade_size() -> None:
    prices = {"AAA": 3.0, "BBB": 7.0, "CCC": 11.0}
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 1000}, {"symbol": "BBB", "shares": 10}],
        target_weights={"AAA": 0.3, "BBB": 0.3, "CCC": 0.3},
        cash=2000.0,
        tolerance=0.0,
        lot_sizes={"AAA": 100, "CCC": 25},
        min_trade_size=150.0,
    )
    result = rebalance(config, prices)
    lots = {"AAA": 100, "BBB": 1, "CCC": 25}
    for trade in result.trades:
        assert trade.shares % lots[trade.symbol] == 0
        assert trade.trade_value >= 150.0
    assert result.cash_after >= 0


def test_fractional_shares() -> None:
    prices = {"AAA": 333.0, "BBB": 77.7}
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 3}],
        target_weights={"AAA": 0.5, "BBB": 0.5},
        cash=1000.0,
        tolerance=0.0,
        transaction_cost_rate=0.0,
        allow_fractional_shares=True,
        min_trade_size=0.0,
        method="minimize_costs",
    )
    result = rebalance(config, prices, analyze=True)
    assert result.rounding == "fractional"
    assert result.post_trade_weights["AAA"] == pytest.approx(0.5, abs=1e-6)
    assert result.post_trade_weights["BBB"] == pytest.approx(0.5, abs=1e-6)
    assert result.analysis is not None
    assert result.analysis.needs_rebalancing


def test_cap_that_cannot_hold_with_no_sell_is_refused() -> None:
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 100}, {"symbol": "BBB", "shares": 10}],
        target_weights={"AAA": 0.5, "BBB": 0.5},
        max_position_weight=0.6,
        no_sell=["AAA"],
    )
    with pytest.raises(InvalidPortfolioError, match="AAA"):
        rebalance(config, {"AAA": 10.0, "BBB": 10.0})


def test_a_symbol_capped_at_zero_is_sold_out() -> None:
    """max_position_weights={"AAA": 0} means hold none of it (it once read as no cap at all)."""
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 100}, {"symbol": "BBB", "shares": 10}],
        target_weights={"AAA": 0.5, "BBB": 0.4},
        max_position_weights={"AAA": 0.0},
        tolerance=0.0,
        min_trade_size=0.0,
        transaction_cost_rate=0.0,
    )
    result = rebalance(config, {"AAA": 10.0, "BBB": 10.0})
    assert result.post_trade_holdings["AAA"] == 0.0
    assert result.is_compliant


def test_min_trade_size_above_portfolio_is_refused() -> None:
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 10}], target_weights={"AAA": 0.5}, min_trade_size=1e6
    )
    with pytest.raises(InvalidPortfolioError, match="min_trade_size"):
        rebalance(config, {"AAA": 10.0})


def test_risk_aware_needs_a_risk_model(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    config = sample_config.model_copy(update={"method": RebalancingMethod.RISK_AWARE})
    with pytest.raises(InvalidPortfolioError, match="risk model"):
        rebalance(config, sample_prices)


def test_non_psd_covariance_is_refused(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    symbols = sample_config.symbols
    bad = pd.DataFrame(np.eye(len(symbols)), index=symbols, columns=symbols)
    bad.iloc[0, 0] = -1.0
    with pytest.raises(InvalidPortfolioError, match="positive semidefinite"):
        rebalance(sample_config, sample_prices, covariance=bad)
    bad.iloc[0, 0] = math.nan
    with pytest.raises(InvalidPortfolioError, match="non-finite"):
        rebalance(sample_config, sample_prices, covariance=bad)


def test_user_strategy_as_terms(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    engine = RebalancingEngine()
    engine.strategies["gentle"] = [TargetTrackingTerm(), TurnoverPenaltyTerm(weight=1e-2)]
    gentle = engine.rebalance(sample_config.model_copy(update={"method": "gentle"}), sample_prices)
    eager = engine.rebalance(sample_config.model_copy(update={"method": "minimize_costs"}), sample_prices)
    assert gentle.method == "gentle"
    assert gentle.turnover < eager.turnover


class SellEverything(OptimizationStrategy):
    name = "liquidate"

    def optimize(
        self,
        rebalancing_needs,
        current_portfolio,
        target_weights,
        prices,
        available_capital,  # type: ignore[no-untyped-def]
        constraints,
        config,
    ) -> OptimizedTrades:
        trades = [
            TradeRecommendation(
                symbol=h.symbol,
                action=TradeAction.SELL,
                shares=h.shares,
                price=prices[h.symbol],
                trade_value=h.shares * prices[h.symbol],
                transaction_cost=0.0,
                total_estimated_cost=0.0,
            )
            for h in current_portfolio.holdings
            if h.shares > 0
        ]
        return OptimizedTrades(trades=trades, total_cost=0.0, capital_used=0.0, method_used=self.name)


def test_user_strategy_subclass_is_checked(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    engine = RebalancingEngine()
    engine.strategies["liquidate"] = SellEverything()
    result = engine.rebalance(sample_config.model_copy(update={"method": "liquidate"}), sample_prices)
    assert all(v == 0 for v in result.post_trade_holdings.values())
    assert result.cash_weight_after == pytest.approx(1.0)
    assert result.solver == "custom"


def test_unknown_strategy_is_a_clear_error(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    from finwiz import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown strategy 'nope'"):
        rebalance(sample_config.model_copy(update={"method": "nope"}), sample_prices)


def test_custom_constraints_fold_into_the_solve(
    sample_prices: pd.Series, sample_sector_map: dict[str, str], make_config
) -> None:
    scores = {s: float(i % 10) for i, s in enumerate(sample_prices.index)}
    config = make_config(
        sample_prices,
        sectors=sample_sector_map,
        esg_scores=scores,
        custom_constraints=[
            SectorConcentrationConstraint(0.2),
            ESGConstraint(min_esg_score=3.0, min_average_score=4.5),
        ],
    )
    result = rebalance(config, sample_prices)
    assert max(sector_weights(result, sample_sector_map).values()) <= 0.2 + 1e-12
    assert not any(t.action is TradeAction.BUY and scores[t.symbol] < 3.0 for t in result.trades)
    invested = sum(result.post_trade_weights.values())
    average = sum(w * scores[s] for s, w in result.post_trade_weights.items()) / invested
    assert average >= 4.5 - 1e-9
    assert all(c.satisfied for c in result.compliance)


def test_factor_model_and_dense_covariance_agree(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    returns = sample_price_history().iloc[-500:].pct_change().dropna()
    cov = returns.cov()
    values, vectors = np.linalg.eigh(cov.to_numpy())
    names = [f"f{i}" for i in range(len(values))]
    model = FactorModel(
        pd.DataFrame(vectors, index=cov.index, columns=names),
        pd.DataFrame(np.diag(values), index=names, columns=names),
        pd.Series(0.0, index=cov.index),
    )
    config = sample_config.model_copy(update={"method": RebalancingMethod.RISK_AWARE, "risk_aversion": 5.0})
    dense = rebalance(config, sample_prices, covariance=cov)
    factor = rebalance(config, sample_prices, factor_model=model)
    assert [t.model_dump(exclude={"reasons"}) for t in dense.trades] == [
        t.model_dump(exclude={"reasons"}) for t in factor.trades
    ]
    assert [t.why for t in dense.trades] == [t.why for t in factor.trades]  # the scores to rounding


def test_osqp_on_request_is_verified(sample_config: PortfolioConfiguration, sample_prices: pd.Series) -> None:
    result = rebalance(sample_config, sample_prices, solver="OSQP")
    assert result.solver in ("OSQP", "CLARABEL")
    assert result.max_constraint_residual == 0.0


def test_exact_mode_is_at_least_as_close_as_the_default(sample_prices: pd.Series, make_config) -> None:  # type: ignore[no-untyped-def]
    prices = sample_prices.iloc[:8]
    config = make_config(
        prices,
        value=60_000.0,
        seed=3,
        transaction_cost_rate=0.0,
        min_trade_size=300.0,
        method="minimize_costs",
        max_position_weight=0.15,
    )
    default = rebalance(config, prices)
    exact = rebalance(config, prices, exact=True)
    assert exact.rounding == "exact_mip"
    assert exact.status == "optimal"
    assert exact.mip_gap is not None
    assert exact.mip_gap <= 1e-4
    assert exact.is_compliant
    for trade in exact.trades:
        assert trade.shares == int(trade.shares)
        assert trade.trade_value >= 300.0
    # The MIP optimises tracking over every whole-share portfolio; the default rounds one optimum.
    assert exact.tracking_distance_after <= default.tracking_distance_after + 1e-9


def test_every_solve_passes_its_full_settings(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cvxpy keeps an OSQP workspace between solves of a cached problem; settings must never leak.
    # (A term without a native form sends the request through cvxpy; see test_native.py.)
    import cvxpy as cp

    from finwiz.optimizer import RebalancingEngine
    from tests.optimizer.solve.test_native import CvxpyTurnoverPenalty

    engine = RebalancingEngine()
    engine.strategies["cvxpy_only"] = [*engine.strategies["minimize_costs"].terms(None), CvxpyTurnoverPenalty(1e-4)]  # type: ignore[arg-type]
    config = sample_config.model_copy(update={"method": "cvxpy_only"})

    seen: list[dict[str, object]] = []
    original = cp.Problem.solve

    def recording(self: cp.Problem, *args: object, **kwargs: object) -> object:
        seen.append(dict(kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", recording)
    engine.rebalance(config, sample_prices, solver="OSQP")
    engine.rebalance(config, sample_prices * 1.01, solver="OSQP")
    osqp = [k for k in seen if k.get("solver") == "OSQP"]
    assert len(osqp) >= 2
    assert all({"eps_abs", "eps_rel", "max_iter", "polishing"} <= set(k) for k in osqp)
    assert all(k == osqp[0] for k in osqp)


def test_diagnosis_follows_each_request(sample_prices: pd.Series) -> None:
    # Two infeasible requests of the same shape but different blocked assets: each diagnosis must
    # name its own conflict (elastic problems are never reused across requests).
    prices = {"AAA": 10.0, "BBB": 10.0, "CCC": 10.0}
    base = {
        "holdings": [{"symbol": s, "shares": 100} for s in prices],
        "target_weights": dict.fromkeys(prices, 0.33),
        "tolerance": 0.0,
        "min_trade_size": 0.0,
        "method": "minimize_costs",
        "cash_flow": -1500.0,  # no cash: the withdrawal must come from sales
    }
    first = PortfolioConfiguration(**base, no_sell=["AAA", "BBB", "CCC"], no_buy=["AAA"])  # type: ignore[arg-type]
    with pytest.raises(InfeasibleRebalanceError) as one:
        rebalance(first, prices)
    assert {"no_sell", "cash_floor"} <= set(one.value.constraint_names)
    second = PortfolioConfiguration(**base, no_trade=["AAA", "BBB", "CCC"])  # type: ignore[arg-type]
    with pytest.raises(InfeasibleRebalanceError) as two:
        rebalance(second, prices)
    assert "no_trade" in two.value.constraint_names
    assert "no_sell" not in two.value.constraint_names


def test_minimize_trades_leaves_small_drifts_alone() -> None:
    # Two assets far from target, eight a hair off: MINIMIZE_TRADES trades the two (fully: the
    # debiasing solve removes the L1 shrinkage), MINIMIZE_COSTS trades everything it can.
    symbols = [f"S{i}" for i in range(10)]
    prices = dict.fromkeys(symbols, 1.0)
    shares = dict.fromkeys(symbols, 10000.0)
    shares["S0"], shares["S1"] = 14_000.0, 6_000.0
    for s in symbols[2:6]:
        shares[s] += 30.0
    for s in symbols[6:]:
        shares[s] -= 30.0
    base = {
        "holdings": [{"symbol": s, "shares": q} for s, q in shares.items()],
        "target_weights": dict.fromkeys(symbols, 0.1),
        "tolerance": 0.0,
        "min_trade_size": 0.0,
        "transaction_cost_rate": 0.0,
    }
    few = rebalance(PortfolioConfiguration(**base, method="minimize_trades"), prices)  # type: ignore[arg-type]
    every = rebalance(PortfolioConfiguration(**base, method="minimize_costs"), prices)  # type: ignore[arg-type]
    assert {t.symbol for t in few.trades} == {"S0", "S1"}
    assert len(every.trades) == 10
    assert few.post_trade_holdings["S0"] == pytest.approx(10_000.0, abs=1.0)
    assert few.post_trade_holdings["S1"] == pytest.approx(10_000.0, abs=1.0)


def test_threads_sharing_a_compiled_problem_get_their_own_answers(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    # The orchestrator runs the engine in worker threads; accounts of one shape share a cached
    # problem, so setting Parameters and solving must happen under one lock.
    from concurrent.futures import ThreadPoolExecutor

    moves = [sample_prices * (1 + 0.02 * k) for k in range(-4, 4)]
    alone = [[t.model_dump() for t in rebalance(sample_config, p).trades] for p in moves]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda p: [t.model_dump() for t in rebalance(sample_config, p).trades], moves * 3))
    assert together == alone * 3


def test_threads_racing_on_a_new_workspace_get_their_own_answers(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    # Same, from an empty cache: the thread that sets a solver workspace up and the threads that
    # find it in the cache a moment later must each solve their own request.
    from concurrent.futures import ThreadPoolExecutor

    from finwiz.optimizer import clear_cache

    moves = [sample_prices * (1 + 0.02 * k) for k in range(-4, 4)]
    alone = [[t.model_dump() for t in rebalance(sample_config, p).trades] for p in moves]
    for _ in range(5):
        clear_cache()
        with ThreadPoolExecutor(max_workers=8) as pool:
            together = list(pool.map(lambda p: [t.model_dump() for t in rebalance(sample_config, p).trades], moves))
        assert together == alone


@pytest.mark.parametrize("cash", [0.0, 5_000.0])
def test_analysis_of_a_book_inside_its_bands(cash: float) -> None:
    """Every asset inside its band: the analysis says whether the cash alone calls for a
    rebalance (a yes/no, not one answer per asset's band)."""
    prices = {"AAA": 100.0, "BBB": 50.0}
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 50}, {"symbol": "BBB", "shares": 100}],
        target_weights={"AAA": 0.5, "BBB": 0.5},
        cash=cash,
        tolerance=0.05,
    )
    result = rebalance(config, prices, analyze=True)
    assert result.analysis is not None
    assert result.analysis.needs_rebalancing is (cash > 0)
