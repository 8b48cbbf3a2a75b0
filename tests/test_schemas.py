import math

import pytest

from finwiz import Holding, InvalidPortfolioError, PortfolioConfiguration, PriceData, RebalancingSettings
from finwiz.schemas import DEFAULT_MIN_TRADE_SIZE, DEFAULT_TOLERANCE, DEFAULT_TRANSACTION_COST_RATE


def config(**kw: object) -> PortfolioConfiguration:
    fields: dict[str, object] = {"holdings": [{"symbol": "AAA", "shares": 10}], "target_weights": {"AAA": 0.5}}
    fields.update(kw)
    return PortfolioConfiguration(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "needle", "field", "symbol"),
    [
        ({"holdings": [{"symbol": "AAA", "shares": -1}]}, "shares", "shares", "AAA"),
        ({"holdings": [{"symbol": "AAA", "shares": math.nan}]}, "shares", "shares", "AAA"),
        ({"holdings": [{"symbol": "AAA", "shares": math.inf}]}, "shares", "shares", "AAA"),
        ({"target_weights": {"AAA": -0.1}}, "negative", "target_weights", "AAA"),
        ({"target_weights": {"AAA": 0.7, "BBB": 0.5}}, "above 1", "target_weights", None),
        ({"target_weights": {"AAA": math.nan}}, "finite", "target_weights", "AAA"),
        (
            {"holdings": [{"symbol": "AAA", "shares": 1}, {"symbol": " aaa ", "shares": 2}]},
            "twice",
            "holdings",
            "AAA",
        ),
        ({"target_weights": {"AAA": 0.2, "aaa": 0.2}}, "twice", "target_weights", "AAA"),
        ({"holdings": [], "target_weights": {}}, "empty portfolio", "holdings", None),
        ({"no_buy": ["ZZZ"]}, "unknown symbol ZZZ", "no_buy", "ZZZ"),
        ({"max_sector_weight": 0.3}, "no sector is given for AAA", "sectors", "AAA"),
        ({"min_esg_score": 3.0}, "no score is given for AAA", "esg_scores", "AAA"),
        ({"lot_sizes": {"AAA": 0}}, "lot size", "lot_sizes", "AAA"),
        ({"cash": -5}, "cash", "cash", None),
        ({"unknown_key": 1}, "unknown_key", "unknown_key", None),
        ({"holdings": [{"symbol": "", "shares": 1}]}, "empty symbol", "symbol", None),
        ({"holdings": [{"symbol": "CASH", "shares": 1}]}, "reserved", None, "CASH"),
    ],
)
def test_bad_input_names_field_and_symbol(fields: dict[str, object], needle: str, field: str | None, symbol: str | None) -> None:
    with pytest.raises(InvalidPortfolioError) as info:
        config(**fields)
    assert needle in str(info.value)
    if field is not None:
        assert info.value.field is not None and field in info.value.field
    if symbol is not None:
        assert info.value.symbol == symbol


def test_symbols_are_canonical_and_targets_default_to_zero() -> None:
    cfg = config(holdings=[{"symbol": " aaa", "shares": 1}, {"symbol": "bbb", "shares": 2}], target_weights={"ccc": 0.4})
    assert cfg.symbols == ["AAA", "BBB", "CCC"]
    assert cfg.shares_by_symbol() == {"AAA": 1.0, "BBB": 2.0, "CCC": 0.0}
    assert cfg.cash_target == pytest.approx(0.6)


def test_defaults_match_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REBALANCING_DEFAULT_TOLERANCE", raising=False)
    settings = RebalancingSettings(_env_file=None)  # type: ignore[call-arg]
    cfg = config()
    assert cfg.tolerance == settings.default_tolerance == DEFAULT_TOLERANCE == 0.05
    assert cfg.transaction_cost_rate == settings.default_transaction_cost_rate == DEFAULT_TRANSACTION_COST_RATE
    assert cfg.min_trade_size == settings.default_min_trade_size == DEFAULT_MIN_TRADE_SIZE == 100.0


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBALANCING_PRICE_CACHE_TTL_SECONDS", "42")
    assert RebalancingSettings(_env_file=None).price_cache_ttl_seconds == 42  # type: ignore[call-arg]


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
def test_price_data_refuses_bad_prices(price: float) -> None:
    with pytest.raises(InvalidPortfolioError, match="price"):
        PriceData(symbol="AAA", price=price)


def test_holding_sector_and_esg_merge_into_config() -> None:
    cfg = PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=1, sector="Tech", esg_score=7.0)],
        target_weights={"AAA": 0.5},
        max_sector_weight=0.6,
        min_esg_score=5.0,
    )
    assert cfg.sectors == {"AAA": "Tech"}
    assert cfg.esg_scores == {"AAA": 7.0}
