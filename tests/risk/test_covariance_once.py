"""A covariance is checked and decomposed once: the risk attached to a result reuses the root the
optimizer kept, instead of a second PSD check of the dense matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finwiz import PortfolioConfiguration, rebalance


def test_a_rebalance_with_its_risk_factors_a_full_rank_covariance_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    n = 40
    symbols = [f"R{i:02d}" for i in range(n)]
    returns = rng.normal(0, 0.01, (3 * n, n))  # more days than assets: full rank, no split
    covariance = pd.DataFrame(returns.T @ returns / (3 * n), index=symbols, columns=symbols)
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": 10.0} for s in symbols],
        target_weights=dict.fromkeys(symbols, 0.97 / n),
        cash=1_000.0,
        method="risk_aware",
        tolerance=0.0,  # inside every band the analysis fails on its own (its needs_rebalancing)
    )
    prices = dict(zip(symbols, rng.uniform(20, 80, n).tolist(), strict=True))
    calls: list[int] = []
    cholesky = np.linalg.cholesky

    def spy(matrix: np.ndarray) -> np.ndarray:
        calls.append(len(matrix))
        return cholesky(matrix)

    monkeypatch.setattr(np.linalg, "cholesky", spy)
    result = rebalance(config, prices, covariance=covariance, analyze=True)
    assert result.risk_after is not None
    assert calls.count(n) == 1
    weights = pd.Series(result.post_trade_weights).drop("CASH", errors="ignore")
    w = weights.reindex(symbols).to_numpy()
    expected = float(np.sqrt(w @ covariance.to_numpy() @ w))
    assert result.risk_after.volatility == pytest.approx(expected * np.sqrt(252), rel=1e-9)
