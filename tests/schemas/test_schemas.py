import math
import pickle

import pytest
from pydantic import ValidationError

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
def test_bad_input_names_field_and_symbol(
    fields: dict[str, object], needle: str, field: str | None, symbol: str | None
) -> None:
    with pytest.raises(InvalidPortfolioError) as info:
        config(**fields)
    assert needle in str(info.value)
    if field is not None:
        assert info.value.field is not None
        assert field in info.value.field
    if symbol is not None:
        assert info.value.symbol == symbol


def test_symbols_are_canonical_and_targets_default_to_zero() -> None:
    cfg = config(
        holdings=[{"symbol": " aaa", "shares": 1}, {"symbol": "bbb", "shares": 2}], target_weights={"ccc": 0.4}
    )
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


def test_trusted_construction_equals_validation() -> None:
    """The engine's fast constructor builds the same object validation builds, from every field."""
    from finwiz.schemas import ComplianceCheck, TradeAction, TradeRecommendation

    trade = {
        "symbol": "AAPL",
        "action": TradeAction.BUY,
        "shares": 3.0,
        "price": 190.5,
        "trade_value": 571.5,
        "transaction_cost": 0.57,
        "market_impact_cost": 0.0,
        "total_estimated_cost": 0.57,
        "current_shares": 10.0,
        "post_trade_shares": 13.0,
        "current_weight": 0.1,
        "target_weight": 0.12,
        "post_trade_weight": 0.119,
        "lots": [],
        "reasons": [],
    }
    check = {
        "constraint": "sector_cap",
        "term": "sector_cap",
        "kind": "<=",
        "limit": 0.25,
        "value": 0.2,
        "slack": 0.05,
        "satisfied": True,
        "unit": "weight",
    }
    for model, values in ((TradeRecommendation, trade), (ComplianceCheck, check)):
        assert set(values) == set(model.model_fields)  # the engine passes every field
        fast, validated = model.trusted(**values), model.model_validate(values)
        assert fast == validated
        assert fast.model_dump() == validated.model_dump()
        assert fast.model_fields_set == validated.model_fields_set
        assert pickle.loads(pickle.dumps(fast)) == validated


def test_bulk_construction_matches_trusted_one_by_one() -> None:
    """``_from_states`` (a list or a generator of states, default or given fields sets, fewer sets
    than states) builds what :meth:`trusted` builds one object at a time."""
    from finwiz.schemas import TradeReason

    states = [
        {"kind": "term", "label": f"drift {i}", "amount": 0.1 * i, "unit": "weight", "score": 1.0 / (i + 1)}
        for i in range(5)
    ]
    one_by_one = [TradeReason.trusted(**state) for state in states]
    for built in (
        TradeReason._from_states([dict(state) for state in states]),
        TradeReason._from_states(dict(state) for state in states),
    ):
        assert built == one_by_one
        assert [b.__dict__ for b in built] == [o.__dict__ for o in one_by_one]
        assert all(b.model_fields_set is o.model_fields_set for b, o in zip(built, one_by_one, strict=True))
        assert all(b.__pydantic_extra__ is None and b.__pydantic_private__ is None for b in built)
    given = [{"kind", "label"}, {"kind", "label", "score"}]
    fewer = TradeReason._from_states([dict(state) for state in states], given)
    assert len(fewer) == 2
    assert [f.model_fields_set for f in fewer] == given
    assert pickle.loads(pickle.dumps(fewer[1])) == fewer[1]
    assert TradeReason._from_states([]) == []


def test_trusted_objects_share_one_fields_set_safely() -> None:
    """Trusted objects of one class share one fields set of every field: what pydantic does to a
    fields set (add on assignment, copy on ``model_copy``) leaves the others' exactly as before."""
    from finwiz.schemas import RebalancingNeed, TradeAction

    values = {
        "symbol": "A",
        "current_weight": 0.1,
        "target_weight": 0.2,
        "drift": -0.1,
        "tolerance": 0.05,
        "band_exceeded": True,
        "urgency": 2.0,
        "recommended_action": TradeAction.BUY,
        "current_value": 10.0,
        "target_value": 20.0,
    }
    first, second = RebalancingNeed.trusted(**values), RebalancingNeed.trusted(**dict(values, symbol="B"))
    every = set(RebalancingNeed.model_fields)
    assert first.model_fields_set == second.model_fields_set == every
    first.symbol = "C"  # pydantic adds the name to the (shared) fields set
    copied = second.model_copy(update={"urgency": 3.0})
    assert (first.symbol, second.symbol, copied.urgency) == ("C", "B", 3.0)
    assert first.model_fields_set == second.model_fields_set == copied.model_fields_set == every
    assert second.model_dump(exclude_unset=True) == dict(values, symbol="B")
    partial = RebalancingNeed.trusted(**{k: v for k, v in values.items() if k != "urgency"})  # a field left out
    assert partial.model_fields_set == every - {"urgency"}
    assert second.model_fields_set == every


def test_engine_objects_built_without_validation_are_valid(
    sample_config: PortfolioConfiguration, sample_prices: object
) -> None:
    from finwiz import rebalance
    from finwiz.schemas import ComplianceCheck, RebalancingNeed, TradeRecommendation

    result = rebalance(sample_config, sample_prices, analyze=True)  # type: ignore[arg-type]
    assert result.trades
    assert result.analysis is not None
    for need in result.analysis.needs:
        assert need.model_fields_set == set(RebalancingNeed.model_fields)
        assert RebalancingNeed.model_validate(need.model_dump()) == need
    for trade in result.trades:
        assert trade.model_fields_set == set(TradeRecommendation.model_fields)
        assert TradeRecommendation.model_validate(trade.model_dump()) == trade
    for check in result.compliance:
        assert check.model_fields_set == set(ComplianceCheck.model_fields)
        assert ComplianceCheck.model_validate(check.model_dump()) == check


def test_result_pickles_compactly_and_comes_back_equal(
    sample_config: PortfolioConfiguration, sample_prices: object
) -> None:
    from finwiz import rebalance

    result = rebalance(sample_config, sample_prices, portfolio_id="acct-1")  # type: ignore[arg-type]
    back = pickle.loads(pickle.dumps(result))
    assert back == result
    assert back.model_dump() == result.model_dump()
    assert back.model_fields_set == result.model_fields_set
    assert list(back.prices) == list(result.prices)  # symbol order kept
    assert [t.symbol for t in back.trades] == [t.symbol for t in result.trades]
    assert len(pickle.dumps(result)) < len(pickle.dumps(result.model_dump()))


def test_packed_trades_keep_each_trades_reasons_and_fields_sets() -> None:
    """A result's trades pickle with every trade's reasons in one table (counts per trade): each
    trade gets back its own reasons in order, none, one or several, shared ones included, and every
    object its fields set (pydantic's own copy protocol as the plain computation)."""
    import copy

    from finwiz.schemas import TradeAction, TradeReason, TradeRecommendation
    from finwiz.schemas._pickling import _pack_models, _unpack_models

    def reason(label: str) -> TradeReason:
        return TradeReason.trusted(kind="term", label=label, amount=0.1, unit="weight", score=0.2)

    shared = reason("minimum trade")
    counts = [0, 1, 3, 0, 2]
    trades = [
        TradeRecommendation.trusted(
            symbol=f"S{i}",
            action=TradeAction.BUY,
            shares=1.0 + i,
            price=10.0,
            trade_value=10.0 * (1 + i),
            transaction_cost=0.01,
            market_impact_cost=0.0,
            total_estimated_cost=0.01,
            current_shares=0.0,
            post_trade_shares=1.0 + i,
            current_weight=0.0,
            target_weight=0.1,
            post_trade_weight=0.1,
            lots=[],
            reasons=[reason(f"r{i}.{k}") for k in range(n - 1)] + [shared] if n else [],
        )
        for i, n in enumerate(counts)
    ]
    partial = {"symbol", "action", "shares", "price", "reasons"}  # every field given, a few of them set
    trades.append(TradeRecommendation.model_construct(partial, **dict(trades[2].__dict__, symbol="P")))
    packed = _pack_models(trades, nested="reasons")
    assert packed[0] is TradeRecommendation  # as rows
    back = _unpack_models(*pickle.loads(pickle.dumps(packed)))
    plain = [copy.deepcopy(t) for t in trades]
    assert back == plain
    assert [[r.label for r in t.reasons] for t in back] == [[r.label for r in t.reasons] for t in trades]
    assert [t.model_fields_set for t in back] == [t.model_fields_set for t in plain]
    assert [r.model_fields_set for t in back for r in t.reasons] == [
        r.model_fields_set for t in plain for r in t.reasons
    ]
    back[-1].current_shares = 1.0  # a partial fields set is the object's own: assignment leaves the others'
    assert back[-1].model_fields_set == partial | {"current_shares"}
    assert back[0].model_fields_set == back[1].model_fields_set == set(TradeRecommendation.model_fields)
    assert _unpack_models(*pickle.loads(pickle.dumps(_pack_models([], nested="reasons")))) == []
    # Models of another layout (a required field left out) are pickled as they are, not as rows.
    odd = [*trades, TradeRecommendation.model_construct(symbol="X", action=TradeAction.SELL, shares=1.0, price=2.0)]
    packed = _pack_models(odd, nested="reasons")
    assert packed[0] is None
    assert _unpack_models(*pickle.loads(pickle.dumps(packed))) == [copy.deepcopy(t) for t in odd]


def test_configuration_pickles_compactly_and_comes_back_equal(sample_config: PortfolioConfiguration) -> None:
    config = sample_config.model_copy(update={"holdings": [*sample_config.holdings, Holding(symbol="zz", shares=1)]})
    back = pickle.loads(pickle.dumps(config))
    assert back == config
    assert back.model_dump() == config.model_dump()
    assert back.model_fields_set == config.model_fields_set
    assert [h.model_fields_set for h in back.holdings] == [h.model_fields_set for h in config.holdings]
    assert back.symbols == config.symbols


def test_result_repr_is_one_line(sample_config: PortfolioConfiguration, sample_prices: object) -> None:
    from finwiz import rebalance

    result = rebalance(sample_config, sample_prices, portfolio_id="acct-1")  # type: ignore[arg-type]
    text = repr(result)
    assert "\n" not in text
    assert len(text) < 400
    assert f"trades={len(result.trades)}" in text
    assert "status='optimal'" in text
    assert "portfolio_id='acct-1'" in text


def test_a_trade_reason_is_frozen_so_a_shared_fact_cannot_change_under_another_trade() -> None:
    from finwiz.schemas import TradeReason

    reason = TradeReason.trusted(kind="fact", label="minimum trade (1,000)", amount=1000.0, unit="currency", score=0.0)
    with pytest.raises(ValidationError):
        reason.label = "changed"
    assert reason.label == "minimum trade (1,000)"
