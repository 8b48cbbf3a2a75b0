"""No exchange of one share each of two assets improves a risk-aware whole-share answer on many
names (issue 23): where the one-lot moves are too many to pair each with every other cheaply,
the search still prices them all (``EveryPair``, through the Gram matrix of the squared rows).
Checked by ``one_share``, written from the README's definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.risk import FactorModel
from tests.optimizer.discrete.one_share import Case, best_pair, best_single, feasible, objective

N = 220  # 440 one-lot moves and more: above the search's all_pairs (400)
VALUE = 30_000.0


def _request(seed: int) -> tuple[Case, PortfolioConfiguration, FactorModel]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(N)]
    prices = rng.uniform(30, 500, N).round(2)
    target = rng.dirichlet(np.full(N, 5.0)) * 0.98
    held = np.floor(target * np.exp(rng.normal(0, 0.5, N)) * VALUE * 0.9 / prices)
    cash = VALUE - float(held @ prices)
    loadings = rng.normal(0, 0.01, (N, 3))
    idio = rng.uniform(1e-4, 4e-4, N)
    factors = ["f0", "f1", "f2"]
    model = FactorModel(
        loadings=pd.DataFrame(loadings, index=symbols, columns=factors),
        factor_covariance=pd.DataFrame(np.eye(3), index=factors, columns=factors),
        idiosyncratic_variance=pd.Series(idio, index=symbols),
    )
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=float(q)) for s, q in zip(symbols, held, strict=True) if q > 0],
        cash=cash,
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        method="risk_aware",
        risk_aversion=100.0,
        tolerance=0.0,
        transaction_cost_rate=0.001,
        min_trade_size=0.0,
        allow_fractional_shares=False,
    )
    case = Case(
        symbols=symbols,
        prices=prices,
        held=held,
        cash=cash,
        target=target,
        rate=0.001,
        position_cap=1.0,
        sector_cap=1.0,
        sectors=np.zeros((0, N)),
        no_sell=np.zeros(N, dtype=bool),
        sigma=loadings @ loadings.T + np.diag(idio),
        aversion=100.0,
    )
    return case, config, model


def test_no_single_share_or_pair_move_improves_a_220_name_risk_aware_answer() -> None:
    case, config, model = _request(5)
    result = rebalance(config, dict(zip(case.symbols, case.prices.tolist(), strict=True)), factor_model=model)
    q = case.held.copy()
    index = {s: i for i, s in enumerate(case.symbols)}
    for t in result.trades:
        q[index[t.symbol]] += t.shares if t.action.value == "buy" else -t.shares
    assert feasible(case, q)
    f = objective(case, q)
    assert f == pytest.approx(result.objective_value, rel=1e-9)  # the same objective as finwiz's
    assert not any("stopped at its budget" in w for w in result.warnings)
    assert best_single(case, q, f) is None
    assert best_pair(case, q, f) is None
