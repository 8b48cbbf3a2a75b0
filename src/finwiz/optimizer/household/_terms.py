"""The household's terms on the stacked pairs: lifted household terms, each account's cash and
caps, and the tax drag of where each asset is held (asset location)."""

from __future__ import annotations

import numpy as np

from finwiz.errors import ConfigurationError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._limits import (
    BudgetTerm,
    ESGFloorTerm,
    PositionCapTerm,
    PositionFloorTerm,
    SectorCapTerm,
    TaxTerm,
    TradeBoundsTerm,
    TurnoverCapTerm,
)
from finwiz.optimizer.describe._model import Affine, Description, LimitGroup
from finwiz.optimizer.describe._terms import Term, TradeCountTerm, TransactionCostTerm, TurnoverPenaltyTerm
from finwiz.optimizer.household._stack import Stack, lift

__all__ = ["household_terms"]

_ON_TRADES = (TradeCountTerm, TransactionCostTerm, TurnoverPenaltyTerm)
"""Strategy terms that speak of trades, not weights: stated on the pairs themselves (a household's
trade count counts each account's trades)."""


class LiftedTerm(Term):
    """A household-view term stated on the pairs (see ``_stack.lift``)."""

    reads_context = False

    def __init__(self, inner: Term, stack: Stack) -> None:
        self.inner = inner
        self.name = inner.name
        self._description = lift(_described(inner, stack.hh), stack, inner.name)

    def describe(self, data: ProblemData) -> Description:
        return self._description


def _described(term: Term, data: ProblemData) -> Description:
    d = term.describe(data)
    if d is None:
        raise ConfigurationError(f"term {term.name!r}: a household takes described terms only, not cvxpy ones")
    return d


def _account_rows(stack: Stack, coef_buy: np.ndarray, coef_sell: np.ndarray) -> Affine:
    """One row per account: the sum over its pairs of ``coef_buy buy + coef_sell sell``."""
    n = stack.data.n
    idx = np.arange(n)
    rows = np.concatenate([stack.pair_account, stack.pair_account])
    return Affine(rows, np.concatenate([idx, idx + n]), np.concatenate([coef_buy, coef_sell]), np.zeros(0))


class AccountCashTerm(Term):
    """Each account pays its own trades and costs from its own cash:
    ``cash_a / V_ref - sum_(p in a) (buy_p - sell_p + rate_p (buy_p + sell_p)) >= 0``."""

    reads_context = False
    name = "account_cash"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def describe(self, data: ProblemData) -> Description:
        accounts = self.stack.accounts
        rate = data.cost_rate
        rows = _account_rows(self.stack, -(1.0 + rate), 1.0 - rate)
        cash = np.array([a.cash for a in accounts]) / data.ref_value
        rows = Affine(rows.rows, rows.cols, rows.vals, cash)
        group = LimitGroup(
            self.name,
            rows,
            np.zeros(len(accounts)),
            np.full(len(accounts), np.inf),
            tuple(a.account_id for a in accounts),
            unit="currency",
            show=data.ref_value,
        )
        return Description(limits=[group])


def account_values(stack: Stack) -> np.ndarray:
    """Each account's value before trading (currency)."""
    data = stack.data
    held = np.bincount(stack.pair_account, weights=data.shares * data.prices, minlength=len(stack.accounts))
    return np.asarray(held + np.array([a.cash for a in stack.accounts]))


class AccountCapTerm(Term):
    """``w_p <= cap_p x V_a / V_ref``: an account's own caps, on its value before trading."""

    reads_context = False
    name = "account_position_cap"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        cap = np.full(stack.data.n, np.inf)
        for p, (a, i) in enumerate(zip(stack.pair_account, stack.pair_asset, strict=True)):
            account, symbol = stack.accounts[a], stack.symbols[i]
            own = account.max_position_weights.get(symbol, account.max_position_weight)
            if own is not None:
                cap[p] = own
        self.cap = cap

    def applies(self, data: ProblemData) -> bool:
        return bool(np.isfinite(self.cap).any())

    def describe(self, data: ProblemData) -> Description:
        idx = np.flatnonzero(np.isfinite(self.cap))
        share = account_values(self.stack)[self.stack.pair_account[idx]] / data.ref_value
        group = LimitGroup(
            self.name,
            Affine.weights_diag(np.ones(idx.size), data.x0, idx=idx),
            np.full(idx.size, -np.inf),
            self.cap[idx] * share,
            tuple(data.symbols[i] for i in idx),
            per_asset=True,
        )
        return Description(limits=[group])


def drag_rates(stack: Stack) -> np.ndarray:
    """Each pair's yearly tax drag per unit of value (``tax_drag[symbol][kind]``, else 0)."""
    drag = stack.household.tax_drag
    kinds = [a.kind for a in stack.accounts]
    table = np.array([[drag.get(s, {}).get(kind, 0.0) for kind in kinds] for s in stack.symbols]).reshape(
        -1, len(kinds)
    )
    return np.asarray(table[stack.pair_asset, stack.pair_account], dtype=float)


class TaxDragTerm(Term):
    """``drag_weight x sum_p drag_p w_p``: the household's expected yearly tax drag (asset location)."""

    reads_context = False
    name = "tax_drag"

    def __init__(self, stack: Stack) -> None:
        self.rates = drag_rates(stack) * stack.household.drag_weight

    def applies(self, data: ProblemData) -> bool:
        return bool(np.any(self.rates))

    def describe(self, data: ProblemData) -> Description:
        return Description(linear=Affine.weights_dense(self.rates[None, :], data.x0))


class SplitTieBreak(Term):
    """The continuous solve's choice among equally good splits of a household trade across
    accounts: ``eps sum_p (1 + u_p)(buy_p + sell_p)`` as a *surrogate* (the continuous solve's
    only; the true objective, which the whole-share stage minimises and the result reports, does
    not carry it). Accounts of one kind are interchangeable in the model -- a purchase split three
    ways costs what it costs in one account -- and an interior-point solve returns the centre of
    those splits: $486 of a name bought as three $162 trades, each below half the minimum trade.
    A generic weight ``u_p`` per pair (fixed, uniform in [0, 1)) leaves one vertex optimal: each
    trade made in as few accounts as cash allows (180 instead of 286 trades at 4 accounts x 100
    names), which whole shares then round with fewer lots lost. ``eps`` (1e-6 of the traded value,
    a hundredth of a basis point) is far below any price of the model; fractional requests, which
    round nothing, are left at the centre."""

    reads_context = False
    name = "split_tie_break"
    eps = 1e-6

    def applies(self, data: ProblemData) -> bool:
        return not data.fractional

    def describe(self, data: ProblemData) -> Description:
        u = np.random.default_rng(0).random(data.n)
        return Description(surrogate=Affine.traded(self.eps * (1.0 + u)))


_HOUSEHOLD_LIMITS = (PositionCapTerm, PositionFloorTerm, SectorCapTerm, ESGFloorTerm, TurnoverCapTerm)
_ACCOUNT_LIMITS = (BudgetTerm, TradeBoundsTerm, TaxTerm)


def household_terms(strategy_terms: list[Term], stack: Stack) -> list[Term]:
    """Every term of the stacked model: the strategy's (lifted where they speak of weights), the
    household's limits (lifted), each account's (on the pairs), the drag."""
    hh, data = stack.hh, stack.data
    terms: list[Term] = []
    for term in strategy_terms:
        if not term.applies(hh):
            continue
        terms.append(term if isinstance(term, _ON_TRADES) else LiftedTerm(term, stack))
    terms += [LiftedTerm(t(), stack) for t in _HOUSEHOLD_LIMITS if t().applies(hh)]
    terms += [t() for t in _ACCOUNT_LIMITS if t().applies(data)]
    own = (AccountCashTerm(stack), AccountCapTerm(stack), TaxDragTerm(stack), SplitTieBreak())
    terms += [t for t in own if t.applies(data)]
    return terms
