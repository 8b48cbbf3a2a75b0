"""Exact mode never returns a worse answer than the default path (issue 23, item 5).

The program's answer is checked against the default path's even when the solver says "optimal":
it proves optimality on rows backed off by 2e-6 and within its own tolerances, so the default
path's trades can still be better. A stand-in solver that claims a poor answer optimal shows it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.optimizer.discrete import _stage
from finwiz.optimizer.discrete._exact import ExactOutcome

PRICES = {"AAA": 97.0, "BBB": 143.0, "CCC": 61.0}


def _config() -> PortfolioConfiguration:
    # All in cash; a $2,000 minimum trade: from "no trade" no one-share move or one-share exchange
    # is allowed, so only a search that starts elsewhere reaches the targets.
    return PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=0.0) for s in PRICES],
        target_weights={"AAA": 0.35, "BBB": 0.35, "CCC": 0.28},
        cash=30_000.0,
        method="minimize_costs",
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=2_000.0,
        allow_fractional_shares=False,
    )


@pytest.mark.parametrize("proven", [False, True])
def test_a_poor_program_answer_is_not_returned(monkeypatch: pytest.MonkeyPatch, proven: bool) -> None:
    """The program's answer left as it is (neither polished nor searched, as when it is a local
    optimum of both): the default path's better answer is returned, proven or not."""
    config = _config()
    default = rebalance(config, PRICES)
    assert default.objective_value is not None
    assert default.trades  # the default path invests the cash
    claimed = np.zeros(len(PRICES))
    polish, search = _stage.polish, _stage.exchange_search

    def program(model: object, *, time_limit: float) -> ExactOutcome:
        return ExactOutcome(claimed, 1.0, proven, 0.0 if proven else 0.5, "SCIP", 0.0)

    def polish_others(model: Any, shares: np.ndarray, **kwargs: Any) -> np.ndarray:
        return shares if shares is claimed else polish(model, shares, **kwargs)

    def search_others(model: Any, shares: np.ndarray, *args: Any) -> Any:
        found = search(model, shares, *args)
        return dataclasses.replace(found, shares=claimed) if shares is claimed else found

    monkeypatch.setattr(_stage, "solve_exact", program)
    monkeypatch.setattr(_stage, "exchange_search", search_others)
    monkeypatch.setattr(_stage, "polish", polish_others)
    exact = rebalance(config, PRICES, exact=True)
    assert exact.is_compliant
    assert exact.trades
    assert exact.objective_value is not None
    assert exact.objective_value <= default.objective_value * (1 + 1e-12)
    # Independently: the README's objective of the returned trades (zero costs, all in cash).
    w = np.array([exact.post_trade_holdings[s] * p / 30_000.0 for s, p in PRICES.items()])
    t = np.array([0.35, 0.35, 0.28])
    assert np.sum((w - t) ** 2) + (w.sum() - t.sum()) ** 2 == pytest.approx(exact.objective_value, rel=1e-9)


def test_exact_mode_is_never_worse_than_the_default_with_scip() -> None:
    pytest.importorskip("pyscipopt", reason="exact mode needs pyscipopt")
    config = _config()
    default = rebalance(config, PRICES)
    exact = rebalance(config, PRICES, exact=True)
    assert exact.objective_value is not None
    assert default.objective_value is not None
    assert exact.objective_value <= default.objective_value * (1 + 1e-12)
