"""Issue 21 on the 431-asset book (real returns, the conftest's prices and targets, real GICS
sectors): a failed custom check is a ComplianceError, an explanation that blamed whole shares is
checked at real costs, and the surprises warn.

Run: ``pytest benchmarks/test_bench_surprises.py -s -p no:randomly`` (prints the figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finwiz import ComplianceError, InfeasibleRebalanceError, OptimizationConstraint, rebalance
from finwiz.schemas import PortfolioConfiguration, TradeRecommendation

VALUE = 10_000_000.0


def _sectors(request: pytest.FixtureRequest, symbols: list[str]) -> dict[str, str]:
    path = Path(request.config.getoption("--shared-data")) / "sp500_431_sectors.csv"
    if not path.exists():
        pytest.skip(f"benchmark data not found: {path}")
    table = pd.read_csv(path).set_index("symbol")["sector"]
    return {s: str(table.get(s, "Unclassified")) for s in symbols}


def _book(make_problem: Any, request: pytest.FixtureRequest, **overrides: Any) -> tuple[PortfolioConfiguration, Any]:
    problem = make_problem(431)
    fields: dict[str, Any] = {
        "sectors": _sectors(request, problem.symbols),
        "max_sector_weight": None,
        "max_turnover": None,
        "method": "minimize_costs",
        "allow_fractional_shares": False,
        "min_trade_size": 100.0,
    }
    fields.update(overrides)
    return problem.config(**fields), problem


class _Veto(OptimizationConstraint):
    name = "committee"

    def validate(
        self, trades: Sequence[TradeRecommendation], current_portfolio: Any, market_data: Mapping[str, Any]
    ) -> tuple[bool, list[str]]:
        return False, [f"{len(trades)} trades: too many"]


def test_a_failed_custom_check_raises_with_the_result(make_problem: Any, request: pytest.FixtureRequest) -> None:
    config, problem = _book(make_problem, request, custom_constraints=[_Veto()])
    with pytest.raises(ComplianceError) as caught:
        rebalance(config, problem.prices)
    print(f"\nfailed check: {caught.value}")
    assert caught.value.result.trades
    assert caught.value.failed == ["committee"]


def test_a_floor_on_a_no_buy_asset_names_both(make_problem: Any, request: pytest.FixtureRequest) -> None:
    base, problem = _book(make_problem, request)
    weights = problem.x0
    pick = problem.symbols[int(np.argsort(weights)[len(weights) // 2])]
    floor = float(weights[problem.symbols.index(pick)]) * 1.2
    for fractional in (False, True):
        config = base.model_copy(update={"no_buy": [pick], "min_position_weights": {pick: floor}})
        config = PortfolioConfiguration.model_validate({**config.model_dump(), "allow_fractional_shares": fractional})
        with pytest.raises(InfeasibleRebalanceError) as caught:
            rebalance(config, problem.prices)
        text = str(caught.value)
        print(f"\nfloor on no_buy {pick} (fractional={fractional}): {text[:240]}")
        assert {"no_buy", "min_position"} <= set(caught.value.constraint_names)
        assert "whole shares" not in text


def test_targets_above_the_caps_warn_with_the_distance_the_caps_allow(
    make_problem: Any, request: pytest.FixtureRequest
) -> None:
    config, problem = _book(make_problem, request, max_sector_weight=0.2, max_position_weight=0.004)
    result = rebalance(config, problem.prices)
    (warning,) = [w for w in result.warnings if "above the account's own caps" in w]
    closest = float(warning.split("the closest portfolio the caps allow is ")[1].split(" ")[0])
    print(
        f"\ntargets above caps: closest the caps allow {closest:.4g}, "
        f"distance after {result.tracking_distance_after:.4g}"
    )
    assert result.is_compliant
    assert result.tracking_distance_after >= closest * (1 - 1e-3)


def test_a_forced_cap_sale_on_a_book_in_its_bands_warns(make_problem: Any, request: pytest.FixtureRequest) -> None:
    """One name at 13.4 % under a 10 % cap (target 6 %), everything else inside 5-point bands."""
    base, problem = _book(make_problem, request, tolerance=0.05)
    prices = problem.prices.to_numpy()
    shares = problem.shares.copy()
    big = int(np.argmax(prices * shares))
    value = float(shares @ prices) + problem.cash
    shares[big] = np.floor(0.134 * value / prices[big])
    symbol = problem.symbols[big]
    targets = dict(base.target_weights)
    scale = (sum(targets.values()) - 0.06) / (sum(targets.values()) - targets[symbol])
    targets = {s: (0.06 if s == symbol else w * scale) for s, w in targets.items()}
    config = base.model_copy(
        update={
            "holdings": [h.model_copy(update={"shares": float(q)}) for h, q in zip(base.holdings, shares, strict=True)],
            "target_weights": targets,
            "max_position_weights": {symbol: 0.10},
        }
    )
    config = PortfolioConfiguration.model_validate(config.model_dump())
    result = rebalance(config, problem.prices)
    warned = [w for w in result.warnings if "forced by its position cap" in w]
    before = result.current_weights["CASH"]
    print(
        f"\nforced sale: {symbol} {result.current_weights[symbol]:.2%} -> {result.post_trade_weights[symbol]:.2%}, "
        f"cash {before:.2%} -> {result.cash_weight_after:.2%}, buys {len(result.buys)}; warned: {bool(warned)}"
    )
    if result.cash_weight_after - before > 0.5 * (result.current_weights[symbol] - result.post_trade_weights[symbol]):
        assert warned


def test_a_deposit_and_the_turnover_cap(make_problem: Any, request: pytest.FixtureRequest) -> None:
    base, problem = _book(make_problem, request, cash_flow=500_000.0, max_turnover=0.05)
    held = rebalance(base, problem.prices)
    exempt = rebalance(base.model_copy(update={"turnover_excludes_cash_flow": True}), problem.prices)
    print(
        f"\n$500k deposit, 5 % turnover cap: cash after {held.cash_after:,.0f} (warned: "
        f"{any('deposit stays in cash' in w for w in held.warnings)}); with turnover_excludes_cash_flow "
        f"{exempt.cash_after:,.0f}, turnover {exempt.turnover:.4f}"
    )
    assert any("deposit stays in cash" in w for w in held.warnings)
    assert exempt.cash_after < held.cash_after
    assert exempt.is_compliant


def test_dust_after_a_withdrawal_is_named(make_problem: Any, request: pytest.FixtureRequest) -> None:
    config, problem = _book(make_problem, request, cash_flow=-2_000_000.0, min_trade_size=2_000.0)
    result = rebalance(config, problem.prices)
    dust = [
        s
        for s in problem.symbols
        if 0 < result.post_trade_holdings[s] < result.current_holdings[s]
        and result.post_trade_holdings[s] * result.prices[s] < 2_000.0
    ]
    warned = [w for w in result.warnings if "less than the minimum trade size" in w]
    print(f"\n$2M withdrawal, $2,000 minimum trade: {len(dust)} positions left as dust: {dust[:5]}")
    assert bool(dust) == bool(warned)
    for s in dust[:5]:
        assert s in warned[0]
