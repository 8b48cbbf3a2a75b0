"""A household as one problem over stacked (account, asset) pairs.

Two views of the same request are built with the engine's own :func:`build_problem_data`:

- the *household* view: one configuration of the summed holdings and cash, with the household's
  target and limits. Its weights are ``W_i = sum_a w_(a,i)``;
- the *stacked* view: one configuration whose assets are the pairs ``ACCOUNT:SYMBOL`` (their
  shares, lots, lot sizes, restricted lists, cost rates). Its trade variables are the model's.

Every term that speaks of weights (the strategy's tracking and risk terms, the household's caps,
floors, sectors, ESG, turnover) describes itself on the household view and is *lifted*: a row's
coefficient on asset ``i``'s buy (sell) becomes the same coefficient on each of its pairs' buys
(sells), which is exact because ``W_i - X_i = sum_a (buy_(a,i) - sell_(a,i))``. Terms that speak of
trades (the cost, the trade count, the turnover penalty, lots and tax, restricted lists, whole
lots) describe themselves on the stacked view directly. Both views share ``V_ref`` (the
household's value), so the scalar columns (cost, turnover, net purchase, tax, gain) are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from finwiz.errors import InvalidPortfolioError
from finwiz.optimizer.describe._data import ProblemData, build_problem_data, coerce_prices
from finwiz.optimizer.describe._model import Affine, Description
from finwiz.risk import FactorModel
from finwiz.schemas import Account, Holding, Household, PortfolioConfiguration, TaxLot, TaxSettings
from finwiz.settings import RebalancingSettings

__all__ = ["Stack", "build_stack", "lift"]

_OLD = date(1900, 1, 1)  # a retirement holding's stand-in lot: no gain, never a recent purchase
_SHARED_TAX = ("as_of", "short_term_rate", "long_term_rate", "long_term_days", "wash_sale_days", "max_realized_gain")


def pair_symbol(account: Account, symbol: str) -> str:
    """The stacked asset of ``symbol`` in ``account``."""
    return f"{account.account_id.strip().upper()}:{symbol}"


@dataclass(frozen=True)
class Stack:
    """The two views of one household request and the map between them."""

    household: Household
    symbols: tuple[str, ...]  # the household's assets (the household view's order)
    pair_account: np.ndarray  # account index of each pair
    pair_asset: np.ndarray  # household asset index of each pair
    hh: ProblemData  # the household view
    data: ProblemData  # the stacked view (the model's)
    group: tuple[str, ...]  # each pair's wash-sale group (its symbol's identical group)

    @property
    def accounts(self) -> list[Account]:
        return self.household.accounts

    def taxable(self) -> np.ndarray:
        """Which pairs are in a taxable account with tax settings."""
        return np.array([self.accounts[a].tax is not None for a in self.pair_account], bool)


def _holding(symbol: str, shares: float, lots: list[TaxLot] | None = None) -> Holding:
    """A holding built from validated ones (a canonical symbol, its lots' shares adding up to
    ``shares``): no second validation (~8 us each, 340 of them at 4 accounts x 100 names)."""
    return Holding.trusted(symbol=symbol, shares=shares, cost_basis=None, sector=None, esg_score=None, lots=lots or [])


def _household_config(household: Household) -> PortfolioConfiguration:
    totals: dict[str, float] = {}
    for account in household.accounts:
        for h in account.holdings:
            totals[h.symbol] = totals.get(h.symbol, 0.0) + h.shares
    return PortfolioConfiguration(
        holdings=[_holding(s, q) for s, q in totals.items()],
        cash=sum(a.cash for a in household.accounts),
        **household.policy(),
    )


def _merged_tax(household: Household, n: int) -> TaxSettings | None:
    """One taxpayer: the taxable accounts' settings must agree on rates, dates and budget; their
    recent trades are each account's own (renamed to its pairs) and their ``identical`` groups
    hold across the household."""
    taxed = [a for a in household.accounts if a.tax is not None]
    if not taxed:
        return None
    first = taxed[0].tax
    assert first is not None
    for account in taxed[1:]:
        assert account.tax is not None
        for name in _SHARED_TAX:
            if getattr(account.tax, name) != getattr(first, name):
                raise InvalidPortfolioError(
                    f"account {account.account_id}: tax.{name} differs from account {taxed[0].account_id}'s "
                    "(one household, one taxpayer)",
                    field=f"tax.{name}",
                )
    identical: dict[str, str] = {}
    for account in taxed:
        assert account.tax is not None
        identical.update(account.tax.identical)
    sales = [
        s.model_copy(update={"symbol": pair_symbol(a, s.symbol)}) for a in taxed if a.tax for s in a.tax.recent_sales
    ]
    buys = [
        p.model_copy(update={"symbol": pair_symbol(a, p.symbol)})
        for a in taxed
        if a.tax
        for p in a.tax.recent_purchases
    ]
    named = {t.symbol: t.symbol.partition(":")[2] for t in [*sales, *buys]}
    universe = _universe(household)
    pairs = {pair_symbol(a, s): s for a in household.accounts for s in _account_universe(a, universe)}
    groups = {p: "WASH:" + identical.get(s, s) for p, s in {**pairs, **named}.items()}
    update: dict[str, Any] = {"identical": groups, "recent_sales": sales, "recent_purchases": buys}
    if first.tax_weight is None:  # the default's 1 / (2 n) counts the household's assets, not its pairs
        update["tax_weight"] = 1.0 / (2 * n)
    return first.model_copy(update=update)


def _universe(household: Household) -> list[str]:
    """Every symbol of the household: held by any account, or in its target."""
    held = [h.symbol for a in household.accounts for h in a.holdings]
    return list(dict.fromkeys([*held, *household.target_weights]))


def _account_universe(account: Account, universe: list[str]) -> list[str]:
    """The account's pairs' symbols: its own holdings first, then the rest of the household's."""
    return list(dict.fromkeys([*(h.symbol for h in account.holdings), *universe]))


def _stacked_holding(account: Account, holding: Holding, price: float, taxed: bool) -> Holding:
    symbol = pair_symbol(account, holding.symbol)
    if not taxed:
        return _holding(symbol, holding.shares)
    if account.tax is not None and not holding.lots:
        raise InvalidPortfolioError(
            f"account {account.account_id}: {holding.symbol} has no lots; with tax settings every position "
            "needs its lots",
            field="lots",
            symbol=holding.symbol,
        )
    lots = holding.lots if account.tax is not None else []
    if not lots:  # tax-free: one lot at today's price
        lots = [TaxLot(shares=holding.shares, cost_basis=price, acquired=_OLD, lot_id=f"{symbol}#0")]
    else:
        lots = [lot.model_copy(update={"lot_id": f"{account.account_id}:{lot.lot_id}"}) for lot in lots]
    return _holding(symbol, holding.shares, lots)


def _per_pair(values: Mapping[str, float], account_values: Mapping[str, float], symbol: str) -> float | None:
    if symbol in account_values:
        return account_values[symbol]
    return values.get(symbol)


def _stacked_config(household: Household, hh: ProblemData, price: dict[str, float]) -> PortfolioConfiguration:
    tax = _merged_tax(household, hh.n)
    holdings: list[Holding] = []
    lot_sizes: dict[str, float] = {}
    rates: dict[str, float] = {}
    no_buy: list[str] = []
    no_sell: list[str] = []
    no_trade: list[str] = []
    targets: dict[str, float] = {}
    universe = _universe(household)
    for account in household.accounts:
        for h in account.holdings:
            if h.shares:
                holdings.append(_stacked_holding(account, h, price[h.symbol], tax is not None))
        prefix = pair_symbol(account, "")
        for symbol in _account_universe(account, universe):
            pair = prefix + symbol
            targets[pair] = 0.0
            lot = _per_pair(household.lot_sizes, account.lot_sizes, symbol)
            if lot is not None:
                lot_sizes[pair] = lot
            if symbol in household.transaction_cost_rates:
                rates[pair] = household.transaction_cost_rates[symbol]
        for mine, theirs in ((no_buy, account.no_buy), (no_sell, account.no_sell), (no_trade, account.no_trade)):
            mine += [pair_symbol(account, s) for s in theirs]
    return PortfolioConfiguration(
        holdings=holdings,
        target_weights=targets,
        cash=sum(a.cash for a in household.accounts),
        tolerance=0.0,
        transaction_cost_rate=household.transaction_cost_rate,
        transaction_cost_rates=rates,
        min_trade_size=household.min_trade_size,
        allow_fractional_shares=household.allow_fractional_shares,
        lot_sizes=lot_sizes,
        min_cash_weight=household.min_cash_weight,
        no_buy=no_buy,
        no_sell=no_sell,
        no_trade=no_trade,
        trade_penalty=hh.trade_penalty,
        risk_aversion=household.risk_aversion,
        tax=tax,
    )


def build_stack(
    household: Household,
    prices: Mapping[str, Any] | pd.Series,
    settings: RebalancingSettings,
    factor_model: FactorModel | None = None,
    covariance: pd.DataFrame | None = None,
) -> Stack:
    """Both views of ``household`` at ``prices`` and the pair map between them."""
    hh_config = _household_config(household)
    hh = build_problem_data(hh_config, prices, factor_model=factor_model, covariance=covariance, settings=settings)
    price = dict(zip(hh.symbols, coerce_prices(prices, hh.symbols).tolist(), strict=True))
    config = _stacked_config(household, hh, price)
    index = {s: i for i, s in enumerate(hh.symbols)}
    accounts = {pair_symbol(a, ""): k for k, a in enumerate(household.accounts)}
    symbols = config.symbols
    pair_account = np.array([accounts[s.rpartition(":")[0] + ":"] for s in symbols], dtype=np.int64)
    pair_asset = np.array([index[s.rpartition(":")[2]] for s in symbols], dtype=np.int64)
    data = build_problem_data(config, {s: price[s.rpartition(":")[2]] for s in symbols}, settings=settings)
    # The household's own restrictions, band and screen reach every account's pair of the asset.
    blocked = {k: v | hh.blocked[k][pair_asset] if k in hh.blocked else v for k, v in data.blocked.items()}
    data = data.evolve(blocked=blocked)
    group = tuple(config.tax.group(s) if config.tax is not None else s.rpartition(":")[2] for s in symbols)
    return Stack(household, tuple(hh.symbols), pair_account, pair_asset, hh, data, group)


# --------------------------------------------------------------------------- lifting


def _lift_affine(a: Affine, pair_asset: np.ndarray, n: int) -> Affine:
    """Rows over the household's ``[buy, sell]`` as rows over the pairs' (scalar columns kept)."""
    pairs = len(pair_asset)
    order = np.argsort(pair_asset, kind="stable")
    counts = np.bincount(pair_asset, minlength=n)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    on_asset = a.cols >= 0
    asset, side = a.cols[on_asset] % n, a.cols[on_asset] // n
    reps = counts[asset]
    total = int(reps.sum())
    within = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    cols = order[np.repeat(start[asset], reps) + within] + np.repeat(side, reps) * pairs
    return Affine(
        np.concatenate([np.repeat(a.rows[on_asset], reps), a.rows[~on_asset]]),
        np.concatenate([cols, a.cols[~on_asset]]),
        np.concatenate([np.repeat(a.vals[on_asset], reps), a.vals[~on_asset]]),
        a.offset,
    )


def lift(d: Description, stack: Stack, term: str) -> Description:
    """A household-view description as one over the stacked pairs (see the module docstring)."""
    if d.impact is not None or d.tax is not None:
        raise InvalidPortfolioError(f"term {term!r}: market impact and lots are per account, not household terms")
    n, pa, x0 = stack.hh.n, stack.pair_asset, stack.hh.x0

    def up(a: Affine) -> Affine:
        return _lift_affine(a, pa, n)

    squares = [Affine.weights_diag(s, x0, base=b) for s, b in d.weight_squares]
    limits = [dataclasses.replace(g, rows=up(g.rows), per=None if g.per is None else up(g.per)) for g in d.limits]
    return Description(
        scalar_squares=list(d.scalar_squares),
        low_rank=[up(a) for a in [*squares, *d.low_rank]],
        linear=None if d.linear is None else up(d.linear),
        surrogate=None if d.surrogate is None else up(d.surrogate),
        cost_weight=d.cost_weight,
        count=d.count,
        limits=limits,
    )
