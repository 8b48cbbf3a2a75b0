"""Taxable backtests: lots carried from one rebalance to the next, the year's tax by the netting
rule, wash sales in neither direction, and the ledger replayed to the cent.

Every check is independent of the simulator: the netting rule against the IRS capital loss
carryover worksheet (tests/optimizer/tax/reference.py) in decimals, lots and cash replayed from the trades and lot sales
with a plain loop, terms and wash-sale windows counted from the dates.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import Holding, PortfolioConfiguration, TaxLot, TaxSettings
from finwiz.backtest import Backtest, BacktestResult, CalendarRebalance, OptimizedRebalance, RebalanceContext
from finwiz.errors import ConfigurationError, InvalidPortfolioError
from finwiz.optimizer.tax._netting import year_tax
from tests.optimizer.tax.reference import worksheet

ST, LT = 0.37, 0.20


# -- the netting rule ---------------------------------------------------------------------------
cents = st.integers(-5_000_000, 5_000_000).map(lambda c: c / 100)
carries = st.integers(0, 2_000_000).map(lambda c: c / 100)
rates = st.integers(0, 100).map(lambda p: p / 100)


@settings(max_examples=600, deadline=None)
@given(cents, cents, rates, rates, rates, st.sampled_from([0.0, 3000.0, 1500.0]), carries, carries)
def test_year_tax_is_the_worksheet_to_the_cent(
    st_net: float, lt_net: float, rs: float, rl: float, ro: float, limit: float, cs: float, cl: float
) -> None:
    got = year_tax(
        st_net,
        lt_net,
        short_rate=rs,
        long_rate=rl,
        ordinary_rate=ro,
        ordinary_loss_limit=limit,
        carry_short=cs,
        carry_long=cl,
    )
    d = [Decimal(repr(x)) for x in (st_net, lt_net, rs, rl, ro, limit, cs, cl)]
    tax, short_carry, long_carry = worksheet(*d)
    assert got.tax == float(tax.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert got.carry_short == float(short_carry)
    assert got.carry_long == float(long_carry)


def test_year_tax_worked_example_of_the_readme() -> None:
    """Short-term +10,000 / -4,000, long-term +5,000 / -20,000, 2,000 long-term carried in."""
    got = year_tax(6_000.0, -15_000.0, short_rate=ST, long_rate=LT, ordinary_rate=ST, carry_long=2_000.0)
    assert got.tax == -1110.0  # 3,000 of the 11,000 net loss against ordinary income at 37 %
    assert (got.carry_short, got.carry_long) == (0.0, 8_000.0)
    mixed = year_tax(-4_000.0, 10_000.0, short_rate=ST, long_rate=LT, ordinary_rate=ST)
    assert mixed.tax == 1_200.0  # the short-term loss offsets long-term gain: taxed at 20 %
    outside = year_tax(-4_000.0, 10_000.0, short_rate=ST, long_rate=LT, ordinary_rate=ST, outside_gains=True)
    assert outside.tax == 520.0  # gains elsewhere absorb the short-term loss at 37 %
    assert year_tax(-0.05, 0.0, short_rate=0.5, long_rate=LT, ordinary_rate=0.5).tax == -0.03  # half up


# -- a taxable account on generated prices ------------------------------------------------------
def _prices(seed: int, n: int = 8, start: str = "2017-01-02", end: str = "2019-12-31") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, end)
    shocks = rng.normal(0.0002, 0.025, size=(len(dates), n))
    return pd.DataFrame(50.0 * np.exp(np.cumsum(shocks, axis=0)), index=dates, columns=[f"S{k}" for k in range(n)])


def _account(prices: pd.DataFrame, seed: int, **tax: Any) -> PortfolioConfiguration:
    """Two lots per name: one long-term, one bought 20 days before the start (in the window)."""
    rng = np.random.default_rng(seed + 1)
    first, d0 = prices.iloc[0], prices.index[0].date()
    holdings = []
    for s in prices.columns:
        old, new = int(rng.integers(100, 1500)), int(rng.integers(50, 500))
        lots = [
            TaxLot(shares=old, cost_basis=round(float(first[s]) * rng.uniform(0.6, 1.4), 2), acquired=date(2015, 6, 1)),
            TaxLot(
                shares=new, cost_basis=round(float(first[s]) * rng.uniform(0.9, 1.1), 2), acquired=date(2016, 12, 13)
            ),
        ]
        holdings.append(Holding(symbol=s, shares=old + new, lots=lots))
    value = sum(h.shares * float(first[h.symbol]) for h in holdings)
    n = len(prices.columns)
    return PortfolioConfiguration(
        holdings=holdings,
        target_weights=dict.fromkeys(prices.columns, 0.98 / n),
        cash=value * 0.05,
        min_trade_size=200.0,
        transaction_cost_rate=0.001,
        tax=TaxSettings(as_of=d0, short_term_rate=ST, long_term_rate=LT, **{"tax_model": "linear", **tax}),
    )


class Watching(OptimizedRebalance):
    """The engine's policy, keeping what each rebalance saw and chose."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[pd.Timestamp, PortfolioConfiguration]] = []
        self.chosen: list[tuple[pd.Timestamp, Any]] = []

    def rebalance(self, context: RebalanceContext) -> Any:
        self.seen.append((context.date, context.configuration()))
        result = super().rebalance(context)
        self.chosen.append((context.date, result))
        return result


def _buys(result: BacktestResult, initial: PortfolioConfiguration) -> dict[str, list[date]]:
    buys: dict[str, list[date]] = defaultdict(list)
    for h in initial.holdings:
        buys[h.symbol] += [lot.acquired for lot in h.lots]
    for row in result.trades[result.trades["side"] == "buy"].itertuples():
        buys[str(row.symbol)].append(row.date.date())
    return buys


def _replay(result: BacktestResult, initial: PortfolioConfiguration) -> dict[str, dict[str, list[Any]]]:
    """The open lots, from the initial lots, the buys (a lot at the day's price) and the lot sales."""
    lots: dict[str, dict[str, list[Any]]] = {
        h.symbol: {str(lot.lot_id): [lot.shares, lot.cost_basis, lot.acquired] for lot in h.lots}
        for h in initial.holdings
    }
    sales = result.lot_sales
    assert sales is not None
    for day in sorted(set(result.trades["date"]) | set(sales["date"])):
        for row in sales[sales["date"] == day].itertuples():
            lot = lots[row.symbol][row.lot_id]
            lot[0] -= row.shares
            assert lot[0] >= -1e-9, f"{row.lot_id} oversold"
            if lot[0] <= 1e-9:
                del lots[row.symbol][row.lot_id]
        for row in result.trades[(result.trades["date"] == day) & (result.trades["side"] == "buy")].itertuples():
            lots[str(row.symbol)][f"{row.symbol}@{day.date().isoformat()}"] = [row.shares, row.price, day.date()]
    return lots


@pytest.fixture(scope="module")
def taxable() -> tuple[PortfolioConfiguration, Watching, BacktestResult]:
    prices = _prices(7)
    initial = _account(prices, 7)
    policy = Watching("minimize_trades", every="M", tolerance=0.0)
    result = Backtest(prices, initial=initial).run(policy)
    return initial, policy, result


def test_every_rebalance_sees_lots_adding_up_to_shares_and_its_own_date(
    taxable: tuple[PortfolioConfiguration, Watching, BacktestResult],
) -> None:
    _, policy, result = taxable
    assert len(policy.seen) == 36
    for day, config in policy.seen:
        assert config.tax is not None
        assert config.tax.as_of == day.date()
        for h in config.holdings:
            assert sum(lot.shares for lot in h.lots) == pytest.approx(h.shares, abs=1e-9)
            assert all(lot.acquired <= day.date() for lot in h.lots)
        PortfolioConfiguration.model_validate(config.model_dump())  # the day's book is a valid account
    assert result.failures.empty
    assert result.lot_sales is not None
    assert len(result.lot_sales) > 20


def test_sales_relieve_the_lots_the_rebalance_chose_with_the_right_term(
    taxable: tuple[PortfolioConfiguration, Watching, BacktestResult],
) -> None:
    _, policy, result = taxable
    chosen = [
        (day, t.symbol, lot.lot_id, lot.shares, lot.realized_gain, lot.term)
        for day, r in policy.chosen
        for t in r.trades
        for lot in t.lots
    ]
    sales = result.lot_sales
    assert sales is not None
    recorded = [
        (row.date, row.symbol, row.lot_id, row.shares, row.realized_gain, row.term) for row in sales.itertuples()
    ]
    assert sorted(recorded) == sorted(chosen)
    for row in sales.itertuples():
        held = (row.date.date() - row.acquired.date()).days
        assert row.term == ("long" if held > 365 else "short")
        assert row.realized_gain == round(row.shares * (row.price - row.cost_basis), 2)
    assert set(sales["term"]) == {"short", "long"}  # both terms happen: lots turned long-term


def test_no_wash_sale_either_way(taxable: tuple[PortfolioConfiguration, Watching, BacktestResult]) -> None:
    initial, _, result = taxable
    sales = result.lot_sales
    assert sales is not None
    buys = _buys(result, initial)
    losses = sales[sales["realized_gain"] < 0]
    assert len(losses) > 0  # losses were harvested
    for row in losses.itertuples():
        near = [b for b in buys[row.symbol] if abs((row.date.date() - b).days) <= 30]
        assert not near, f"{row.symbol} sold at a loss on {row.date.date()} within 30 days of a buy on {near}"
    assert result.metrics["wash_sales"] == 0
    assert (sales["wash_sale_disallowed"] == 0).all()


def test_the_ledger_replays_to_the_cent(taxable: tuple[PortfolioConfiguration, Watching, BacktestResult]) -> None:
    initial, _, result = taxable
    assert result.lots is not None
    assert result.taxes is not None
    assert result.lot_sales is not None
    lots = _replay(result, initial)
    final = {(r.symbol, r.lot_id): (r.shares, r.cost_basis, r.acquired.date()) for r in result.lots.itertuples()}
    assert final == {(s, i): tuple(v) for s, held in lots.items() for i, v in held.items()}
    shares = result.lots.groupby("symbol")["shares"].sum().reindex(result.holdings.columns, fill_value=0.0)
    np.testing.assert_allclose(shares.to_numpy(), result.holdings.iloc[-1].to_numpy(), atol=1e-9)
    # The year's tax: the lot sales netted by the worksheet, the carry-over chained.
    years = sorted({d.year for d in result.values.index})
    assert list(result.taxes.index) == years
    for year, (tax, carried) in _worksheet_years(result, ST, 3000.0).items():
        assert result.taxes.loc[year, "tax"] == tax
        assert result.taxes.loc[year, "carryforward"] == carried
    # Cash: the initial cash, less the trades and their costs, less the taxes paid.
    t = result.trades
    signed = np.where(t["side"] == "buy", 1.0, -1.0) * t["shares"] * t["price"]
    paid = result.taxes["paid"].sum()
    assert result.taxes["paid"].iloc[-1] == 0.0  # the last year is owed, not paid
    expected = initial.cash - signed.sum() - t["cost"].sum() - paid
    assert result.cash.iloc[-1] == pytest.approx(expected, abs=1e-6)
    for year, row in result.taxes.iloc[:-1].iterrows():
        assert row["paid_on"] == result.values.index[result.values.index.year == year + 1][0]
    m = result.metrics
    assert m["after_tax_value"] == pytest.approx(m["final_value"] - result.taxes["tax"].iloc[-1], abs=1e-6)


def _worksheet_years(result: BacktestResult, ordinary_rate: float, limit: float) -> dict[int, tuple[float, float]]:
    """Each year's tax and carry-forward by the IRS worksheet from the lot sales, the carry chained."""
    sales = result.lot_sales
    assert sales is not None
    carry = (Decimal(0), Decimal(0))
    out: dict[int, tuple[float, float]] = {}
    for year in sorted({d.year for d in result.values.index}):
        of_year = sales[sales["date"].dt.year == year]
        net = {
            t: Decimal(repr(round(float(of_year.loc[of_year["term"] == t, "realized_gain"].sum()), 2)))
            for t in ("short", "long")
        }
        r = [Decimal(repr(x)) for x in (ST, LT, ordinary_rate, limit)]
        tax, cs, cl = worksheet(net["short"], net["long"], *r, *carry)
        out[year] = (float(tax.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), float(cs + cl))
        carry = (cs, cl)
    return out


def test_the_ledger_nets_by_the_account_s_ordinary_loss_limit_and_rate_as_the_engine_does() -> None:
    """One setting, read by both: the engine's rebalances see ``ordinary_loss_limit`` and
    ``ordinary_rate`` of ``initial.tax`` and the year-end tax is netted with the same two."""
    prices = _prices(7, n=5)
    initial = _account(prices, 7, ordinary_loss_limit=500.0, ordinary_rate=0.25)
    policy = Watching("minimize_trades", every="M", tolerance=0.0)
    result = Backtest(prices, initial=initial).run(policy)
    assert result.taxes is not None
    for _, config in policy.seen:
        assert config.tax is not None
        assert (config.tax.ordinary_loss_limit, config.tax.ordinary) == (500.0, 0.25)
    expected = _worksheet_years(result, 0.25, 500.0)
    assert expected != _worksheet_years(result, ST, 3000.0)  # a net loss past the limit: the settings matter
    for year, (tax, carried) in expected.items():
        assert (result.taxes.loc[year, "tax"], result.taxes.loc[year, "carryforward"]) == (tax, carried)


def test_tracked_taxes_leave_the_cash_alone_and_are_subtracted_after_tax() -> None:
    prices = _prices(3, n=5, end="2018-12-31")
    initial = _account(prices, 3)
    paying = Backtest(prices, initial=initial).run(CalendarRebalance("M"))
    tracking = Backtest(prices, initial=initial, pay_taxes=False).run(CalendarRebalance("M"))
    assert paying.taxes is not None
    assert tracking.taxes is not None
    assert (tracking.taxes["paid"] == 0).all()
    assert paying.taxes["paid"].iloc[0] != 0
    assert tracking.taxes["tax"].iloc[0] == paying.taxes["tax"].iloc[0]  # the first year: same trades
    m = tracking.metrics
    assert m["taxes_paid"] == 0
    assert m["after_tax_value"] == pytest.approx(m["final_value"] - tracking.taxes["tax"].sum(), abs=1e-6)
    assert m["liquidation_value"] < m["after_tax_value"] or result_has_no_gain(tracking)
    invested = m["final_value"] / (1 + m["total_return"])  # after tax: the pre-tax formulas, same years
    assert m["after_tax_return"] == pytest.approx(m["after_tax_value"] / invested - 1)
    assert m["after_tax_annual_return"] == pytest.approx((m["after_tax_value"] / invested) ** (1 / m["years"]) - 1)
    assert m["liquidation_annual_return"] == pytest.approx((m["liquidation_value"] / invested) ** (1 / m["years"]) - 1)
    with pytest.raises(ConfigurationError, match="pay_taxes"):
        Backtest(prices, initial=initial, pay_taxes="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidPortfolioError, match="ordinary_rate"):  # the account's setting, for both
        _account(prices, 3, ordinary_rate=1.5)
    with pytest.raises(ConfigurationError, match=r"outside_gains.*tax_model"):  # the engine would net
        Backtest(prices, initial=_account(prices, 3, tax_model="netting"), outside_gains=True)


def result_has_no_gain(result: BacktestResult) -> bool:
    lots = result.lots
    assert lots is not None
    assert result.prices is not None
    last = result.prices.iloc[-1]
    return bool((lots["shares"] * (last[lots["symbol"]].to_numpy() - lots["cost_basis"])).sum() <= 0)


def test_a_tax_blind_policy_s_wash_sales_are_disallowed_into_the_replacement_basis() -> None:
    """Monthly back-to-target trading sells losers it bought a month before: each such loss is a
    wash sale, its loss disallowed and added to the basis of the shares that replaced it."""
    prices = _prices(11, n=6)
    initial = _account(prices, 11)
    result = Backtest(prices, initial=initial).run(CalendarRebalance("W"))
    sales = result.lot_sales
    assert sales is not None
    assert result.taxes is not None
    washed = sales[sales["wash_sale_disallowed"] > 0]
    assert len(washed) > 0
    buys = _buys(result, initial)
    for row in washed.itertuples():
        assert row.realized_gain < 0
        assert row.wash_sale_disallowed <= -row.realized_gain + 0.01
        assert any(abs((row.date.date() - b).days) <= 30 for b in buys[row.symbol])
    assert result.taxes["wash_sale_disallowed"].sum() == pytest.approx(washed["wash_sale_disallowed"].sum())
    # The disallowed losses went into the replacement lots' basis: every lot's basis (open or
    # sold) adds up to what was paid for the shares plus what was disallowed.
    assert result.metrics["wash_sales"] == len(washed)
    assert result.lots is not None
    lot_basis = (result.lots["shares"] * result.lots["cost_basis"]).sum() + (
        sales["shares"] * sales["cost_basis"]
    ).sum()
    bought = result.trades[result.trades["side"] == "buy"]
    paid = sum(lot.shares * lot.cost_basis for h in initial.holdings for lot in h.lots)
    paid += (bought["shares"] * bought["price"]).sum()
    assert lot_basis - paid == pytest.approx(washed["wash_sale_disallowed"].sum(), abs=0.05)


def test_the_tax_aware_policy_keeps_more_after_tax_than_the_tax_blind_one() -> None:
    prices = _prices(5, n=6)
    initial = _account(prices, 5)
    backtest = Backtest(prices, initial=initial)
    aware = backtest.run(OptimizedRebalance("minimize_trades", every="M", tolerance=0.0))
    blind = backtest.run(OptimizedRebalance("minimize_trades", every="M", tolerance=0.0, tax=None))
    assert aware.metrics["wash_sales"] == 0
    assert (
        aware.metrics["taxes_paid"] + aware.metrics["taxes_owed"]
        < blind.metrics["taxes_paid"] + blind.metrics["taxes_owed"]
    )


def _identical_run() -> tuple[PortfolioConfiguration, BacktestResult]:
    prices = _prices(21, n=6)
    initial = _account(prices, 21, identical={"S0": "pair", "S1": "pair"})
    policy = OptimizedRebalance("minimize_trades", every="M", tolerance=0.0)
    return initial, Backtest(prices, initial=initial).run(policy)


def test_identical_symbols_wash_each_other_across_rebalances_and_the_simulation_catches_the_rest() -> None:
    """With S0 and S1 substantially identical: no loss sale of either within 30 days of a purchase
    of either on another day (the window's trades fed to the engine); a same-day one (the engine's
    gap, below) is a wash sale the simulation disallows into the replacement's basis."""
    initial, result = _identical_run()
    sales = result.lot_sales
    assert sales is not None
    buys = _buys(result, initial)
    pair = buys["S0"] + buys["S1"]
    losses = sales[(sales["realized_gain"] < 0) & sales["symbol"].isin(["S0", "S1"])]
    assert len(losses) > 0
    for row in losses.itertuples():
        assert not [b for b in pair if 0 < abs((row.date.date() - b).days) <= 30], row
        assert row.wash_sale_disallowed <= -row.realized_gain
    same_day = losses[[d.date() in pair for d in losses["date"]]]
    for _, sale in same_day.groupby(["date", "symbol"], observed=True):  # share for share: some of it
        assert sale["wash_sale_disallowed"].sum() > 0
    assert result.metrics["wash_sales"] == int((losses["wash_sale_disallowed"] > 0).sum())


def test_the_engine_does_not_buy_an_identical_symbol_the_day_it_sells_the_other_at_a_loss() -> None:
    """Found by this backtest (2018-01-01: S1 sold at a loss, S0 bought): left to the optimizer."""
    _, result = _identical_run()
    assert result.metrics["wash_sales"] == 0


def test_a_lot_bought_after_the_first_day_is_refused_by_name() -> None:
    prices = _prices(2, n=3, start="2016-12-01", end="2017-03-31")
    initial = _account(prices.loc["2016-12-20":], 2)  # its second lots: 2016-12-13, after 12-01
    with pytest.raises(InvalidPortfolioError, match=r"lot S0#2 of S0 was acquired on 2016-12-13") as info:
        Backtest(prices, initial=initial)
    assert info.value.symbol == "S0"


@pytest.mark.parametrize(
    ("policy", "order"),
    [
        ("fifo", ["old", "mid", "new", "twin"]),  # oldest first, ties in the account's order
        ("hifo", ["new", "twin", "mid", "old"]),  # highest cost first, ties oldest first
        ("optimal", ["new", "twin", "old", "mid"]),  # least tax per share: loss, short loss, long gain, short gain
    ],
)
def test_a_sale_naming_no_lots_relieves_them_in_the_account_s_order(policy: str, order: list[str]) -> None:
    """At 100: old (long-term, basis 85: tax 3/share), mid (short, 90: 3.7), new and twin (short,
    110: -3.7, twin acquired later). The engine's lot book sorts them the same way."""
    from finwiz.backtest._lots import LotLedger, TaxOptions
    from finwiz.optimizer.tax._tax import lot_book

    day = date(2020, 6, 1)
    lots = [
        TaxLot(shares=1, cost_basis=85.0, acquired=date(2018, 1, 2), lot_id="old"),
        TaxLot(shares=1, cost_basis=90.0, acquired=date(2020, 1, 2), lot_id="mid"),
        TaxLot(shares=1, cost_basis=110.0, acquired=date(2020, 2, 3), lot_id="new"),
        TaxLot(shares=1, cost_basis=110.0, acquired=date(2020, 2, 4), lot_id="twin"),
    ]
    tax = TaxSettings(as_of=day, short_term_rate=ST, long_term_rate=LT, lot_policy=policy, wash_sale_days=0)
    holdings = (Holding(symbol="A", shares=4, lots=lots),)
    ledger = LotLedger(holdings, tax, first_day=day, options=TaxOptions())
    ledger.trade(0, -4.0, 100.0, None, "test")
    assert [s.lot_id for s in ledger.sales] == order
    config = PortfolioConfiguration(holdings=list(holdings), target_weights={"A": 1.0}, tax=tax)
    book = lot_book(config, np.array([100.0]))
    assert book is not None
    assert [book.lot_ids[k] for k in book.slots[0].tolist() if k >= 0] == order  # its lots in relief order
