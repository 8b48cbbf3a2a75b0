"""The solver policy's interior point (``_solve._interior``): where OSQP polishes Clarabel's point,
Clarabel runs without its iterative refinement (the polish solves the active set's KKT system
exactly), and the trades are the same bits as with it; where the polish fails, Clarabel runs
again with it, and its answer stands as before."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from finwiz import PortfolioConfiguration, rebalance
from finwiz.optimizer import clear_cache
from finwiz.optimizer.solve import _solve, _solvers


def _recorded(monkeypatch: pytest.MonkeyPatch, refine: bool | None = None) -> list[bool]:
    """Each Clarabel call's ``refine`` (forced to ``refine`` when given)."""
    calls: list[bool] = []
    original = _solvers.solve_clarabel

    def recording(*args: Any, **kwargs: Any) -> Any:
        if refine is not None:
            kwargs["refine"] = refine
        calls.append(kwargs.get("refine", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(_solve, "solve_clarabel", recording)
    return calls


def _cold_to_clarabel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_solvers, "COLD_ITERATIONS", 1)  # a cold ADMM gives up at once: Clarabel answers


def test_a_polished_interior_point_skips_refinement_and_gives_the_same_trades(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cold_to_clarabel(monkeypatch)
    calls = _recorded(monkeypatch, refine=True)
    clear_cache()
    refined = rebalance(sample_config, sample_prices)
    assert calls == [True]
    calls = _recorded(monkeypatch)
    clear_cache()
    got = rebalance(sample_config, sample_prices)
    assert calls == [False]  # polished by OSQP: no refinement
    assert got.solver == "OSQP"
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in refined.trades]
    assert got.objective_value == refined.objective_value


def test_where_the_polish_fails_the_refined_interior_point_answers(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cold_to_clarabel(monkeypatch)
    monkeypatch.setattr(_solvers, "POLISHED_RESIDUAL", -1.0)  # every polished point refused
    calls = _recorded(monkeypatch, refine=True)
    clear_cache()
    refined = rebalance(sample_config, sample_prices)
    calls = _recorded(monkeypatch)
    clear_cache()
    got = rebalance(sample_config, sample_prices)
    assert calls[:2] == [False, True]  # unrefined, polish refused, then refined
    assert got.solver == "CLARABEL"
    assert [t.model_dump() for t in got.trades] == [t.model_dump() for t in refined.trades]
    assert got.objective_value == refined.objective_value
