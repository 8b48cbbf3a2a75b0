"""Households (#25): the stacked model against an independent cvxpy model of the README formula,
asset location, wash sales across accounts, whole shares keeping every limit, named errors."""

from __future__ import annotations

from datetime import date

import cvxpy as cp
import numpy as np
import pytest

from finwiz import (
    Account,
    DuplicateAccountError,
    Holding,
    Household,
    HouseholdConflictError,
    InfeasibleHouseholdError,
    InvalidPortfolioError,
    TaxLot,
    TaxSettings,
    rebalance_household,
)
from finwiz.schemas import RecentSale

KINDS = ("taxable", "traditional", "roth")
FRACTIONAL = {"allow_fractional_shares": True, "min_trade_size": 0.0, "transaction_cost_rate": 0.0, "tolerance": 0.0}


def _random_household(rng: np.random.Generator, n_accounts: int, n_assets: int, **policy: object):
    symbols = [f"S{i}" for i in range(n_assets)]
    prices = dict(zip(symbols, rng.uniform(20, 200, n_assets).round(2).tolist(), strict=True))
    accounts = []
    for k in range(n_accounts):
        held = rng.choice(n_assets, size=rng.integers(1, n_assets + 1), replace=False)
        holdings = [Holding(symbol=symbols[i], shares=float(rng.integers(5, 200))) for i in sorted(held)]
        accounts.append(
            Account(account_id=f"A{k}", kind=KINDS[k % 3], holdings=holdings, cash=float(rng.uniform(0, 5000)))
        )
    target = rng.dirichlet(np.ones(n_assets)) * 0.97
    drag = {s: {kind: float(rng.uniform(0, 0.02)) for kind in ("taxable", "traditional")} for s in symbols}
    household = Household(
        accounts=accounts,
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        tax_drag=drag,
        **policy,
    )
    return household, prices


def _independent(
    household: Household,
    prices: dict[str, float],
    cap: float | None = None,
    *,
    account_cap: float | None = None,
    sector: tuple[list[str], float] | None = None,
    turnover: float | None = None,
):
    """The README formula in plain cvxpy over post-trade values h[a, i] (fractional, zero costs):
    min ||W - t||^2 + (cash - cash_t)^2 + drag_weight x sum_a,i drag(a, i) h[a, i] / V,
    W_i = sum_a h[a, i] / V; each account's cash V_a - sum_i h[a, i] >= 0; W_i <= cap;
    h[a, i] <= account_cap V_a; the sector's sum W_i <= its cap; sum |h - h0| <= turnover V."""
    symbols = list(household.target_weights)
    accounts = household.accounts
    value = np.array([a.cash + sum(h.shares * prices[h.symbol] for h in a.holdings) for a in accounts])
    total = value.sum()
    h = cp.Variable((len(accounts), len(symbols)), nonneg=True)
    w = cp.sum(h, axis=0) / total
    t = np.array([household.target_weights[s] for s in symbols])
    drag = np.array([[household.tax_drag.get(s, {}).get(a.kind, 0.0) for s in symbols] for a in accounts])
    cash = 1 - cp.sum(w)
    objective = cp.sum_squares(w - t) + cp.square(cash - (1 - t.sum()))
    objective += household.drag_weight * cp.sum(cp.multiply(drag, h)) / total
    constraints = [cp.sum(h, axis=1) <= value]
    if cap is not None:
        constraints.append(w <= cap)
    if account_cap is not None:
        constraints.append(h <= account_cap * value[:, None])
    if sector is not None:
        members = np.array([s in sector[0] for s in symbols], float)
        constraints.append(members @ w <= sector[1])
    if turnover is not None:
        held = np.array(
            [[sum(x.shares * prices[s] for x in a.holdings if x.symbol == s) for s in symbols] for a in accounts]
        )
        constraints.append(cp.sum(cp.abs(h - held)) <= turnover * total)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return dict(zip(symbols, np.asarray(w.value).tolist(), strict=True)), float(problem.value), h.value


def _formula(household: Household, result: object, prices: dict[str, float]) -> float:
    """The README objective at the returned trades (post-trade values from shares x prices)."""
    symbols = list(household.target_weights)
    accounts = household.accounts
    after = [result.accounts[a.account_id].post_trade_holdings for a in accounts]  # type: ignore[attr-defined]
    h = np.array([[held.get(s, 0.0) * prices[s] for s in symbols] for held in after])
    total = sum(a.cash + sum(x.shares * prices[x.symbol] for x in a.holdings) for a in accounts)
    w = h.sum(axis=0) / total
    t = np.array([household.target_weights[s] for s in symbols])
    drag = np.array([[household.tax_drag.get(s, {}).get(a.kind, 0.0) for s in symbols] for a in accounts])
    return float(((w - t) ** 2).sum() + (t.sum() - w.sum()) ** 2 + household.drag_weight * (drag * h).sum() / total)


@pytest.mark.parametrize("seed", range(4))
def test_the_continuous_household_optimum_is_the_independent_models(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap = 0.3 if seed % 2 else None
    household, prices = _random_household(rng, 3, 5, max_position_weight=cap, **FRACTIONAL)
    result = rebalance_household(household, prices)
    weights, objective, _ = _independent(household, prices, cap)
    for symbol, w in weights.items():
        assert result.weights_after[symbol] == pytest.approx(w, abs=1e-6), symbol
    assert _formula(household, result, prices) == pytest.approx(objective, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_account_caps_sector_caps_and_turnover_as_the_independent_model(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    household, prices = _random_household(
        rng, 3, 5, sectors={"S0": "a", "S1": "a", "S2": "b"}, sector_caps={"a": 0.3}, max_turnover=0.25, **FRACTIONAL
    )
    accounts = [a.model_copy(update={"max_position_weight": 0.5}) for a in household.accounts]
    household = household.model_copy(update={"accounts": accounts})
    result = rebalance_household(household, prices)
    weights, objective, _ = _independent(household, prices, account_cap=0.5, sector=(["S0", "S1"], 0.3), turnover=0.25)
    for symbol, w in weights.items():
        assert result.weights_after[symbol] == pytest.approx(w, abs=1e-6), symbol
    assert _formula(household, result, prices) == pytest.approx(
        objective, abs=1e-8
    )  # binding rows: millionths of a share


def test_high_drag_assets_sit_in_the_tax_deferred_account_as_far_as_target_and_limits_allow() -> None:
    prices = {"BND": 100.0, "VTI": 100.0}
    household = Household(
        accounts=[
            Account(account_id="taxable", kind="taxable", holdings=[Holding(symbol="BND", shares=600)], cash=0),
            Account(account_id="ira", kind="traditional", holdings=[Holding(symbol="VTI", shares=400)], cash=0),
        ],
        target_weights={"BND": 0.3, "VTI": 0.7},
        tax_drag={"BND": {"taxable": 0.012}, "VTI": {"taxable": 0.002}},
        **FRACTIONAL,
    )
    result = rebalance_household(household, prices)
    frame = result.to_frame()
    # The IRA ($40k) holds all of BND (its $30k target, less what the drag left in VTI's taxable
    # dollars shaves off), the taxable account none of it: as the independent model.
    _, objective, h = _independent(household, prices)
    assert frame.loc[("ira", "BND"), "value_after"] == pytest.approx(h[1, 0], abs=1)
    assert frame.loc[("ira", "BND"), "value_after"] > 29_900
    assert frame.loc[("taxable", "BND"), "value_after"] == pytest.approx(0, abs=1)
    assert _formula(household, result, prices) == pytest.approx(objective, abs=1e-9)
    assert result.tax_drag_after == pytest.approx(0.002 * frame.loc[("taxable", "VTI"), "value_after"])
    assert result.tax_drag_before == pytest.approx(0.012 * 60_000)


def test_an_account_cap_keeps_the_high_drag_asset_partly_in_the_taxable_account() -> None:
    prices = {"BND": 100.0, "VTI": 100.0}
    household = Household(
        accounts=[
            Account(account_id="taxable", kind="taxable", holdings=[Holding(symbol="BND", shares=600)]),
            Account(
                account_id="ira",
                kind="traditional",
                holdings=[Holding(symbol="VTI", shares=400)],
                max_position_weights={"BND": 0.5},
            ),
        ],
        target_weights={"BND": 0.3, "VTI": 0.7},
        tax_drag={"BND": {"taxable": 0.012}, "VTI": {"taxable": 0.002}},
        **FRACTIONAL,
    )
    frame = rebalance_household(household, prices).to_frame()
    assert frame.loc[("ira", "BND"), "value_after"] == pytest.approx(20_000, abs=1)  # its cap: half of $40k
    assert 9_000 < frame.loc[("taxable", "BND"), "value_after"] <= 10_000  # the rest of BND's target


def _loss_household(rng: np.random.Generator):
    """A taxable account holding loss lots of assets that the drag wants in the IRA (the sale that
    harvests the loss and the purchase in the IRA are the wash sale), with identical pairs."""
    as_of = date(2026, 12, 1)
    symbols = ["VOO", "IVV", "BND", "AGG", "VXUS"]
    prices = dict(zip(symbols, rng.uniform(40, 120, 5).round(2).tolist(), strict=True))
    lots_holdings = []
    for s in rng.choice(symbols, size=3, replace=False):
        shares = float(rng.integers(50, 150))
        basis = prices[s] * float(rng.uniform(0.8, 1.4))
        lots_holdings.append(
            Holding(symbol=s, shares=shares, lots=[TaxLot(shares=shares, cost_basis=basis, acquired=date(2025, 6, 1))])
        )
    recent = [RecentSale(symbol="VXUS", date=date(2026, 11, 20), shares=10, loss=100.0)] if rng.random() < 0.5 else []
    tax = TaxSettings(
        as_of=as_of,
        short_term_rate=0.37,
        long_term_rate=0.2,
        identical={"VOO": "sp500", "IVV": "sp500", "BND": "bonds", "AGG": "bonds"},
        recent_sales=recent,
        tax_weight=float(rng.uniform(0.05, 1.0)),
    )
    ira = [Holding(symbol=s, shares=float(rng.integers(10, 100))) for s in rng.choice(symbols, size=2, replace=False)]
    household = Household(
        accounts=[
            Account(account_id="joint", kind="taxable", holdings=lots_holdings, cash=1000.0, tax=tax),
            Account(account_id="ira", kind="traditional", holdings=ira, cash=float(rng.uniform(0, 20_000))),
            Account(account_id="roth", kind="roth", cash=float(rng.uniform(0, 5000))),
        ],
        target_weights=dict(zip(symbols, (rng.dirichlet(np.ones(5)) * 0.95).tolist(), strict=True)),
        tax_drag={s: {"taxable": float(rng.uniform(0, 0.03))} for s in symbols},
        transaction_cost_rate=0.0,
    )
    return household, prices, tax


def test_randomized_no_loss_sale_in_a_taxable_account_with_a_purchase_of_its_group_in_any_account() -> None:
    loss_sales = 0
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        household, prices, tax = _loss_household(rng)
        result = rebalance_household(household, prices)
        sold_at_loss = {
            tax.group(t.symbol) for t in result.accounts["joint"].trades if any(lot.realized_gain < 0 for lot in t.lots)
        }
        loss_sales += bool(sold_at_loss)
        recently_sold = {tax.group(s.symbol) for s in tax.recent_sales}
        bought = {tax.group(t.symbol) for _, t in result.trades if t.action == "buy"}
        assert not (sold_at_loss & bought), (seed, sold_at_loss, bought)
        assert not (recently_sold & bought), (seed, recently_sold, bought)
    assert loss_sales >= 3  # the rule was put to work, not vacuous


def test_whole_shares_keep_every_accounts_and_the_households_limits() -> None:
    for seed in range(4):
        rng = np.random.default_rng(seed)
        household, prices = _random_household(
            rng,
            4,
            8,
            max_position_weight=0.25,
            sectors={f"S{i}": ("tech" if i < 4 else "bonds") for i in range(8)},
            max_sector_weight=0.6,
            max_turnover=0.4,
            lot_sizes={"S1": 10},
            min_trade_size=200.0,
        )
        accounts = [
            a.model_copy(update={"no_buy": ["S2"], "max_position_weight": 0.5}) if a.kind == "roth" else a
            for a in household.accounts
        ]
        household = household.model_copy(update={"accounts": accounts})
        result = rebalance_household(household, prices)
        total_before = result.value_before
        traded = 0.0
        household_value: dict[str, float] = {}
        for account in household.accounts:
            r = result.accounts[account.account_id]
            spent = 0.0
            for t in r.trades:
                assert t.shares == int(t.shares)
                if t.symbol == "S1":
                    assert t.shares % 10 == 0
                assert t.trade_value >= 200.0 - 1e-9
                signed = t.shares * prices[t.symbol] * (1 if t.action == "buy" else -1)
                spent += signed + t.transaction_cost
                traded += t.shares * prices[t.symbol]
                if account.kind == "roth":
                    assert not (t.symbol == "S2" and t.action == "buy")
            assert account.cash - spent >= -1e-6
            account_value = account.cash + sum(h.shares * prices[h.symbol] for h in account.holdings)
            for symbol, shares in r.post_trade_holdings.items():
                value = shares * prices[symbol]
                household_value[symbol] = household_value.get(symbol, 0.0) + value
                if account.kind == "roth":
                    assert value <= 0.5 * account_value + 1e-6
        after = result.value_after
        assert all(v / after <= 0.25 + 1e-9 for v in household_value.values())
        tech = sum(v for s, v in household_value.items() if int(s[1:]) < 4)
        assert max(tech, sum(household_value.values()) - tech) / after <= 0.6 + 1e-9
        assert traded / total_before <= 0.4 + 1e-9
        assert result.is_compliant


def test_an_account_id_twice_is_a_named_error() -> None:
    with pytest.raises(DuplicateAccountError, match=r"(?i)ira"):
        Household(
            accounts=[Account(account_id="ira", kind="roth"), Account(account_id="IRA", kind="traditional")],
            target_weights={"VTI": 1.0},
        )


def test_a_symbol_no_account_may_sell_above_the_household_cap_is_a_named_error() -> None:
    household = Household(
        accounts=[
            Account(account_id="ira", kind="traditional", holdings=[Holding(symbol="VTI", shares=90)], no_sell=["VTI"]),
            Account(account_id="roth", kind="roth", holdings=[Holding(symbol="BND", shares=10)]),
        ],
        target_weights={"VTI": 0.5, "BND": 0.5},
        max_position_weights={"VTI": 0.6},
    )
    with pytest.raises(HouseholdConflictError, match=r"VTI.*ira") as caught:
        rebalance_household(household, {"VTI": 100.0, "BND": 100.0})
    assert caught.value.symbol == "VTI"


def test_household_limits_the_accounts_cannot_reach_are_a_named_error() -> None:
    household = Household(
        accounts=[
            Account(account_id="ira", kind="traditional", holdings=[Holding(symbol="VTI", shares=90)]),
            Account(account_id="roth", kind="roth", holdings=[Holding(symbol="BND", shares=10)]),
        ],
        target_weights={"VTI": 0.5, "BND": 0.5},
        max_position_weights={"VTI": 0.6},
        max_turnover=0.05,
    )
    with pytest.raises(InfeasibleHouseholdError, match="household"):
        rebalance_household(household, {"VTI": 100.0, "BND": 100.0})


def test_taxable_accounts_with_different_rates_are_refused_by_name() -> None:
    def tax(rate: float) -> TaxSettings:
        return TaxSettings(as_of=date(2026, 12, 1), short_term_rate=rate, long_term_rate=0.15)

    household = Household(
        accounts=[
            Account(account_id="a", kind="taxable", cash=100.0, tax=tax(0.3)),
            Account(account_id="b", kind="taxable", cash=100.0, tax=tax(0.4)),
        ],
        target_weights={"VTI": 0.5},
    )
    with pytest.raises(InvalidPortfolioError, match="short_term_rate"):
        rebalance_household(household, {"VTI": 10.0})


def test_a_sale_the_household_needs_is_made_in_the_retirement_account_not_from_taxable_gains() -> None:
    tax = TaxSettings(as_of=date(2026, 12, 1), short_term_rate=0.37, long_term_rate=0.2, tax_weight=1.0)
    lots = [TaxLot(shares=200, cost_basis=10.0, acquired=date(2015, 1, 2))]  # a $18k long-term gain
    household = Household(
        accounts=[
            Account(
                account_id="joint",
                kind="taxable",
                holdings=[Holding(symbol="VTI", shares=200, lots=lots)],
                cash=10_000.0,
                tax=tax,
            ),
            Account(account_id="ira", kind="traditional", holdings=[Holding(symbol="VTI", shares=200)]),
        ],
        target_weights={"VTI": 0.5, "BND": 0.5},
        transaction_cost_rate=0.0,
    )
    result = rebalance_household(household, {"VTI": 100.0, "BND": 50.0})
    joint, ira = result.accounts["joint"], result.accounts["ira"]
    assert not [t for t in joint.trades if t.action == "sell"]
    assert joint.tax is not None
    assert joint.tax.estimated_tax == 0.0
    sold = sum(t.shares for t in ira.trades if t.symbol == "VTI" and t.action == "sell")
    assert sold >= 140  # the IRA sells to fund BND; the taxable account's cash buys BND too
    assert result.weights_after["VTI"] == pytest.approx(0.5, abs=0.01)


def test_the_engine_method_is_the_module_function() -> None:
    from finwiz import RebalancingEngine

    household, prices = _random_household(np.random.default_rng(7), 2, 4)
    by_engine = RebalancingEngine().rebalance_household(household, prices)
    assert by_engine.weights_after == rebalance_household(household, prices).weights_after


def test_exact_mode_is_never_worse_than_the_whole_share_stage_and_keeps_every_limit() -> None:
    pytest.importorskip("pyscipopt")
    for seed in range(2):
        household, prices = _random_household(
            np.random.default_rng(seed), 2, 4, max_position_weight=0.4, min_trade_size=100.0
        )
        rounded = rebalance_household(household, prices)
        exact = rebalance_household(household, prices, exact=True)
        assert exact.is_compliant
        assert "exact_mip" in [s.name for s in exact.stages]
        assert exact.objective_value is not None
        assert rounded.objective_value is not None
        assert exact.objective_value <= rounded.objective_value + 1e-12


def test_a_taxable_holding_without_lots_is_refused_naming_account_and_symbol() -> None:
    tax = TaxSettings(as_of=date(2026, 12, 1), short_term_rate=0.37, long_term_rate=0.2)
    household = Household(
        accounts=[Account(account_id="joint", kind="taxable", holdings=[Holding(symbol="VTI", shares=5)], tax=tax)],
        target_weights={"VTI": 0.5},
    )
    with pytest.raises(InvalidPortfolioError, match=r"joint.*VTI.*lots") as caught:
        rebalance_household(household, {"VTI": 100.0})
    assert caught.value.symbol == "VTI"


def test_household_policy_keys_are_canonical_and_its_lot_size_applies() -> None:
    # The household's policy fields are PortfolioConfiguration's, validators included: " aapl" and
    # "aapl " are AAPL, a boolean tolerance is refused, and the lot size reaches the whole-share stage.
    account = Account(account_id="R", kind="roth", cash=10_000.0)
    household = Household(
        accounts=[account],
        target_weights={" aapl": 0.28},
        lot_sizes={"aapl ": 10},
        no_sell=["aapl"],
        min_trade_size=0.0,
        transaction_cost_rate=0.0,
    )
    assert household.target_weights == {"AAPL": 0.28}
    assert household.lot_sizes == {"AAPL": 10.0}
    assert household.no_sell == ["AAPL"]
    with pytest.raises(InvalidPortfolioError, match="tolerance"):
        Household(accounts=[account], target_weights={"AAPL": 0.5}, tolerance=True)
    result = rebalance_household(household, {"AAPL": 100.0})
    (trade,) = result.accounts["R"].trades
    assert trade.symbol == "AAPL"
    assert trade.shares == 30  # the lot multiple nearest the target's 28 shares (28 when the lot was dropped)


def test_a_purchase_is_not_split_across_interchangeable_accounts() -> None:
    """Three traditional accounts of $10,000 cash each buy three names to $9,000 each: any split
    of each purchase over the accounts is as good in the model; whole shares get one vertex of
    them (the split tie-break), at most names + accounts - 1 = 5 trades, where the centre of the
    splits is every account buying every name (9 trades, each rounded on its own)."""
    accounts = [Account(account_id=f"IRA{k}", kind="traditional", holdings=[], cash=10_000.0) for k in range(3)]
    prices = {"AAA": 50.0, "BBB": 20.0, "CCC": 10.0}
    household = Household(
        accounts=accounts,
        target_weights=dict.fromkeys(prices, 0.3),
        transaction_cost_rate=0.001,
        tolerance=0.0,
    )
    result = rebalance_household(household, prices)
    trades = [t for r in result.accounts.values() for t in r.trades]
    assert 3 <= len(trades) <= 5
    assert result.is_compliant
    for symbol in prices:  # the household's weights are still the target's, to a share
        assert result.weights_after[symbol] == pytest.approx(0.3, abs=prices[symbol] / 30_000)
