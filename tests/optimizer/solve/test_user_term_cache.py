"""A user's cvxpy term that builds constants (from its own attributes or from the request's data)
without declaring them in ``structure()`` never gets a problem compiled for another request
(issue 21: the second of two ``SectorPenalty`` terms solved with the first one's sector)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from finwiz.optimizer import RebalancingEngine, TargetTrackingTerm, Term, TermParts, TransactionCostTerm, Variables
from tests.optimizer.test_one_model import SectorPenalty, _independent_optimum, _near_target_book

PENALTY = 0.05


class FirstSectorPenalty(Term):
    """A penalty on the weight of the sector of the request's first asset, read from ``data`` as
    a constant (no Parameter, no ``structure()``)."""

    name = "first_sector_penalty"

    def build(self, v: Variables, data: Any, *, diagnose: bool = False) -> TermParts:
        members = (data.sector_of == data.sector_of[0]).astype(float)
        return TermParts(objective=PENALTY * (members @ v.weights))


def _sector_weight(result: Any, symbols: list[str], members: np.ndarray) -> float:
    return sum(result.post_trade_weights[s] for s, m in zip(symbols, members, strict=True) if m)


def _members(symbols: list[str], sectors: dict[str, str], of: str) -> np.ndarray:
    return np.array([sectors[s] == sectors[of] for s in symbols], dtype=float)


def test_two_instances_of_one_term_class_each_get_their_own_optimum(
    sample_prices: pd.Series, sample_sector_map: dict[str, str]
) -> None:
    config, _ = _near_target_book(sample_prices, sample_sector_map, True)
    symbols = list(config.symbols)
    other = next(s for s in symbols if sample_sector_map[s] != sample_sector_map[symbols[0]])
    engine = RebalancingEngine()
    for of in (symbols[0], other):
        members = _members(symbols, sample_sector_map, of)
        engine.strategies["penalised"] = [TargetTrackingTerm(), TransactionCostTerm(), SectorPenalty(members, PENALTY)]
        got = _sector_weight(engine.rebalance(config, sample_prices), symbols, members)
        assert got == pytest.approx(_independent_optimum(config, sample_prices, members, PENALTY), abs=0.002)


def test_one_term_object_reading_two_requests_data_gets_each_ones_optimum(
    sample_prices: pd.Series, sample_sector_map: dict[str, str]
) -> None:
    config, _ = _near_target_book(sample_prices, sample_sector_map, True)
    symbols = list(config.symbols)
    engine = RebalancingEngine()
    engine.strategies["penalised"] = [TargetTrackingTerm(), TransactionCostTerm(), FirstSectorPenalty()]
    moved = {s: sample_sector_map[s] for s in symbols}
    moved[symbols[0]] = next(v for v in moved.values() if v != moved[symbols[0]])  # another first sector
    for sectors in (sample_sector_map, moved):
        request = config.model_copy(update={"sectors": sectors})
        members = _members(symbols, sectors, symbols[0])
        got = _sector_weight(engine.rebalance(request, sample_prices), symbols, members)
        assert got == pytest.approx(_independent_optimum(request, sample_prices, members, PENALTY), abs=0.002)
