"""Tolerance bands (absolute, relative, combined), which cap wins, and unclassified symbols."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finwiz import (
    InvalidPortfolioError,
    PortfolioConfiguration,
    SectorConcentrationConstraint,
    rebalance,
)
from finwiz.data import MarketDataProvider
from finwiz.optimizer import build_problem_data


def wide_book(n: int = 200, seed: int = 3, **overrides: object) -> tuple[PortfolioConfiguration, pd.Series]:
    """A wide book of small targets (0.49 % each) drifted by up to +-0.3 points per asset, as a
    431-asset index account is: every asset is well inside an absolute 5-point band."""
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(n)]
    prices = pd.Series(rng.uniform(20.0, 400.0, n), index=symbols)
    target = 0.98 / n
    weights = np.clip(target + rng.uniform(-0.003, 0.003, n), 0.0, None)
    weights *= 0.98 / weights.sum()
    value = 10_000_000.0
    shares = np.floor(weights * value / prices.to_numpy())
    invested = float((shares * prices.to_numpy()).sum())
    fields: dict[str, object] = {
        "holdings": [{"symbol": s, "shares": float(q)} for s, q in zip(symbols, shares, strict=True)],
        "target_weights": dict.fromkeys(symbols, target),
        "cash": value - invested,
        "min_trade_size": 0.0,
        "method": "minimize_costs",
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields), prices  # type: ignore[arg-type]


def current_weights(config: PortfolioConfiguration, prices: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Current and target weights computed here, independently of the engine."""
    shares = np.array([config.shares_by_symbol()[s] for s in config.symbols])
    values = shares * prices[config.symbols].to_numpy()
    total = values.sum() + config.cash
    target = np.array([config.target_weights.get(s, 0.0) for s in config.symbols])
    return values / total, target


def test_absolute_band_on_a_wide_book_trades_nothing_and_says_why() -> None:
    config, prices = wide_book()
    weights, target = current_weights(config, prices)
    assert np.abs(weights - target).max() < 0.05  # the premise: every asset inside 5 points
    data = build_problem_data(config, prices)
    assert data.blocked["tolerance_band"].all()
    (note,) = data.notes
    total_drift = 0.5 * (np.abs(weights - target).sum() + abs(1 - weights.sum() - config.cash_target))
    assert total_drift > 0.05
    assert f"{total_drift:.4g}" in note
    assert "relative_tolerance" in note


def test_no_note_when_the_book_is_close_to_its_target() -> None:
    config, prices = wide_book(n=4)  # 4 assets of 24.5 % drifted by +-0.3 points: total drift ~0.005
    data = build_problem_data(config, prices)
    assert data.blocked["tolerance_band"].all()
    assert data.notes == ()


def test_engine_warns_when_every_asset_is_inside_its_band() -> None:
    config, prices = wide_book()
    result = rebalance(config, prices)
    assert result.trades == []
    assert any("inside its tolerance band" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("tolerance", "relative"),
    [(0.05, 0.25), (1.0, 0.25), (0.001, 0.5), (0.05, 0.0)],
)
def test_relative_band_is_the_tighter_of_both(tolerance: float, relative: float) -> None:
    config, prices = wide_book(tolerance=tolerance, relative_tolerance=relative)
    weights, target = current_weights(config, prices)
    # Drift after the (zero) cash flow is the plain drift; the band is min(tol, rel x target).
    inside = np.abs(weights - target) <= np.minimum(tolerance, relative * target)
    assert 0 < inside.sum() < len(inside) or relative == 0.0
    data = build_problem_data(config, prices)
    np.testing.assert_array_equal(data.blocked["tolerance_band"], inside)
    assert config.band_width(target[0]) == pytest.approx(min(tolerance, relative * target[0]))
    result = rebalance(config, prices)
    traded = {t.symbol for t in result.trades}
    symbols = config.symbols
    assert not traded & {s for s, k in zip(symbols, inside, strict=True) if k}  # inside: untouched
    outside = {s for s, k in zip(symbols, inside, strict=True) if not k}
    assert len(traded) >= 0.8 * len(outside)  # outside: (nearly all) traded back
    assert result.tracking_distance_after < result.tracking_distance_before


def test_zero_target_has_a_zero_relative_band() -> None:
    config = PortfolioConfiguration(
        holdings=[{"symbol": "AAA", "shares": 10}, {"symbol": "BBB", "shares": 1000}],
        target_weights={"BBB": 0.95},
        cash=0.0,
        relative_tolerance=0.25,
    )
    data = build_problem_data(config, {"AAA": 10.0, "BBB": 100.0})  # AAA at 0.1 %, target 0
    assert data.blocked["tolerance_band"].tolist() == [False, True]


def test_relative_tolerance_is_validated() -> None:
    with pytest.raises(InvalidPortfolioError) as info:
        PortfolioConfiguration(holdings=[], target_weights={"AAA": 0.5}, relative_tolerance=-0.1)
    assert info.value.field == "relative_tolerance"


# -- which cap wins ----------------------------------------------------------------------------


def sector_book(**overrides: object) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """Sector X (one asset, XA) targets 30 %, held at 10 %; Y and Z target 20 % each (30 % cash)."""
    fields: dict[str, object] = {
        "holdings": [{"symbol": "XA", "shares": 100}, {"symbol": "YA", "shares": 450}, {"symbol": "ZA", "shares": 450}],
        "target_weights": {"XA": 0.30, "YA": 0.20, "ZA": 0.20},
        "sectors": {"XA": "X", "YA": "Y", "ZA": "Z"},
        "tolerance": 0.0,
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
        "method": "minimize_costs",
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields), {"XA": 100.0, "YA": 100.0, "ZA": 100.0}  # type: ignore[arg-type]


def test_a_looser_sector_cap_overrides_max_sector_weight() -> None:
    config, prices = sector_book(max_sector_weight=0.2, sector_caps={"X": 0.35})
    # X's own cap (0.35) replaces the general 0.2: X reaches its 30 % target (the unconstrained
    # optimum), which 0.2 would have forbidden; Y and Z keep the general cap.
    result = rebalance(config, prices)
    assert result.post_trade_weights["XA"] == pytest.approx(0.30, abs=1e-6)
    assert result.post_trade_weights["YA"] <= 0.2 + 1e-9
    data = build_problem_data(config, prices)
    assert dict(zip(data.sector_names, data.sector_cap.tolist(), strict=True)) == {"X": 0.35, "Y": 0.2, "Z": 0.2}


def test_a_tighter_sector_cap_overrides_max_sector_weight() -> None:
    config, prices = sector_book(max_sector_weight=0.5, sector_caps={"X": 0.1})
    result = rebalance(config, prices)
    assert result.post_trade_weights["XA"] <= 0.1 + 1e-9
    assert result.post_trade_weights["XA"] == pytest.approx(0.1, abs=1e-6)


def test_max_position_weights_override_max_position_weight_both_ways() -> None:
    loose, prices = sector_book(max_position_weight=0.2, max_position_weights={"XA": 0.4})
    assert rebalance(loose, prices).post_trade_weights["XA"] == pytest.approx(0.30, abs=1e-6)
    tight, _ = sector_book(max_position_weight=0.5, max_position_weights={"XA": 0.05})
    assert rebalance(tight, prices).post_trade_weights["XA"] == pytest.approx(0.05, abs=1e-6)


def test_a_custom_sector_constraint_only_tightens() -> None:
    config, prices = sector_book(sector_caps={"X": 0.35}, custom_constraints=[SectorConcentrationConstraint(0.2)])
    result = rebalance(config, prices)
    assert result.post_trade_weights["XA"] == pytest.approx(0.2, abs=1e-6)
    assert result.is_compliant


# -- unclassified symbols ------------------------------------------------------------------------


@pytest.mark.parametrize("label", [None, "Unclassified", "n/a", ""])
def test_an_unclassified_symbol_is_in_no_sector_and_uncapped(label: str | None) -> None:
    sectors = {"XA": "X", "YA": "Y"}
    if label is not None:
        sectors["ZA"] = label
    config, prices = sector_book(sectors=sectors, max_sector_weight=0.36)
    config = config.model_copy(update={"target_weights": {"XA": 0.25, "YA": 0.25, "ZA": 0.5}})
    assert "ZA" not in config.sectors
    data = build_problem_data(config, prices)
    assert data.sector_names == ("X", "Y")
    assert data.sector_of.tolist() == [0, 1, -1]
    assert any("ZA" in note and "no sector cap" in note for note in data.notes)
    result = rebalance(config, prices)
    # The unclassified asset reaches its 50 % target although every sector is capped at 36 %.
    assert result.post_trade_weights["ZA"] == pytest.approx(0.5, abs=1e-6)
    assert result.is_compliant


def test_caps_without_any_sector_are_still_refused() -> None:
    with pytest.raises(InvalidPortfolioError, match="no sector is given") as info:
        sector_book(sectors={}, max_sector_weight=0.3)
    assert info.value.field == "sectors"


def test_market_data_unclassified_symbols_rebalance_under_sector_caps(tmp_path: Path) -> None:
    path = tmp_path / "sectors.csv"
    path.write_text("symbol,sector\nXA,X\nYA,Y\nZA,Unclassified\n")
    sectors = MarketDataProvider(path).get_sectors(["XA", "YA", "ZA"])
    assert sectors == {"XA": "X", "YA": "Y"}
    config, prices = sector_book(sectors=sectors, max_sector_weight=0.3)
    config = config.model_copy(update={"target_weights": {"XA": 0.3, "YA": 0.2, "ZA": 0.45}})
    result = rebalance(config, prices)
    assert result.is_compliant
    assert result.post_trade_weights["ZA"] == pytest.approx(0.45, abs=1e-6)


def test_sector_concentration_constraint_skips_unclassified_symbols() -> None:
    config, prices = sector_book(
        sectors={"XA": "X", "YA": "Y"}, custom_constraints=[SectorConcentrationConstraint(0.36)]
    )
    config = config.model_copy(update={"target_weights": {"XA": 0.25, "YA": 0.25, "ZA": 0.5}})
    result = rebalance(config, prices)
    assert result.post_trade_weights["ZA"] == pytest.approx(0.5, abs=1e-6)
    assert result.is_compliant  # the validation agrees with the solve: ZA is in no sector


def test_the_analysis_uses_the_same_band_as_the_solve() -> None:
    from finwiz import PortfolioAnalyzer

    config, prices = wide_book(relative_tolerance=0.25)
    data = build_problem_data(config, prices)
    needs = PortfolioAnalyzer().analyze_current_portfolio(config, prices.to_dict()).needs
    assert [n.band_exceeded for n in needs] == (~data.blocked["tolerance_band"]).tolist()


def test_unclassified_symbols_on_the_sample_in_whole_shares(
    sample_prices: pd.Series, sample_sector_map: dict[str, str], make_config
) -> None:
    # A third of the sample loses its sector; caps bind on the rest, the default (native OSQP) path.
    symbols = list(sample_sector_map)
    sectors = {s: v for i, (s, v) in enumerate(sample_sector_map.items()) if i % 3}
    sectors.update({s: "Unclassified" for i, s in enumerate(symbols) if i % 3 == 0})
    config = make_config(sample_prices, sectors=sectors, max_sector_weight=0.15, min_trade_size=0.0)
    result = rebalance(config, sample_prices)
    assert result.rounding == "whole_shares"
    assert result.is_compliant
    totals: dict[str, float] = {}
    for symbol, weight in result.post_trade_weights.items():
        if symbol in config.sectors:
            totals[config.sectors[symbol]] = totals.get(config.sectors[symbol], 0.0) + weight
    assert max(totals.values()) <= 0.15 + 1e-9
    assert "Unclassified" not in result.sectors.values()
    checked = {c.constraint for c in result.compliance if c.term == "sector_cap"}
    assert checked == {f"sector_cap[{name}]" for name in totals}  # one check per classified sector
