"""Blended models (:class:`finwiz.Model`): a model of models flattens to the hand computation with
each sleeve's part kept, bad models are refused by name, and a configuration built from a model
measures drift per sleeve in ``result.sleeves()``."""

from __future__ import annotations

import pickle

import pytest

from finwiz import Holding, InvalidPortfolioError, Model, PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine


def _growth() -> Model:
    us = Model("us_equity", {"VTI": 0.7, "QQQ": 0.3})
    intl = Model("intl", {"VXUS": 1.0})
    equity = Model("equity", {us: 0.6, intl: 0.4})
    bonds = Model("bonds", {"BND": 0.9, "VTI": 0.1})
    return Model("growth", {equity: 0.8, bonds: 0.2})


HAND = {
    "VTI": 0.8 * 0.6 * 0.7 + 0.2 * 0.1,
    "QQQ": 0.8 * 0.6 * 0.3,
    "VXUS": 0.8 * 0.4,
    "BND": 0.2 * 0.9,
}


def test_a_model_of_models_flattens_to_the_hand_computation() -> None:
    flat = _growth().target_weights()
    assert flat.keys() == HAND.keys()
    for symbol, weight in HAND.items():
        assert flat[symbol] == pytest.approx(weight, abs=1e-15)
    assert sum(flat.values()) == pytest.approx(1.0, abs=1e-12)


def test_the_sleeves_keep_each_path() -> None:
    sleeves = _growth().sleeve_weights()
    assert set(sleeves) == {
        "growth",
        "growth/equity",
        "growth/equity/us_equity",
        "growth/equity/intl",
        "growth/bonds",
    }
    assert sleeves["growth/bonds"] == pytest.approx({"BND": 0.18, "VTI": 0.02})
    assert sleeves["growth/equity/us_equity"] == pytest.approx({"VTI": 0.336, "QQQ": 0.144})
    assert sleeves["growth"] == pytest.approx(HAND)
    frame = _growth().to_frame()
    vti = frame[frame["symbol"] == "VTI"].set_index("sleeve")["weight"]
    assert vti.to_dict() == pytest.approx({"growth/equity/us_equity": 0.336, "growth/bonds": 0.02})


def _same_sleeves(got: dict[str, dict[str, float]], want: dict[str, dict[str, float]]) -> None:
    assert got.keys() == want.keys()
    for name, parts in want.items():
        assert got[name] == pytest.approx(parts, abs=1e-15), name


def test_models_named_in_definitions_are_the_same_model() -> None:
    definitions = {
        "growth": {"equity": 0.8, "bonds": 0.2},
        "equity": {"us_equity": 0.6, "intl": 0.4},
        "us_equity": {"VTI": 0.7, "QQQ": 0.3},
        "intl": {"VXUS": 1.0},
        "bonds": {"BND": 0.9, "VTI": 0.1},
    }
    model = Model.from_definitions(definitions, "growth")
    _same_sleeves(model.sleeve_weights(), _growth().sleeve_weights())


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: Model("m", {"VTI": 0.6, "BND": 0.3}), "sum to 0.9, not 1"),
        (lambda: Model("m", {"VTI": 1.2, "BND": -0.2}), "not a finite number >= 0"),
        (lambda: Model("m", {"VTI": True}), "not a finite number"),
        (lambda: Model("m", {"vti": 0.5, "VTI": 0.5}), "VTI is listed twice"),
        (lambda: Model("m", {}), "non-empty"),
        (lambda: Model("a/b", {"VTI": 1.0}), "without '/'"),
        (
            lambda: Model("top", {Model("x", {"VTI": 1.0}): 0.5, Model("x", {"BND": 1.0}): 0.5}),
            "two different models are named 'x'",
        ),
        (
            lambda: Model.from_definitions({"a": {"b": 1.0}, "b": {"c": 0.5, "VTI": 0.5}, "c": {"a": 1.0}}, "a"),
            "a cycle a -> b -> c -> a",
        ),
        (lambda: Model.from_definitions({"a": {"VTI": 1.0}}, "z"), "no model named 'z'"),
    ],
)
def test_bad_models_are_refused_by_name(build: object, words: str) -> None:
    with pytest.raises(InvalidPortfolioError, match=words) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == "model"


def _config(**fields: object) -> PortfolioConfiguration:
    base: dict[str, object] = {
        "holdings": [Holding(symbol="VTI", shares=100), Holding(symbol="BND", shares=100)],
        "target_weights": _growth(),
        "cash": 10_000.0,
        "tolerance": 0.0,
        "transaction_cost_rate": 0.0,
        "min_trade_size": 0.0,
        "allow_fractional_shares": True,
        "method": "minimize_costs",
    }
    return PortfolioConfiguration(**{**base, **fields})  # type: ignore[arg-type]


PRICES = {"VTI": 250.0, "QQQ": 450.0, "VXUS": 60.0, "BND": 72.0}


def test_a_configuration_takes_a_model_as_targets_and_keeps_its_sleeves() -> None:
    config = _config()
    assert config.target_weights == pytest.approx(HAND)
    _same_sleeves(config.sleeves, _growth().sleeve_weights())
    assert pickle.loads(pickle.dumps(config)).sleeves == config.sleeves
    with pytest.raises(InvalidPortfolioError, match="sleeves"):
        _config(sleeves={"x": {"VTI": 1.0}})


def test_result_sleeves_measure_drift_per_sleeve() -> None:
    config = _config()
    result = RebalancingEngine().rebalance(config, PRICES)
    frame = result.sleeves()
    assert list(frame.columns) == ["depth", "target", "before", "after", "drift_before", "drift_after", "trade_value"]
    assert frame.loc["growth", "depth"] == 1
    assert frame.loc["growth/equity/us_equity", "depth"] == 3
    # Before: 25,000 of VTI and 7,200 of BND out of 42,200. VTI is split 0.336 : 0.02 between the
    # us_equity and bonds sleeves; BND is all bonds.
    value = 100 * 250.0 + 100 * 72.0 + 10_000.0
    vti, bnd = 25_000.0 / value, 7_200.0 / value
    assert frame.loc["growth/bonds", "before"] == pytest.approx(bnd + vti * 0.02 / HAND["VTI"])
    assert frame.loc["growth/equity/us_equity", "before"] == pytest.approx(vti * 0.336 / HAND["VTI"])
    assert frame.loc["growth/equity/intl", "before"] == 0.0
    assert frame.loc["growth/bonds", "drift_before"] == pytest.approx(frame.loc["growth/bonds", "before"] - 0.2)
    # Zero costs, fractional shares, no band: every sleeve ends on its target.
    assert frame["drift_after"].abs().max() < 1e-5
    assert frame.loc["growth/equity/intl", "trade_value"] == pytest.approx(0.32 * value, rel=1e-6)
    assert frame.loc["growth", "trade_value"] == pytest.approx(sum(t.signed_trade_value for t in result.trades))


def test_without_a_model_sleeves_are_empty() -> None:
    config = _config(target_weights=HAND)
    result = RebalancingEngine().rebalance(config, PRICES)
    assert result.sleeves().empty
    assert result.exposures().empty


def test_sleeve_trades_say_which_model_asked_for_each_trade() -> None:
    result = RebalancingEngine().rebalance(_config(), PRICES)
    frame = result.sleeve_trades()
    by = {(row.sleeve, row.symbol): row.trade_value for row in frame.itertuples()}
    trades = {t.symbol: t.signed_trade_value for t in result.trades}
    # VTI: us_equity asked 0.336 and bonds 0.02 of its 0.356 target; QQQ and VXUS one sleeve each.
    assert by[("growth/equity/us_equity", "VTI")] == pytest.approx(trades["VTI"] * 0.336 / 0.356)
    assert by[("growth/bonds", "VTI")] == pytest.approx(trades["VTI"] * 0.02 / 0.356)
    assert by[("growth/equity/intl", "VXUS")] == pytest.approx(trades["VXUS"])
    assert frame.groupby("symbol")["trade_value"].sum().to_dict() == pytest.approx(trades)
    assert set(frame["sleeve"]) <= {"growth/equity/us_equity", "growth/equity/intl", "growth/bonds"}
