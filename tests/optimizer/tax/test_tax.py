"""Tax-aware rebalancing: lot-level sells, the tax term, the gain budget, wash sales, lot policies.

Optima are compared with an independent cvxpy model written from the README's definitions (one
variable per lot, the tax as each lot's gain at its term's rate); realised gains are recomputed
from the lots a result lists, prices and cost bases alone.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from finwiz import (
    Holding,
    InfeasibleRebalanceError,
    PortfolioConfiguration,
    RebalancingEngine,
    RebalancingResult,
    RebalancingSettings,
    TaxLot,
    TaxSettings,
    rebalance,
)
from finwiz.schemas import RecentPurchase, RecentSale
from tests.optimizer.test_properties import check_guarantees

AS_OF = date(2026, 12, 1)
_SCALE = 1e4
ST, LT = 0.37, 0.20


def taxable(holdings: list[Holding], targets: dict[str, float], cash: float, **tax: Any) -> PortfolioConfiguration:
    """A taxable account at zero costs, no band, no minimum trade (``MINIMIZE_COSTS``), a tax
    weight of 1 unless given (these tests are about the lots, not the default weight)."""
    tax.setdefault("tax_weight", 1.0)
    return PortfolioConfiguration(
        holdings=holdings,
        target_weights=targets,
        cash=cash,
        method="minimize_costs",
        tolerance=0.0,
        transaction_cost_rate=0.0,
        min_trade_size=0.0,
        tax=TaxSettings(as_of=AS_OF, short_term_rate=ST, long_term_rate=LT, **{"tax_model": "linear", **tax}),
    )


def book(
    seed: int, n: int = 6, lots: int = 3, losses: bool = True, cash: float = 2_000.0
) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """``n`` assets of ``lots`` lots each (cost bases 50-150 % of the price, or 30-95 % without
    losses), short- and long-term, a drifted account and a random target."""
    rng = np.random.default_rng(seed)
    symbols = [f"T{i}" for i in range(n)]
    prices = {s: round(float(rng.uniform(20, 200)), 2) for s in symbols}
    holdings = []
    for s in symbols:
        low, high = (0.5, 1.5) if losses else (0.3, 0.95)
        held = [
            TaxLot(
                shares=float(rng.integers(3, 30)),
                cost_basis=round(prices[s] * float(rng.uniform(low, high)), 2),
                acquired=AS_OF - timedelta(days=int(rng.integers(10, 2000))),
            )
            for _ in range(lots)
        ]
        holdings.append(Holding(symbol=s, shares=sum(lot.shares for lot in held), lots=held))
    target = rng.dirichlet(np.full(n, 1.5)) * 0.97
    return taxable(holdings, dict(zip(symbols, target.tolist(), strict=True)), cash), prices


def with_tax(config: PortfolioConfiguration, **changes: Any) -> PortfolioConfiguration:
    assert config.tax is not None
    return config.model_copy(update={"tax": config.tax.model_copy(update=changes)})


def reference(config: PortfolioConfiguration, prices: dict[str, float]) -> tuple[float, Any]:
    """The independent model, fractional shares: ``sum (w - t)^2 + (w_c - t_c)^2 + c + tax_weight x
    tax / V`` (``c`` the transaction costs as a fraction of ``V``, paid from the cash) over shares
    bought and sold, one variable per lot, no asset both bought and sold, no loss lot sold of an
    asset with a lot acquired within the wash-sale window -- solved exactly by enumerating every
    asset's side (2^n convex programs, Clarabel), the best kept. (SCIP on the mixed-integer form
    stopped up to 0.4 % above this optimum: its absolute tolerances are larger than the
    differences between answers of an objective of ~1e-2.)

    Returns the optimum and a function scoring a result in this model (from its trades and the
    lots it lists)."""
    tax = config.tax
    assert tax is not None
    symbols = config.symbols
    p = np.array([prices[s] for s in symbols])
    held = {h.symbol: h for h in config.holdings}
    shares = np.array([held[s].shares if s in held else 0.0 for s in symbols])
    value = float(shares @ p + config.cash)
    n = len(symbols)
    lots = [(i, lot) for i, s in enumerate(symbols) for lot in (held[s].lots if s in held else [])]
    gain = np.array([p[i] - lot.cost_basis for i, lot in lots])
    rate = np.array([LT if (tax.as_of - lot.acquired).days > tax.long_term_days else ST for _, lot in lots])
    link = np.zeros((n, len(lots)))
    link[[i for i, _ in lots], np.arange(len(lots))] = 1.0
    target = np.array([config.target_weights.get(s, 0.0) for s in symbols])
    trade = cp.Variable(n)
    q = cp.Variable(len(lots), nonneg=True)
    sells = cp.Parameter(n, nonneg=True)  # 1: the asset may only sell, 0: only buy
    # |trade| on the asset's side: affine once the side is fixed. The costs are paid from the cash.
    cost = config.transaction_cost_rate * cp.multiply(1 - 2 * sells, trade) @ p / value
    cash = (config.cash - trade @ p) / value - cost
    constraints = [
        q <= np.array([lot.shares for _, lot in lots]),
        link @ q == cp.multiply(sells, -trade),
        cp.multiply(sells, trade) <= 0,
        cp.multiply(1 - sells, trade) >= 0,
        cash >= 0,
    ]
    if tax.max_realized_gain is not None:
        constraints.append(gain @ q <= tax.max_realized_gain)
    # Wash sales: an asset with a lot acquired within the window (a purchase) sells no loss lot.
    fresh = {i for i, lot in lots if (tax.as_of - lot.acquired).days <= tax.wash_sale_days}
    withheld = [k for k, (i, _) in enumerate(lots) if i in fresh and gain[k] < 0]
    if withheld:
        constraints.append(q[withheld] == 0)
    objective = (
        cp.sum_squares(cp.multiply(shares + trade, p) / value - target)
        + cp.square(cash - config.cash_target)
        + cost
        + tax.tax_weight * (rate * gain) @ q / value
    )
    problem = cp.Problem(cp.Minimize(objective), constraints)
    best = np.inf
    for choice in itertools.product((0.0, 1.0), repeat=n):
        sells.value = np.array(choice)
        problem.solve(solver=cp.CLARABEL)
        if problem.status == cp.OPTIMAL:
            best = min(best, float(problem.value))
    rate_of = {lot.lot_id: r for (_, lot), r in zip(lots, rate, strict=True)}

    def evaluate(result: RebalancingResult) -> float:
        after = np.array([result.post_trade_holdings[s] for s in symbols])
        paid = config.transaction_cost_rate * np.abs(after - shares) @ p / value
        c = (config.cash - (after - shares) @ p) / value - paid
        realised = sum(
            rate_of[sale.lot_id] * sale.shares * (t.price - sale.cost_basis) for t in result.trades for sale in t.lots
        )
        tracking = np.sum((after * p / value - target) ** 2) + (c - config.cash_target) ** 2
        return float(tracking + paid + tax.tax_weight * realised / value)

    return best, evaluate


def allowance(config: PortfolioConfiguration, prices: dict[str, float]) -> float:
    """What one whole share of every asset is worth in tracking: sum_i (p_i / V)^2."""
    p = np.array([prices[s] for s in config.symbols])
    held = config.shares_by_symbol()
    value = sum(held[s] * prices[s] for s in config.symbols) + config.cash
    return float(np.sum((p / value) ** 2))


def realised_from_lots(result: RebalancingResult, config: PortfolioConfiguration) -> dict[str, float]:
    lots = {lot.lot_id: lot for h in config.holdings for lot in h.lots}
    out = {"short": 0.0, "long": 0.0}
    for trade in result.trades:
        assert sum(s.shares for s in trade.lots) == pytest.approx(trade.shares if trade.action == "sell" else 0.0)
        for sale in trade.lots:
            lot = lots[sale.lot_id]
            assert sale.cost_basis == lot.cost_basis
            assert sale.shares <= lot.shares + 1e-9
            gain = round(sale.shares * (trade.price - lot.cost_basis), 2)
            assert sale.realized_gain == gain  # to the cent
            out[sale.term] += gain
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fractional_optimum_equals_an_independent_lot_model(seed: int) -> None:
    """Fractional shares: finwiz's answer, scored by the independent model, is its optimum (to
    the millionth of a share finwiz trades in); losses included, so the sides must be chosen."""
    config, prices = book(seed)
    config = config.model_copy(update={"allow_fractional_shares": True})
    best, evaluate = reference(config, prices)
    result = rebalance(config, prices)
    assert evaluate(result) == pytest.approx(best, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_whole_shares_come_close_to_the_fractional_optimum(seed: int) -> None:
    """Whole shares: above the fractional optimum (a lower bound) by less than a tenth of the
    whole-share allowance; exact mode (its own mixed-integer program) no worse than the default."""
    config, prices = book(seed + 10)
    bound, evaluate = reference(config, prices)
    default = evaluate(rebalance(config, prices))
    exact = evaluate(rebalance(config, prices, exact=True))
    room = allowance(config, prices)
    assert bound - 1e-9 <= default <= bound + 0.1 * room
    assert bound - 1e-9 <= exact <= default + 1e-9


def test_realised_gains_are_exact_to_the_cent_and_add_up_to_the_summary() -> None:
    config, prices = book(3, n=8, lots=5)
    result = rebalance(config, prices)
    check_guarantees(config, prices, result)
    by_term = realised_from_lots(result, config)
    tax = result.tax
    assert tax is not None
    assert tax.short_term_gains - tax.short_term_losses == pytest.approx(by_term["short"], abs=0.005)
    assert tax.long_term_gains - tax.long_term_losses == pytest.approx(by_term["long"], abs=0.005)
    assert tax.net_realized_gain == pytest.approx(by_term["short"] + by_term["long"], abs=0.005)
    assert tax.estimated_tax == pytest.approx(ST * by_term["short"] + LT * by_term["long"], abs=0.01)
    assert tax.harvested_losses == pytest.approx(tax.short_term_losses + tax.long_term_losses)
    assert any(t.lots for t in result.trades), "the case sells something"


def test_tax_aware_realises_less_tax_than_tax_blind_to_the_same_target() -> None:
    config, prices = book(5, n=10, lots=4, losses=False)
    aware = rebalance(with_tax(config, tax_weight=5.0), prices)
    blind = rebalance(with_tax(config, tax_weight=0.0), prices)
    assert aware.tax is not None
    assert blind.tax is not None
    assert aware.tax.estimated_tax < blind.tax.estimated_tax
    assert aware.tracking_distance_after >= blind.tracking_distance_after - 1e-12


def test_the_gain_budget_holds_and_binds() -> None:
    config, prices = book(7, n=8, lots=4, losses=False)
    free = rebalance(config, prices)
    assert free.tax is not None
    assert free.tax.net_realized_gain > 100
    budget = round(free.tax.net_realized_gain / 3, 2)
    capped = rebalance(with_tax(config, max_realized_gain=budget), prices)
    assert capped.tax is not None
    assert capped.tax.net_realized_gain <= budget + 0.01
    assert capped.tax.budget == budget
    assert capped.tax.budget_used == pytest.approx(capped.tax.net_realized_gain / budget)
    row = next(c for c in capped.compliance if c.constraint.startswith("realized_gain"))
    assert row.satisfied
    assert row.limit == pytest.approx(budget)
    # A binding budget is lumpy in whole shares (each share sold spends its gain): measured
    # against exact mode, not the fractional bound (0.48 allowances above it here, the default 1.17).
    bound, evaluate = reference(with_tax(config, max_realized_gain=budget), prices)
    exact = evaluate(rebalance(with_tax(config, max_realized_gain=budget), prices, exact=True))
    assert bound - 1e-9 <= exact <= evaluate(capped) + 1e-12
    assert evaluate(capped) <= exact + 1e-3 * abs(exact)


def test_a_budget_no_trade_set_can_meet_is_infeasible_and_named() -> None:
    config, prices = book(2, n=4, lots=2, losses=False)  # only gains: no net loss to harvest
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(with_tax(config, max_realized_gain=-1_000.0), prices)
    assert "realized_gain" in str(info.value)


def _loss_case(**tax: Any) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """Two assets near their targets (A a little under); A holds a large short-term loss lot."""
    prices = {"A": 50.0, "B": 100.0}
    lots_a = [TaxLot(shares=100, cost_basis=80.0, acquired=AS_OF - timedelta(days=60), lot_id="A-loss")]
    lots_b = [TaxLot(shares=50, cost_basis=90.0, acquired=AS_OF - timedelta(days=900), lot_id="B-old")]
    held = [Holding(symbol="A", shares=100, lots=lots_a), Holding(symbol="B", shares=50, lots=lots_b)]
    return taxable(held, {"A": 0.41, "B": 0.39}, 2_500.0, **tax), prices


def test_a_large_loss_is_harvested_without_buying_it_back() -> None:
    config, prices = _loss_case()
    result = rebalance(config, prices)
    sells = {t.symbol: t for t in result.trades if t.action == "sell"}
    assert "A" in sells
    assert sells["A"].lots[0].lot_id == "A-loss"
    assert all(t.action == "sell" for t in result.trades if t.symbol == "A")  # one trade per asset
    assert result.tax is not None
    assert result.tax.harvested_losses > 0
    # A was under its target: harvesting it leaves the book farther away, and the result says so.
    assert result.tracking_distance_after > result.tracking_distance_before
    assert any("farther from its target" in w for w in result.warnings)
    blind = rebalance(with_tax(config, tax_weight=0.0), prices)
    assert not any("farther from its target" in w for w in blind.warnings)
    assert not any(t.symbol == "A" and t.action == "sell" for t in blind.trades)  # tax-blind, A is under target


def test_a_recent_purchase_withholds_the_loss_lots_unless_allowed() -> None:
    bought = RecentPurchase(symbol="A", date=AS_OF - timedelta(days=10), shares=5)
    config, prices = _loss_case(recent_purchases=[bought])
    result = rebalance(config, prices)
    assert not any(t.symbol == "A" and t.action == "sell" for t in result.trades)
    assert result.tax is not None
    assert "A" in result.tax.wash_sale_blocks
    allowed = rebalance(with_tax(config, allow_wash_sale_losses=True), prices)
    assert any(t.symbol == "A" and t.action == "sell" for t in allowed.trades)


@pytest.mark.parametrize("identical", [False, True])
def test_a_recent_loss_sale_blocks_buying_its_group(identical: bool) -> None:
    config, prices = book(11, n=5, lots=2, losses=False, cash=30_000.0)  # cash to invest: buys
    buys = [t.symbol for t in rebalance(config, prices).trades if t.action == "buy"]
    assert buys
    sold = "ZZZ" if identical else buys[0]
    groups = {"ZZZ": "G", buys[0]: "G"} if identical else {}
    recent = [RecentSale(symbol=sold, date=AS_OF - timedelta(days=20), shares=10, loss=500.0)]
    blocked = rebalance(with_tax(config, recent_sales=recent, identical=groups), prices)
    assert not any(t.symbol == buys[0] and t.action == "buy" for t in blocked.trades)
    assert blocked.tax is not None
    assert buys[0] in blocked.tax.wash_sale_blocks
    old = [RecentSale(symbol=sold, date=AS_OF - timedelta(days=45), shares=10, loss=500.0)]  # outside the window
    later = rebalance(with_tax(config, recent_sales=old, identical=groups), prices)
    assert any(t.symbol == buys[0] for t in later.trades)


def test_fifo_and_hifo_relieve_the_lots_they_name() -> None:
    prices = {"A": 100.0, "B": 50.0}
    lots = [
        TaxLot(shares=10, cost_basis=40.0, acquired=date(2018, 1, 1), lot_id="old-cheap"),
        TaxLot(shares=10, cost_basis=120.0, acquired=date(2025, 1, 1), lot_id="mid-dear"),
        TaxLot(shares=10, cost_basis=90.0, acquired=date(2026, 6, 1), lot_id="new"),
    ]
    held = [Holding(symbol="A", shares=30, lots=lots), Holding(symbol="B", shares=0)]
    config = taxable(held, {"A": 0.6, "B": 0.4}, 0.0, tax_weight=0.0)
    first = {}
    for policy in ("fifo", "hifo", "optimal"):
        result = rebalance(with_tax(config, lot_policy=policy), prices)
        sale = next(t for t in result.trades if t.symbol == "A")
        first[policy] = sale.lots[0].lot_id
        assert sale.shares == 12  # tax_weight 0: the same trades, only the lots differ
    assert first == {"fifo": "old-cheap", "hifo": "mid-dear", "optimal": "mid-dear"}


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 7), st.integers(1, 5), st.booleans())
def test_taxable_requests_keep_every_guarantee(seed: int, n: int, lots: int, default: bool) -> None:
    """Money adds up, limits hold, no asset is both bought and sold, lots are never oversold and
    the gains listed are the lots' own, for random taxable books (the default strategy too)."""
    config, prices = book(seed, n=n, lots=lots)
    if default:
        config = config.model_copy(update={"method": "minimize_trades", "min_trade_size": 50.0})
    result = rebalance(config, prices)
    check_guarantees(config, prices, result)
    assert len({t.symbol for t in result.trades}) == len(result.trades)
    realised_from_lots(result, config)
    assert result.tax is not None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 7), st.integers(1, 6))
def test_the_native_lot_ladder_and_the_lot_relief_agree(seed: int, n: int, lots: int) -> None:
    """At arbitrary trades (one side per asset), the native QP built on the lot each sale reaches
    (tax folded into the sells) and the stacked objective at the lots the sales relieve -- what the
    whole-share step and the result use -- give the same objective and the same gain-budget row."""
    from finwiz.optimizer._engine import _applicable, _with_constraints, default_engine
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.solve._assembler import Model
    from finwiz.optimizer.solve._qp import ladder_of
    from finwiz.optimizer.solve._solve import native_qp
    from finwiz.optimizer.verify._compliance import continuous_point

    config, prices = book(seed, n=n, lots=lots)
    config = with_tax(config, max_realized_gain=1_000.0)
    data = build_problem_data(config, prices)
    terms = default_engine().strategies[config.method].terms(data)
    model = Model.of(_applicable(list(_with_constraints(terms)), data), data)
    rng = np.random.default_rng(seed)
    sells = rng.random(n) < 0.5
    # Within what may be sold: a lot acquired inside the wash-sale window withholds the loss lots.
    assert data.lots is not None
    room = data.x0 - data.lots.withheld * data.prices / data.ref_value
    sell = np.where(sells, room * rng.uniform(0, 1, n), 0.0)
    buy = np.where(sells, 0.0, rng.uniform(0, 0.05, n))
    form = next(d.tax for d in model.described if d.tax is not None)
    assert form is not None
    ladder = ladder_of(form, n)
    segments = ladder.containing(sell)
    qp = native_qp(model, segments)
    assert qp is not None
    z = continuous_point(data, buy, sell, 0.0)
    assert qp.objective_at_trades(buy, sell, 0.0) == pytest.approx(model.stacked().objective(z), rel=1e-9, abs=1e-12)
    budget = next(g for g in model.groups if g.name == "realized_gain")
    rows, _, upper = budget.linear()
    point = qp.point(buy, sell, 0.0)
    native_row = next(r for name, r, _ in qp.groups if name == "realized_gain")
    assert float((qp.A @ point)[native_row] - qp.upper[native_row]) == pytest.approx(
        float(rows.evaluate(z)[0]) - float(upper[0]), rel=1e-9, abs=1e-12
    )


def test_the_default_tax_weight_is_half_over_the_number_of_assets() -> None:
    """``tax_weight=None`` (the default) is ``1 / (2 n)``: the same trades as that weight given,
    and the summary says which weight was used."""
    config, prices = book(4, n=8, lots=3)
    default = rebalance(with_tax(config, tax_weight=None), prices)
    given = rebalance(with_tax(config, tax_weight=1 / 16), prices)
    assert default.tax is not None
    assert default.tax.tax_weight == pytest.approx(1 / 16)
    assert default.post_trade_holdings == given.post_trade_holdings
    heavy = rebalance(config, prices)  # weight 1: more tax saved, farther from the target
    assert heavy.tax is not None
    assert heavy.tax.estimated_tax < default.tax.estimated_tax
    assert heavy.tracking_distance_after > default.tracking_distance_after


def test_exact_mode_keeps_a_lot_size_given_with_fractional_shares() -> None:
    """Exact mode with fractional shares and one asset traded in lots of 5: that asset's count is
    an integer of the program -- rounding a continuous count afterwards broke a binding gain budget
    by $13 on this book (found by a random stress run) -- and every limit holds."""
    config, prices = book(50, n=12, lots=4, losses=False, cash=10_958.09)
    last = config.symbols[-1]
    config = config.model_copy(
        update={
            "allow_fractional_shares": True,
            "lot_sizes": {last: 5.0},
            "transaction_cost_rate": 0.001,
            "cash_flow": 9_826.87,
        }
    )
    recent = [RecentSale(symbol=config.symbols[1], date=AS_OF - timedelta(days=5), shares=3, loss=100.0)]
    config = with_tax(config, max_realized_gain=2_946.0, recent_sales=recent)
    result = rebalance(config, prices, exact=True)
    traded = result.post_trade_holdings[last] - config.shares_by_symbol()[last]
    assert traded / 5 == pytest.approx(round(traded / 5), abs=1e-9)
    assert all(c.satisfied for c in result.compliance)
    assert result.tax is not None
    assert result.tax.net_realized_gain <= 2_946.0 + 0.01


def test_exact_mode_sells_each_assets_lots_in_their_relief_order() -> None:
    """Exact mode with FIFO relief and a binding gain budget: the program sells each asset's lots
    in FIFO order, as the result reads them -- with its lots free it met the budget with other lots
    and the trades, read FIFO, broke it by $4,940 (found by a random stress run)."""
    config, prices = book(360, n=13, lots=5, losses=False, cash=17_918.91)
    config = config.model_copy(
        update={
            "min_trade_size": 194.17,
            "cash_flow": 1_440.68,
            "no_sell": [config.symbols[0]],
            "lot_sizes": {config.symbols[-1]: 5.0},
        }
    )
    config = with_tax(config, max_realized_gain=1_108.12, lot_policy="fifo")
    engine = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=2.0))  # its best trades at the limit
    result = rebalance(config, prices, exact=True, engine=engine)
    assert result.tax is not None
    assert result.tax.net_realized_gain <= 1_108.12 + 0.01
    assert all(c.satisfied for c in result.compliance)
    acquired = {lot.lot_id: lot.acquired for h in config.holdings for lot in h.lots}
    for trade in result.trades:
        dates = [acquired[s.lot_id] for s in trade.lots]
        assert dates == sorted(dates)  # oldest first


def test_exact_mode_with_one_lot_per_asset() -> None:
    """No asset with two lots: no relief-order binaries (an empty boolean variable crashed cvxpy)."""
    config, prices = book(7, n=5, lots=1)
    result = rebalance(config, prices, exact=True)
    assert result.rounding == "exact_mip"
    assert all(c.satisfied for c in result.compliance)


@pytest.mark.parametrize("identical", [False, True])
def test_a_lot_acquired_within_the_window_withholds_the_loss_lots(identical: bool) -> None:
    """A lot the holding itself dates within ``wash_sale_days`` before ``as_of`` is a purchase,
    whether or not ``recent_purchases`` repeats it (issue 21: four loss lots were sold, no block
    reported): the asset's loss lots -- and, with ``identical``, those of its group -- are withheld."""
    config, prices = _loss_case()
    fresh = TaxLot(shares=2, cost_basis=51.0, acquired=AS_OF - timedelta(days=15), lot_id="fresh")
    if identical:  # the fresh lot is C's, a member of A's group
        prices = {**prices, "C": 20.0}
        held = [*config.holdings, Holding(symbol="C", shares=2, lots=[fresh.model_copy(update={"cost_basis": 20.0})])]
        config = config.model_copy(update={"holdings": held, "target_weights": {**config.target_weights, "C": 0.0}})
        config = with_tax(config, identical={"A": "G", "C": "G"})
    else:
        a = config.holdings[0]
        held_a = a.model_copy(update={"shares": a.shares + 2, "lots": [*a.lots, fresh]})
        config = config.model_copy(update={"holdings": [held_a, *config.holdings[1:]]})
    result = rebalance(config, prices)
    sold = {s.lot_id for t in result.trades for s in t.lots}
    assert "A-loss" not in sold
    assert result.tax is not None
    assert "A" in result.tax.wash_sale_blocks
    assert result.tax.harvested_losses == 0
    assert "fresh" in result.tax.wash_sale_blocks["A"] or "within 30 days" in result.tax.wash_sale_blocks["A"]
    old = with_tax(config, as_of=AS_OF + timedelta(days=30))  # the lot is 45 days old: no purchase in the window
    later = rebalance(old, prices)
    assert "A-loss" in {s.lot_id for t in later.trades for s in t.lots}
    allowed = rebalance(with_tax(config, allow_wash_sale_losses=True), prices)
    assert "A-loss" in {s.lot_id for t in allowed.trades for s in t.lots}


@pytest.mark.parametrize("seed", [1, 35, 36])
def test_a_binding_gain_budget_is_used_to_the_optimum_with_costs(seed: int) -> None:
    """A binding gain budget with transaction costs, fractional shares: finwiz's answer, scored in
    the independent lot model, is its optimum, and the budget is used to the cent. (Issue 21: the
    continuous solve relieved lots in the tax order, the lots its budget's price makes cheapest
    realised less, and the result kept $1,584 of a $2,291 budget here, 55 % above the optimum.)"""
    config, prices = book(seed, n=6, lots=4, losses=False)
    config = config.model_copy(update={"transaction_cost_rate": 0.001, "allow_fractional_shares": True})
    config = with_tax(config, tax_weight=0.05)
    free = rebalance(config, prices)
    assert free.tax is not None
    budget = round(free.tax.net_realized_gain / 3, 2)
    capped = with_tax(config, max_realized_gain=budget)
    result = rebalance(capped, prices)
    assert result.tax is not None
    assert budget - 0.01 <= result.tax.net_realized_gain <= budget + 0.01
    best, evaluate = reference(capped, prices)
    assert evaluate(result) == pytest.approx(best, rel=1e-5, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(2, 7),
    st.integers(1, 5),
    st.sampled_from([0.0, 0.001]),
    st.sampled_from([None, 1 / 3, -0.2]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["optimal", "fifo", "hifo"]),
)
@example(1, 6, 4, 0.001, 1 / 3, False, False, False, "optimal")  # achieved 0.033814 against a "bound" of 0.035030
@example(35, 6, 4, 0.001, 1 / 3, False, False, False, "optimal")
def test_the_continuous_objective_is_a_bound(
    seed: int,
    n: int,
    lots: int,
    rate: float,
    budget: float | None,
    fractional: bool,
    default: bool,
    losses: bool,
    policy: str,
) -> None:
    """``continuous_objective`` is a lower bound of ``objective_value`` for taxable requests: the
    relaxation's optimum (the one-side rule dropped), not that of a model with the sides fixed (a
    restriction: issue 21 had 0.00028389 achieved against a 0.00028582 "bound"), with a trade count
    (its re-weighted L1 is no bound) and FIFO/HIFO relief (its ladder's tax is not convex) too.
    Budgets: a third of the gain realised without one, or a harvest of a fifth of the open losses."""
    config, prices = book(seed, n=n, lots=lots, losses=losses)
    config = config.model_copy(update={"transaction_cost_rate": rate, "allow_fractional_shares": fractional})
    if default:
        config = config.model_copy(update={"method": "minimize_trades", "min_trade_size": 50.0})
    config = with_tax(config, tax_weight=0.05, lot_policy=policy)
    if budget is not None:
        free = rebalance(config, prices).tax
        assert free is not None
        losses = sum(
            max(lot.cost_basis - prices[h.symbol], 0.0) * lot.shares for h in config.holdings for lot in h.lots
        )
        limit = budget * free.net_realized_gain if budget > 0 else budget * losses
        config = with_tax(config, max_realized_gain=round(limit, 2))
    try:
        result = rebalance(config, prices)
    except InfeasibleRebalanceError:
        return
    assert result.objective_value is not None
    assert result.continuous_objective is not None
    assert result.objective_gap is not None
    assert result.objective_value >= result.continuous_objective - 1e-9
    assert result.objective_gap >= -1e-9


def _pgr_case(budget: float | None, **changes: Any) -> tuple[PortfolioConfiguration, dict[str, float]]:
    """Issue 21's refused request in small: A (under its target) holds one short-term loss lot
    (17 shares, -$112 if sold), B and C only gains. The relaxation sells A's loss lot and buys it
    back; its quadratic model puts A on the buying side, where no trades meet a negative budget."""
    prices = {"A": 50.0, "B": 100.0, "C": 40.0}
    held = [
        Holding(symbol="A", shares=17, lots=[TaxLot(shares=17, cost_basis=56.6, acquired=AS_OF - timedelta(days=60))]),
        Holding(symbol="B", shares=50, lots=[TaxLot(shares=50, cost_basis=60.0, acquired=AS_OF - timedelta(days=900))]),
        Holding(symbol="C", shares=100, lots=[TaxLot(shares=100, cost_basis=30.0, acquired=date(2024, 6, 3))]),
    ]
    config = PortfolioConfiguration(
        holdings=held,
        target_weights={"A": 0.10, "B": 0.45, "C": 0.43},
        cash=500.0,
        method="minimize_costs",
        tolerance=0.0,
        min_trade_size=0.0,
        tax=TaxSettings(
            as_of=AS_OF, short_term_rate=ST, long_term_rate=LT, max_realized_gain=budget, tax_model="linear"
        ),
        **changes,
    )
    return config, prices


@pytest.mark.parametrize("fractional", [False, True])
def test_a_feasible_negative_budget_is_met_whatever_side_the_heuristic_picks(fractional: bool) -> None:
    """Selling A's 17 shares (-$112) keeps every limit with a -$94 budget: the request is answered
    (issue 21: refused, blaming ``tax_buys_only[A]``, a group the user never set)."""
    config, prices = _pgr_case(-94.0, allow_fractional_shares=fractional)
    result = rebalance(config, prices)
    check_guarantees(config, prices, result)
    assert result.tax is not None
    assert result.tax.net_realized_gain <= -94.0
    assert any(t.symbol == "A" and t.action == "sell" for t in result.trades)
    assert not any(t.symbol == "A" and t.action == "buy" for t in result.trades)


def test_a_refusal_names_the_users_settings_never_the_side_groups() -> None:
    """A floor on A's weight and the budget together need A sold and bought back: refused, naming
    the budget and the one-side rule, never the internal side groups."""
    config, prices = _pgr_case(-94.0, min_position_weights={"A": 0.08})
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(config, prices)
    text = str(info.value)
    assert "tax_buys_only" not in text
    assert "tax_sells_only" not in text
    assert "max_realized_gain=-94" in text or "realized_gain" in text
    assert all(not c.name.startswith("tax_") for c in info.value.conflicts)


def test_a_budget_the_lot_order_keeps_out_of_reach_names_the_lot_policy() -> None:
    """A's oldest lot is a gain, its newest a loss: selling A's lots oldest first, no sale meets a
    -$94 budget; relieving the loss lot alone does. The refusal says so (issue 21: it said only
    whole shares were the cause and to allow fractional shares, which were already on here)."""
    config, prices = _pgr_case(-94.0, allow_fractional_shares=True)
    a_lots = [
        TaxLot(shares=10, cost_basis=45.0, acquired=AS_OF - timedelta(days=1000), lot_id="A-old"),
        TaxLot(shares=17, cost_basis=56.6, acquired=AS_OF - timedelta(days=60), lot_id="A-loss"),
    ]
    held = [Holding(symbol="A", shares=27, lots=a_lots), *config.holdings[1:]]
    config = with_tax(config.model_copy(update={"holdings": held}), lot_policy="fifo")
    answered = rebalance(with_tax(config, lot_policy="optimal"), prices)
    assert answered.tax is not None
    assert answered.tax.net_realized_gain <= -94.0
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(config, prices)
    text = str(info.value)
    assert "max_realized_gain=-94" in text
    assert "FIFO" in text
    assert "lot_policy='optimal' can" in text
    assert "allow fractional shares" not in text


@pytest.mark.parametrize("weight", [None, 0.0])
def test_a_limit_that_holds_the_book_away_is_named_not_the_tax_weight(weight: float | None) -> None:
    """A -$94 budget forces selling A, under its target, without buying it back: the book ends
    farther from its target at any tax weight, 0 included. The warning names the gain budget and
    does not suggest a smaller tax weight (issue 21: it did, at tax_weight 0 too)."""
    config, prices = _pgr_case(-94.0)
    result = rebalance(with_tax(config, tax_weight=weight), prices)
    assert result.tracking_distance_after > result.tracking_distance_before
    assert not any("tax saved outweighs" in w for w in result.warnings)
    assert any("farther from its target" in w and "realized_gain" in w for w in result.warnings)


@pytest.mark.parametrize("weight", [None, 0.0])
def test_a_binding_turnover_cap_is_named_not_the_tax_weight(weight: float | None) -> None:
    """B above a 40 % position cap must be sold; a 10 % turnover cap leaves most of the proceeds in
    cash, farther from the target at any tax weight: the warning names the cap and the turnover,
    not the tax weight (issue 21)."""
    config, prices = _pgr_case(None, max_position_weight=0.40, max_turnover=0.10)
    result = rebalance(with_tax(config, tax_weight=weight), prices)
    assert result.tracking_distance_after > result.tracking_distance_before
    assert not any("tax saved outweighs" in w for w in result.warnings)
    warning = next(w for w in result.warnings if "farther from its target" in w)
    assert "turnover_cap" in warning
    assert "max_position[B]" in warning


@pytest.mark.parametrize(
    ("seed", "n", "lots", "changes", "tax"),
    [
        (333433, 4, 4, {"method": "minimize_trades"}, {"tax_weight": 0.0, "lot_policy": "fifo", "budget": -2261.38}),
        (
            343838,
            2,
            3,
            {
                "method": "minimize_trades",
                "min_trade_size": 50.0,
                "max_turnover": 0.12817,
                "max_position_weight": 0.58468,
            },
            {"tax_weight": None, "budget": -917.9},
        ),
        (
            702228,
            4,
            3,
            {"method": "minimize_trades", "min_trade_size": 200.0, "transaction_cost_rate": 0.001},
            {"tax_weight": None, "allow_fractional_shares": True, "budget": -1738.46},
        ),
    ],
)
def test_a_negative_budget_some_trades_meet_is_not_refused(
    seed: int, n: int, lots: int, changes: dict[str, Any], tax: dict[str, Any]
) -> None:
    """Random small requests with a negative budget that the side heuristic and the rounding
    refused -- "only whole shares make the request infeasible", or the FIFO order blamed -- though
    exact mode's program finds trades that meet every limit (found by a random load, issue 21):
    the engine tries that program before refusing."""
    config, prices = book(seed, n=n, lots=lots)
    tax = dict(tax)
    fractional = tax.pop("allow_fractional_shares", False)
    budget = tax.pop("budget")
    config = config.model_copy(update={**changes, "allow_fractional_shares": fractional})
    config = with_tax(config, **tax, max_realized_gain=budget)
    exact = rebalance(config, prices, exact=True)  # some whole-share trades meet it
    assert exact.tax is not None
    assert exact.tax.net_realized_gain <= budget + 0.01
    result = rebalance(config, prices)
    check_guarantees(config, prices, result)
    assert result.tax is not None
    assert result.tax.net_realized_gain <= budget + 0.01


def test_a_loss_budget_the_wash_sale_rule_defeats_names_the_withheld_lots() -> None:
    """A negative gain budget when every loss lot is withheld (the seeded load's tax refusals:
    each asset held a lot bought within the window): the refusal names the rule and the assets,
    not only ``realized_gain``; allowing wash-sale losses, the same request is answered."""
    bought = RecentPurchase(symbol="A", date=AS_OF - timedelta(days=10), shares=5)
    config, prices = _loss_case(recent_purchases=[bought], max_realized_gain=-500.0)
    with pytest.raises(InfeasibleRebalanceError) as info:
        rebalance(config, prices)
    assert "realized_gain" in str(info.value)
    assert "wash-sale rule keeps the loss lots of A from sale" in str(info.value)
    allowed = rebalance(with_tax(config, allow_wash_sale_losses=True), prices)
    assert allowed.tax is not None
    assert allowed.tax.net_realized_gain <= -500.0 + 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_a_resorted_lot_book_names_each_lot_with_its_own_shares_basis_and_date(seed: int) -> None:
    """The book keeps each lot's place among the account's lots (not its id and date tuples) and
    re-sorts only arrays: after any re-sorting every position still names the lot its shares,
    basis and date are."""
    from finwiz.optimizer.tax._tax import lot_book

    config, prices = book(seed, n=6, lots=4)
    lots = lot_book(config, np.array([prices[s] for s in config.symbols]))
    assert lots is not None
    given = {lot.lot_id: lot for h in config.holdings for lot in h.lots}
    for resorted in (lots, lots._sorted(-lots.gain), lots.priced(0.5)):
        each = [[k for k in row if k >= 0] for row in resorted.slots.tolist()]  # each asset's lots' places
        ids_of = [[resorted.lot_ids[k] for k in row] for row in each]
        dates_of = [[resorted.dates[k] for k in row] for row in each]
        assert sorted(i for row in ids_of for i in row) == sorted(given)
        for i, (ids, dates) in enumerate(zip(ids_of, dates_of, strict=True)):
            for k, (lot_id, acquired) in enumerate(zip(ids, dates, strict=True)):
                lot = given[lot_id]
                assert (resorted.shares[i, k], resorted.basis[i, k]) == (lot.shares, lot.cost_basis)
                assert acquired == lot.acquired
                assert resorted.day[i, k] == lot.acquired.toordinal()


@pytest.mark.parametrize("seed", [0, 1])
def test_realised_gives_relief_s_tax_and_gain_along_a_search(seed: int) -> None:
    """``LotBook.realised`` relieves only the assets changed since its last call: along a walk
    of sales a few assets apart (and a fresh start), its tax and gain are relief's, bit for bit."""
    from finwiz.optimizer.tax._tax import lot_book

    config, prices = book(seed, n=8, lots=4)
    lots = lot_book(config, np.array([prices[s] for s in config.symbols]))
    assert lots is not None
    rng = np.random.default_rng(seed)
    sold = rng.uniform(-1.0, 1.2, size=8) * lots.shares.sum(axis=1)
    for step in range(30):
        changed = rng.choice(8, size=1 + step % 3, replace=False)
        sold[changed] = rng.uniform(-1.0, 1.2, size=len(changed)) * lots.shares.sum(axis=1)[changed]
        asked = sold[:5] if step == 20 else sold  # another length: a fresh start
        tax, gain = lots.realised(asked)
        _, want_tax, want_gain = lots.relief(asked)
        assert tax.tobytes() == want_tax.tobytes()
        assert gain.tobytes() == want_gain.tobytes()
        assert not tax.flags.writeable


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relief_takes_from_each_lot_in_order_as_a_lot_by_lot_sale(seed: int) -> None:
    """``LotBook.relief`` of signed trades (buys take nothing, sales beyond the lots take all of
    them), with and without ``owner``, equals walking each asset's lots in relief order."""
    from finwiz.optimizer.tax._tax import lot_book

    config, prices = book(seed, n=6, lots=4)
    lots = lot_book(config, np.array([prices[s] for s in config.symbols]))
    assert lots is not None
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 6, size=40)
    sold = rng.uniform(-1.5, 1.5, size=40) * lots.shares.sum(axis=1)[owner]
    sold[::7] = 0.0
    for rows, asked in ((owner, owner), (np.arange(6), None)):
        amounts = sold[: len(rows)]
        taken, tax, gain = lots.relief(amounts, asked)
        for j, (i, q) in enumerate(zip(rows.tolist(), amounts.tolist(), strict=True)):
            left, want_tax, want_gain = max(q, 0.0), 0.0, 0.0
            for k in range(lots.shares.shape[1]):
                take = min(left, lots.shares[i, k])
                left -= take
                assert taken[j, k] == pytest.approx(take, abs=1e-9)
                want_tax += take * lots.gain[i, k] * lots.rate[i, k]
                want_gain += take * lots.gain[i, k]
            assert (tax[j], gain[j]) == (pytest.approx(want_tax, abs=1e-6), pytest.approx(want_gain, abs=1e-6))
