"""``ProblemData``'s copies for the re-solves of one rebalance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.optimizer import build_problem_data
from finwiz.optimizer.describe._data import ProblemData


def _data() -> ProblemData:
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 30}, {"symbol": "BBB", "shares": 10}],  # type: ignore[list-item]
        target_weights={"AAA": 0.4, "BBB": 0.5},
        cash=500.0,
    )
    return build_problem_data(config, {"AAA": 10.0, "BBB": 20.0})


def _fields(data: ProblemData) -> dict[str, object]:
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}


def test_evolve_is_dataclasses_replace() -> None:
    data = _data()
    weights = np.array([1.0, 2.0])
    evolved = data.evolve(count_weights=weights, debias=True)
    replaced = dataclasses.replace(data, count_weights=weights, debias=True)
    assert _fields(evolved) == _fields(replaced)
    assert evolved.count_weights is weights
    assert evolved.debias
    assert not data.debias
    assert data.count_weights is None


def test_evolve_names_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="debiased"):
        _data().evolve(debiased=True)


def test_the_data_has_no_post_init_for_evolve_to_skip() -> None:
    # ``evolve`` copies the fields without ``__init__``: valid only while nothing runs after it.
    assert not hasattr(ProblemData, "__post_init__")


def test_fix_blocks_the_assets_and_takes_other_changes() -> None:
    data = _data()
    fixed = data.fix(np.array([True, False]), debias=True)
    assert fixed.blocked["fixed"].tolist() == [True, False]
    assert fixed.debias
    assert data.blocked["fixed"].tolist() == [False, False]


def test_evolve_copies_the_fields_only() -> None:
    # A value kept beside the fields (as frozen dataclasses here keep caches) may depend on a
    # field that changes: ``evolve``, like ``dataclasses.replace``, starts without it.
    data = _data()
    data.__dict__["_kept"] = "of the old weights"
    evolved = data.evolve(count_weights=np.array([1.0, 2.0]))
    assert "_kept" not in evolved.__dict__
    assert "_kept" not in dataclasses.replace(data, debias=True).__dict__


def test_the_universe_is_read_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """``config.symbols`` rebuilds its list on every read (~80 us at 500 assets): the data is built
    from one read, with sector caps, bands and an ESG screen on."""
    config = PortfolioConfiguration(
        holdings=[{"symbol": "A", "shares": 10}, {"symbol": "B", "shares": 5}],
        target_weights={"A": 0.4, "B": 0.4, "C": 0.2},
        sectors={"A": "X", "B": "Y", "C": "X"},
        max_sector_weight=0.7,
        esg_scores={"A": 5.0, "B": 6.0, "C": 7.0},
        min_esg_score=4.0,
    )
    reads: list[int] = []
    universe = PortfolioConfiguration.symbols.fget
    assert universe is not None
    monkeypatch.setattr(PortfolioConfiguration, "symbols", property(lambda self: reads.append(1) or universe(self)))
    data = build_problem_data(config, {"A": 10.0, "B": 20.0, "C": 30.0})
    assert data.symbols == ("A", "B", "C")
    assert data.sector_of.tolist() == [0, 1, 0]
    assert len(reads) == 1


def test_the_reported_tracking_distances_follow_the_readme_from_the_result_alone() -> None:
    """Before and after trading, from the result's own weights and cash (the README's definition:
    the Euclidean distance of the weights and the cash weight from their targets)."""
    config = PortfolioConfiguration(
        holdings=[Holding(symbol="A", shares=30), Holding(symbol="B", shares=5), Holding(symbol="C", shares=12)],
        target_weights={"A": 0.3, "B": 0.4, "C": 0.25},
        cash=500.0,
        cash_flow=200.0,
    )
    prices = {"A": 10.0, "B": 52.0, "C": 17.5}
    result = rebalance(config, prices)
    symbols = sorted(prices)
    target = np.array([config.target_weights[s] for s in symbols])

    def distance(weights: dict[str, float], cash_weight: float) -> float:
        w = np.array([weights.get(s, 0.0) for s in symbols])
        return float(np.sqrt(np.sum((w - target) ** 2) + (cash_weight - config.cash_target) ** 2))

    before = distance(result.current_weights, result.cash_before / result.portfolio_value_before)
    assert result.tracking_distance_before == pytest.approx(before, rel=1e-12)
    assert result.tracking_distance_after == pytest.approx(
        distance(result.post_trade_weights, result.cash_weight_after), rel=1e-12
    )
    assert result.tracking_distance_after < result.tracking_distance_before
