"""Targets whole shares cannot reach say so (issue 23, item 4): names whose one share is worth more
than their target value hold no share or at least one, and the warning states the tracking
distance (and, with a risk model, the tracking error) whole shares allow and what the trades reach."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from finwiz import Holding, PortfolioConfiguration, RebalancingResult, rebalance
from finwiz.risk import FactorModel

N = 40


def _account(value: float, fractional: bool = False) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """``N`` equal targets (97 % in all), prices $20-$400, ``value`` in cash."""
    rng = np.random.default_rng(7)
    symbols = [f"S{i:02d}" for i in range(N)]
    prices = dict(zip(symbols, rng.uniform(20, 400, N).round(2).tolist(), strict=True))
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=symbols[0], shares=1)],
        cash=value - prices[symbols[0]],
        target_weights=dict.fromkeys(symbols, 0.97 / N),
        method="minimize_costs",
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        allow_fractional_shares=fractional,
    )
    return config, prices


def _factor_model(symbols: list[str]) -> FactorModel:
    rng = np.random.default_rng(3)
    loadings = pd.DataFrame(rng.normal(0, 0.01, (len(symbols), 2)), index=symbols, columns=["f0", "f1"])
    return FactorModel(
        loadings=loadings,
        factor_covariance=pd.DataFrame(np.eye(2), index=["f0", "f1"], columns=["f0", "f1"]),
        idiosyncratic_variance=pd.Series(rng.uniform(1e-4, 4e-4, len(symbols)), index=symbols),
    )


def _warning(result: RebalancingResult) -> list[str]:
    return [w for w in result.warnings if w.startswith("targets out of reach of whole shares")]


def _figures(warning: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?:no less than|reach(?:es)?|error of) ([0-9.e-]+)", warning)]


def test_a_small_account_is_told_which_targets_whole_shares_cannot_hold_and_the_distance_they_allow() -> None:
    config, prices = _account(5_000.0)
    result = rebalance(config, prices)
    (warning,) = _warning(result)
    symbols = list(prices)
    price = np.array([prices[s] for s in symbols])
    value_after = result.portfolio_value_after
    target = np.full(N, 0.97 / N)
    dear = price / value_after > target  # by hand: one share worth more than the target value
    assert f"{int(dear.sum())} of {N} targeted names" in warning
    # The least distance of whole shares, each name at its nearest whole share, from the prices.
    nearest = np.array(
        [min(abs(k * p / value_after - t) for k in range(20)) for p, t in zip(price, target, strict=True)]
    )
    floor, reached = _figures(warning)[:2]
    assert floor == float(f"{np.sqrt(np.sum(nearest**2)):.4g}")
    weights = np.array([result.post_trade_weights.get(s, 0.0) for s in symbols])
    distance = np.sqrt(np.sum((weights - target) ** 2) + (result.cash_weight_after - 0.03) ** 2)
    assert reached == float(f"{distance:.4g}")
    assert reached >= floor
    assert "allow_fractional_shares=True" in warning


def test_the_tracking_error_of_the_trades_and_its_whole_share_bound_are_stated_with_a_risk_model() -> None:
    config, prices = _account(5_000.0)
    config = config.model_copy(update={"method": "risk_aware", "risk_aversion": 10.0})
    symbols = list(prices)
    model = _factor_model(symbols)
    result = rebalance(config, prices, factor_model=model)
    (warning,) = _warning(result)
    error, bound = _figures(warning)[2:4]
    weights = np.array([result.post_trade_weights.get(s, 0.0) for s in symbols])
    gap = weights - 0.97 / N
    sigma = model.covariance().loc[symbols, symbols].to_numpy()
    assert error == float(f"{np.sqrt(gap @ sigma @ gap):.4g}")
    # The bound: idiosyncratic risk alone, each name at its nearest whole share.
    price = np.array([prices[s] for s in symbols]) / result.portfolio_value_after
    nearest = np.round(0.97 / N / price) * price - 0.97 / N
    idio = model.idiosyncratic_variance.to_numpy()
    assert bound == float(f"{np.sqrt(np.sum(idio * nearest**2)):.4g}")
    assert bound <= error
    assert f"{np.sqrt(252 * gap @ sigma @ gap):.2%} annualised over 252 periods; whole shares allow" in warning


def test_no_warning_where_whole_shares_reach_the_targets() -> None:
    config, prices = _account(5_000_000.0)
    assert not _warning(rebalance(config, prices))
    config, prices = _account(5_000.0, fractional=True)
    assert not _warning(rebalance(config, prices))
