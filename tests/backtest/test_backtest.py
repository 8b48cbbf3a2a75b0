"""Backtests: money adds up to the cent, policies do what they say, bad input is refused by name.

Every figure is checked against an independent computation in plain numpy/pandas (a per-day loop
written here, not the vectorised blocks of the simulator).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finwiz import Holding, PortfolioConfiguration, rebalance
from finwiz.backtest import (
    TRADE_COLUMNS,
    Backtest,
    BacktestResult,
    BandRebalance,
    CalendarRebalance,
    NeverRebalance,
    OptimizedRebalance,
    RebalanceContext,
    RebalancePolicy,
)
from finwiz.data import sample_price_history, sample_sectors
from finwiz.errors import ConfigurationError, InvalidPortfolioError, PolicyError, PriceDataError
from finwiz.optimizer import MarketImpactModel
from finwiz.schemas import CASH

try:
    import distributed
except ImportError:  # pragma: no cover - dask is in the dev extra; CI must have it
    if os.environ.get("CI"):
        raise
    distributed = None

PRICES = sample_price_history().loc["2016-01-01":"2019-12-31"]
SYMBOLS = [str(s) for s in PRICES.columns]
SECTORS = {str(k): str(v) for k, v in sample_sectors().items()}
VALUE = 1_000_000.0


def book(
    prices: pd.DataFrame = PRICES, *, seed: int = 0, cash_target: float = 0.02, **overrides: Any
) -> PortfolioConfiguration:
    """A drifted whole-share book at the first date, equal-weight target."""
    rng = np.random.default_rng(seed)
    symbols = [str(s) for s in prices.columns]
    p0 = prices.iloc[0].to_numpy()
    shares = np.floor(VALUE * 0.97 * rng.dirichlet(np.full(len(symbols), 3.0)) / p0)
    fields: dict[str, Any] = {
        "holdings": [Holding(symbol=s, shares=float(q)) for s, q in zip(symbols, shares, strict=True)],
        "target_weights": dict.fromkeys(symbols, (1 - cash_target) / len(symbols)),
        "cash": VALUE - float(shares @ p0),
        "min_trade_size": 0.0,
        "tolerance": 0.0,
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


def replay(result: BacktestResult, prices: pd.DataFrame, config: PortfolioConfiguration) -> np.ndarray:
    """Daily values rebuilt from the initial book, the trades and the cash flows, one day at a time."""
    shares = config.shares_by_symbol()
    cash = config.cash
    by_day = dict(list(result.trades.groupby("date", observed=True)))
    out = []
    for day, row in prices.iterrows():
        cash += float(result.cash_flows[day])
        for trade in by_day.get(day, pd.DataFrame(columns=TRADE_COLUMNS)).itertuples():
            sign = 1.0 if trade.side == "buy" else -1.0
            assert trade.price == row[trade.symbol]
            shares[str(trade.symbol)] += sign * trade.shares
            cash -= sign * trade.shares * trade.price + trade.cost
        out.append(sum(q * row[s] for s, q in shares.items()) + cash)
    return np.array(out)


def assert_books_sane(result: BacktestResult, *, whole: bool = True) -> None:
    assert (result.holdings.to_numpy() >= -1e-9).all(), "a holding went negative"
    assert (result.trades["shares"] > 0).all()
    if whole:
        assert np.array_equal(result.trades["shares"], np.round(result.trades["shares"]))
    assert (result.trades["cost"] >= 0).all()


# --------------------------------------------------------------------------- money adds up

POLICIES = {
    "never": NeverRebalance(),
    "monthly": CalendarRebalance("M"),
    "every 10 days": CalendarRebalance(10),
    "band": BandRebalance(0.01),
    "band weekly": BandRebalance(0.01, check_every="W"),
    "optimized": OptimizedRebalance("minimize_costs", every="Q", max_sector_weight=0.3, max_turnover=0.3),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_replaying_trades_reproduces_values_to_the_cent(name: str) -> None:
    config = book(sectors=SECTORS)
    flows = pd.Series([25_000.0, -60_000.0, 10_000.0], index=pd.to_datetime(["2016-05-02", "2017-09-15", "2018-02-03"]))
    result = Backtest(PRICES, initial=config, cash_flows=flows).run(POLICIES[name])
    assert np.abs(replay(result, PRICES, config) - result.values.to_numpy()).max() < 0.005
    assert_books_sane(result)
    assert (result.cash >= -1e-7).all()
    assert list(result.trades.columns) == TRADE_COLUMNS
    weights = result.weights
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert list(weights.columns) == [*SYMBOLS, CASH]


@st.composite
def histories(draw: Any) -> tuple[pd.DataFrame, PortfolioConfiguration, pd.Series, Any]:
    n = draw(st.integers(1, 5))
    days = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, draw(st.sampled_from([0.005, 0.03, 0.1])), (days, n))
    prices = pd.DataFrame(
        draw(st.floats(1.0, 500.0)) * np.exp(np.cumsum(steps, axis=0)),
        index=pd.bdate_range("2021-01-04", periods=days),
        columns=[f"S{i}" for i in range(n)],
    )
    shares = [float(draw(st.integers(0, 2000))) for _ in range(n)]
    weights = rng.dirichlet(np.ones(n + 1))[:n]
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=f"S{i}", shares=shares[i]) for i in range(n)],
        target_weights={f"S{i}": float(w) for i, w in enumerate(weights)},
        cash=draw(st.floats(1.0, 50_000.0)),
        transaction_cost_rate=draw(st.sampled_from([0.0, 0.001, 0.01])),
        min_trade_size=draw(st.sampled_from([0.0, 100.0])),
        allow_fractional_shares=draw(st.booleans()),
    )
    flow_days = draw(st.lists(st.integers(0, days - 1), max_size=3, unique=True))
    flows = pd.Series(
        [draw(st.floats(-80_000.0, 80_000.0)) for _ in flow_days], index=prices.index[flow_days], dtype=float
    )
    policy = draw(
        st.sampled_from(
            [NeverRebalance(), CalendarRebalance("W"), CalendarRebalance(3), BandRebalance(0.02), BandRebalance(0.0)]
        )
    )
    return prices, config, flows, policy


@given(histories())
def test_invariants_money_adds_up_no_short_holdings_whole_shares(case: Any) -> None:
    prices, config, flows, policy = case
    result = Backtest(prices, initial=config, cash_flows=flows).run(policy)
    assert np.abs(replay(result, prices, config) - result.values.to_numpy()).max() < 0.005
    assert_books_sane(result, whole=not config.allow_fractional_shares)
    # Cash is never negative, unless a withdrawal exceeded everything and it says so.
    shortfalls = result.rebalances[result.rebalances["status"] == "failed"]
    if len(shortfalls) == 0:
        assert (result.cash >= -1e-7).all()
    else:
        assert (shortfalls["trigger"] == "cash_shortfall").all()


# --------------------------------------------------------------------------- policies, independently


def plain_calendar(prices: pd.DataFrame, config: PortfolioConfiguration, days: np.ndarray, rate: float) -> np.ndarray:
    """Fractional trade-to-target on ``days``, costs rate x |trade|, one day at a time."""
    p = prices.to_numpy()
    w = np.array([config.target_weights[s] for s in prices.columns])
    x = np.array([config.shares_by_symbol()[s] for s in prices.columns])
    cash = config.cash
    out = []
    for t in range(len(p)):
        if days[t]:
            value = x @ p[t] + cash
            new = np.round(w * value / p[t] * 1e6) / 1e6
            cash -= (new - x) @ p[t] + rate * np.abs((new - x) * p[t]).sum()
            x = new
        out.append(x @ p[t] + cash)
    return np.array(out)


def test_calendar_matches_a_plain_loop() -> None:
    config = book(allow_fractional_shares=True, transaction_cost_rate=0.002)
    result = Backtest(PRICES, initial=config).run(CalendarRebalance("M"))
    months = PRICES.index.to_period("M")
    first = np.r_[True, months[1:] != months[:-1]]
    np.testing.assert_allclose(result.values, plain_calendar(PRICES, config, first, 0.002), rtol=1e-12)
    assert list(result.rebalances.index) == list(PRICES.index[first])


def test_calendar_whole_shares_land_within_a_share_of_target() -> None:
    config = book(transaction_cost_rate=0.001)
    result = Backtest(PRICES, initial=config).run(CalendarRebalance("Q"))
    p = PRICES.loc[result.rebalances.index]
    w = result.weights.loc[result.rebalances.index, SYMBOLS]
    gap = (w - 0.98 / len(SYMBOLS)).abs().to_numpy()
    one_share = (p.to_numpy() / result.values.loc[p.index].to_numpy()[:, None]) * 1.01
    assert (gap <= one_share + 0.001 * 0.1).all()  # a share, plus the cost paid from cash
    assert len(result.rebalances) == len(PRICES.index.to_period("Q").unique())


def test_band_fires_exactly_when_a_weight_leaves_its_band() -> None:
    config = book()
    result = Backtest(PRICES, initial=config).run(BandRebalance(0.015))
    holdings, p = result.holdings.to_numpy(), PRICES.to_numpy()
    cash = result.cash.to_numpy()
    w_star = np.array([config.target_weights[s] for s in SYMBOLS])
    expected = []
    for t in range(len(p)):
        x, c = (
            (holdings[t - 1], cash[t - 1])
            if t
            else (np.array([config.shares_by_symbol()[s] for s in SYMBOLS]), config.cash)
        )
        value = x @ p[t] + c
        drift = max(np.abs(x * p[t] / value - w_star).max(), abs(c / value - config.cash_target))
        if drift > 0.015:
            expected.append(PRICES.index[t])
    assert list(result.rebalances.index) == expected
    assert 2 <= len(expected) < len(PRICES) / 5


def test_never_rebalance_is_buy_and_hold() -> None:
    config = book()
    result = Backtest(PRICES, initial=config).run(NeverRebalance())
    x = np.array([config.shares_by_symbol()[s] for s in SYMBOLS])
    np.testing.assert_allclose(result.values, PRICES.to_numpy() @ x + config.cash, rtol=1e-13)
    assert result.trades.empty
    assert result.rebalances.empty


def test_optimized_trades_are_the_engines_and_keep_every_limit() -> None:
    config = book(sectors=SECTORS, method="minimize_trades")
    policy = OptimizedRebalance(every="Q", max_sector_weight=0.25, max_turnover=0.2)
    result = Backtest(PRICES, initial=config).run(policy)
    assert (result.rebalances["status"] == "ok").all()
    assert len(result.rebalances) == 16
    first = PRICES.index[0]
    direct = rebalance(config.model_copy(update={"max_sector_weight": 0.25, "max_turnover": 0.2}), PRICES.iloc[0])
    day = result.trades[result.trades["date"] == first].set_index("symbol")
    assert {t.symbol: t.shares for t in direct.trades} == {str(k): v for k, v in day["shares"].items()}
    assert day["cost"].sum() == pytest.approx(direct.total_cost, rel=1e-12)
    for when, row in result.rebalances.iterrows():
        assert row["turnover"] <= 0.2 + 1e-9
        weights = result.weights.loc[when, SYMBOLS]
        assert weights.groupby(pd.Series(SECTORS)).sum().max() <= 0.25 + 1e-9


def test_optimized_dates_reuse_the_engines_compiled_problem() -> None:
    from finwiz.optimizer import cache_info, clear_cache

    clear_cache()
    result = Backtest(PRICES, initial=book(sectors=SECTORS)).run(OptimizedRebalance(every="M", max_sector_weight=0.3))
    info = cache_info()
    assert len(result.rebalances) == 48
    assert info["misses"] <= 3  # built once (plus the debiasing and back-off variants), then re-solved
    assert info["hits"] >= 48


def test_a_failed_rebalance_is_recorded_and_the_book_carries_on() -> None:
    config = book(sectors=SECTORS)
    # A 1 % sector cap cannot hold while nothing may be sold: infeasible on every date.
    policy = OptimizedRebalance("minimize_costs", every="Y", max_sector_weight=0.01, no_sell=SYMBOLS)
    result = Backtest(PRICES, initial=config).run(policy)
    assert len(result.failures) == 4
    assert result.trades.empty
    assert result.failures["reason"].str.contains("InfeasibleRebalanceError").all()
    assert result.metrics["failed_rebalances"] == 4
    x = np.array([config.shares_by_symbol()[s] for s in SYMBOLS])
    np.testing.assert_allclose(result.values, PRICES.to_numpy() @ x + config.cash, rtol=1e-13)


# --------------------------------------------------------------------------- flows, impact, metrics


def test_cash_flows_arrive_on_their_date_or_the_next_trading_day() -> None:
    config = book()
    saturday = pd.Timestamp("2017-06-03")
    flows = pd.Series([50_000.0, 20_000.0], index=[pd.Timestamp("2016-03-01"), saturday])
    with_flows = Backtest(PRICES, initial=config, cash_flows=flows).run(NeverRebalance())
    without = Backtest(PRICES, initial=config).run(NeverRebalance())
    extra = (with_flows.values - without.values).to_numpy()
    step = np.searchsorted(PRICES.index, pd.Timestamp("2016-03-01"))
    monday = np.searchsorted(PRICES.index, saturday)
    assert PRICES.index[monday] == pd.Timestamp("2017-06-05")
    np.testing.assert_allclose(extra[:step], 0.0, atol=1e-9)
    np.testing.assert_allclose(extra[step:monday], 50_000.0, atol=1e-6)
    np.testing.assert_allclose(extra[monday:], 70_000.0, atol=1e-6)


def test_a_withdrawal_beyond_cash_sells_pro_rata_and_keeps_cash_non_negative() -> None:
    config = book()
    flows = pd.Series([-200_000.0], index=[pd.Timestamp("2018-01-02")])
    result = Backtest(PRICES, initial=config, cash_flows=flows).run(NeverRebalance())
    ((when, row),) = result.rebalances.iterrows()
    assert when == pd.Timestamp("2018-01-02")
    assert row["trigger"] == "cash_shortfall"
    assert row["status"] == "ok"
    assert (result.trades["side"] == "sell").all()
    assert len(result.trades) == len(SYMBOLS)
    # At most one share per asset (the rounding up) and the cost margin beyond the shortfall.
    assert 0 <= result.cash[when] < PRICES.loc[when].sum() + 2 * 0.001 * 200_000
    assert np.abs(replay(result, PRICES, config) - result.values.to_numpy()).max() < 0.005


def test_market_impact_costs_follow_the_trailing_volume_and_volatility() -> None:
    config = book(transaction_cost_rate=0.0005)
    rng = np.random.default_rng(1)
    volumes = pd.DataFrame(rng.uniform(1e6, 5e7, PRICES.shape), index=PRICES.index, columns=PRICES.columns)
    result = Backtest(PRICES, initial=config, volumes=volumes, market_impact=0.5).run(CalendarRebalance("Q"))
    adv = volumes.rolling(21, min_periods=1).mean()
    sigma = PRICES.pct_change().rolling(21, min_periods=2).std().bfill()
    trades = result.trades
    value = trades["shares"] * trades["price"]
    dates, symbols = trades["date"], trades["symbol"].astype(str)
    k = np.array([sigma.at[d, s] / np.sqrt(adv.at[d, s]) for d, s in zip(dates, symbols, strict=True)])
    expected = 0.0005 * value + 0.5 * k * value**1.5
    np.testing.assert_allclose(trades["cost"], expected, rtol=1e-12)
    assert (trades["cost"] > 0.0005 * value * 1.01).any()  # impact is really charged


def test_fixed_impact_model_is_the_engines_cost_model() -> None:
    config = book(transaction_cost_rate=0.001)
    model = MarketImpactModel(pd.Series(2e7, index=SYMBOLS), pd.Series(0.02, index=SYMBOLS), coefficient=0.8)
    result = Backtest(PRICES, initial=config, market_impact=model).run(CalendarRebalance("Y"))
    value = result.trades["shares"] * result.trades["price"]
    np.testing.assert_allclose(result.trades["cost"], 0.001 * value + 0.8 * 0.02 * value**1.5 / np.sqrt(2e7))


def test_metrics_against_an_independent_computation() -> None:
    config = book(transaction_cost_rate=0.001)
    result = Backtest(PRICES, initial=config, periods_per_year=252).run(CalendarRebalance("M"))
    m = result.metrics
    v = result.values.to_numpy()
    w_star = np.array([config.target_weights[s] for s in SYMBOLS])
    bench = (PRICES.pct_change().iloc[1:].to_numpy()) @ w_star
    active = v[1:] / v[:-1] - 1 - bench
    years = (len(v) - 1) / 252
    assert m["tracking_error"] == pytest.approx(active.std(ddof=1) * np.sqrt(252), rel=1e-10)
    turnover = sum(
        (g["shares"] * g["price"]).sum() / result.rebalances.loc[d, "value_before"]
        for d, g in result.trades.groupby("date")
    )
    assert m["turnover_per_year"] == pytest.approx(turnover / years, rel=1e-10)
    assert m["costs"] == pytest.approx(0.001 * (result.trades["shares"] * result.trades["price"]).sum(), rel=1e-10)
    assert m["costs_bp_per_year"] == pytest.approx(m["costs"] / years / v.mean() * 1e4, rel=1e-10)
    drift = 0.5 * (result.weights[SYMBOLS] - w_star).abs().sum(axis=1) + 0.5 * (result.weights[CASH] - 0.02).abs()
    assert m["mean_drift"] == pytest.approx(drift.mean(), rel=1e-10)
    assert m["trades"] == len(result.trades)
    assert m["final_value"] == v[-1]
    never = Backtest(PRICES, initial=config, periods_per_year=252).run(NeverRebalance()).metrics
    assert never["tracking_error"] > m["tracking_error"]
    assert never["costs"] == 0


def test_to_frame_and_plot() -> None:
    result = Backtest(PRICES, initial=book()).run(BandRebalance(0.02))
    frame = result.to_frame()
    assert list(frame.columns) == ["value", "cash", "cash_flow", "drift", "active_return", "cost", "cumulative_cost"]
    assert frame["cumulative_cost"].iloc[-1] == pytest.approx(result.trades["cost"].sum())
    figure = result.plot()
    assert len(figure.axes) == 3


# --------------------------------------------------------------------------- comparisons


class Exploding(RebalancePolicy):
    def rebalance(self, context: RebalanceContext) -> Any:
        raise RuntimeError("boom")


SWEEP = {"monthly": CalendarRebalance("M"), "band 2%": BandRebalance(0.02), "never": NeverRebalance()}


def test_compare_local_and_processes_agree_and_one_bad_policy_fails_alone() -> None:
    backtest = Backtest(PRICES, initial=book())
    local = backtest.compare({**SWEEP, "bad": Exploding()})
    assert list(local.results) == list(SWEEP)
    assert "bad" in local.failures
    assert "boom" in local.failures["bad"]
    assert "PolicyError" in local.failures["bad"]
    pooled = backtest.compare(SWEEP, executor="processes", max_workers=2)
    assert pooled.executor == "processes"
    pd.testing.assert_frame_equal(local.metrics, pooled.metrics)
    np.testing.assert_array_equal(pooled["monthly"].weights, local["monthly"].weights)
    assert list(local.metrics.index) == list(SWEEP)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    assert distributed is not None
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.skipif(distributed is None, reason="dask[distributed] is not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:.*[Pp]ort.*:UserWarning")
def test_compare_on_dask(dask_client: Any) -> None:
    backtest = Backtest(PRICES, initial=book())
    comparison = backtest.compare(SWEEP, executor=dask_client)
    assert comparison.executor == "dask"
    pd.testing.assert_frame_equal(comparison.metrics, backtest.compare(SWEEP).metrics)


def test_comparison_report_is_self_contained_and_escaped(tmp_path: Any) -> None:
    comparison = Backtest(PRICES, initial=book()).compare(
        {"<b>monthly</b>": CalendarRebalance("M"), "never": NeverRebalance()}
    )
    path = comparison.write_html(tmp_path / "report.html")
    html = path.read_text()
    assert "&lt;b&gt;monthly&lt;/b&gt;" in html
    assert "<b>monthly</b>" not in html
    assert html.count("data:image/png;base64,") == 3
    assert "http://" not in html
    assert "https://" not in html
    figure = comparison.plot()
    assert len(figure.axes) == 2
    with pytest.raises(ConfigurationError, match="cannot write the report"):
        comparison.write_html(tmp_path / "missing" / "report.html")


# --------------------------------------------------------------------------- bad input


def with_cell(value: object, day: int = 5, symbol: str = "AAPL") -> pd.DataFrame:
    frame = PRICES.astype(object) if isinstance(value, str) else PRICES.copy()
    frame.iloc[day, frame.columns.get_loc(symbol)] = value
    return frame


@pytest.mark.parametrize(
    ("prices", "error", "match"),
    [
        (with_cell(np.nan), PriceDataError, "AAPL.*no price on 2016-01-11"),
        (with_cell(0.0), PriceDataError, "AAPL.*on 2016-01-11 is not positive"),
        (with_cell(-3.0), PriceDataError, "AAPL.*on 2016-01-11 is not positive"),
        (with_cell("n/a"), PriceDataError, "AAPL.*'n/a' on 2016-01-11 is not a number"),
        (PRICES.iloc[[0, 2, 1, 3]], InvalidPortfolioError, "not sorted.*2016-01-05 comes after 2016-01-06"),
        (PRICES.iloc[[0, 1, 1, 2]], InvalidPortfolioError, "2016-01-05 appears twice"),
        (PRICES.drop(columns=["MSFT"]), InvalidPortfolioError, "no column for MSFT"),
        (PRICES.to_numpy(), InvalidPortfolioError, "DataFrame"),
    ],
)
def test_bad_price_tables_are_refused_by_name(prices: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Backtest(prices, initial=book())


def test_bad_cash_flows_and_options_are_refused() -> None:
    with pytest.raises(InvalidPortfolioError, match="2020-01-02 is outside the backtest"):
        Backtest(PRICES, initial=book(), cash_flows=pd.Series([1.0], index=[pd.Timestamp("2020-01-02")]))
    with pytest.raises(InvalidPortfolioError, match="not a finite number"):
        Backtest(PRICES, initial=book(), cash_flows=pd.Series([np.nan], index=[PRICES.index[3]]))
    with pytest.raises(InvalidPortfolioError, match="cash_flow must be 0"):
        Backtest(PRICES, initial=book(cash_flow=10.0))
    with pytest.raises(ConfigurationError, match="needs volumes"):
        Backtest(PRICES, initial=book(), market_impact=1.0)
    with pytest.raises(InvalidPortfolioError, match="volumes: no column for AAPL"):
        Backtest(PRICES, initial=book(), volumes=PRICES.drop(columns=["AAPL"]))
    with pytest.raises(ConfigurationError, match="unknown frequency 'fortnightly'"):
        CalendarRebalance("fortnightly")
    with pytest.raises(ConfigurationError, match="tolerance"):
        BandRebalance(-0.1)


class Fractional(RebalancePolicy):
    def rebalance(self, context: RebalanceContext) -> Any:
        return pd.Series({"AAPL": 0.5})


class Oversell(RebalancePolicy):
    def rebalance(self, context: RebalanceContext) -> Any:
        return pd.Series({"MSFT": -(context.shares[SYMBOLS.index("MSFT")] + 1)})


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        (Exploding(), r"policy 'p' raised on 2016-01-04: RuntimeError: boom"),
        (Fractional(), r"policy 'p' on 2016-01-04: trade of 0.5 AAPL is not in whole shares"),
        (Oversell(), r"policy 'p' on 2016-01-04: sells .* MSFT but holds"),
        (CalendarRebalance("M", no_such_field=1), r"policy 'p': its overrides are refused"),
    ],
)
def test_policies_that_misbehave_raise_policy_error_naming_them(policy: Any, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        Backtest(PRICES, initial=book()).run(policy, name="p")


def long_short_book() -> PortfolioConfiguration:
    """130/30 on the sample: 14 longs, 6 shorts held short from the first date."""
    p0 = PRICES.iloc[0]
    longs, shorts = SYMBOLS[:14], SYMBOLS[14:]
    holdings = [Holding(symbol=s, shares=float(np.floor(0.09 * VALUE / p0[s]))) for s in longs]
    holdings += [Holding(symbol=s, shares=-float(np.floor(0.05 * VALUE / p0[s]))) for s in shorts]
    return PortfolioConfiguration(
        holdings=holdings,
        target_weights={**dict.fromkeys(longs, 1.3 / 14), **dict.fromkeys(shorts, -0.3 / 6)},
        cash=VALUE - sum(h.shares * float(p0[h.symbol]) for h in holdings),
        allow_short=True,
        max_gross_exposure=1.6,
        min_trade_size=0.0,
        tolerance=0.0,
    )


@pytest.mark.parametrize("name", ["monthly", "band", "optimized"])
def test_a_long_short_book_keeps_its_shorts_and_its_money(name: str) -> None:
    """Short holdings are traded to their short targets (not bought back because they are
    negative), and replaying trades and flows gives the values to the cent, withdrawal included."""
    config = long_short_book()
    policy = {**POLICIES, "optimized": OptimizedRebalance("minimize_costs", every="Q")}[name]
    flows = pd.Series([-60_000.0], index=pd.to_datetime(["2017-09-15"]))
    result = Backtest(PRICES, initial=config, cash_flows=flows).run(policy)
    assert np.abs(replay(result, PRICES, config) - result.values.to_numpy()).max() < 0.005
    shorts = SYMBOLS[14:]
    assert (result.holdings[shorts].to_numpy() < 0).all()
    assert result.metrics["failed_rebalances"] == 0
    assert (result.cash >= -1e-7).all()


def _lots_of(config: PortfolioConfiguration, acquired: Any) -> PortfolioConfiguration:
    from finwiz import TaxLot

    holdings = [
        h.model_copy(update={"lots": [TaxLot(shares=h.shares, cost_basis=50.0, acquired=acquired)]})
        if h.shares > 0
        else h
        for h in config.holdings
    ]
    return config.model_copy(update={"holdings": holdings})


def test_lots_without_tax_and_a_policy_tax_override_are_refused_by_name() -> None:
    """Lots are carried only for a taxable account (``tax`` set): lots alone are refused by name,
    saying what to do; a policy may drop the tax (``tax=None``: tax-blind) but not replace it."""
    from finwiz import TaxSettings

    first = PRICES.index[0].date()
    with pytest.raises(InvalidPortfolioError, match="has lots but the configuration has no `tax`") as info:
        Backtest(PRICES, initial=_lots_of(book(), first))
    assert info.value.field == "holdings"
    assert "drop the lots" in str(info.value)
    tax = TaxSettings(as_of=first, short_term_rate=0.37, long_term_rate=0.2)
    plain = Backtest(PRICES, initial=book())
    with pytest.raises(PolicyError, match="override tax= is refused"):
        plain.run(CalendarRebalance("Q", tax=tax))
