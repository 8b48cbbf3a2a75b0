"""A taxable account's lots carried through a backtest: :class:`LotLedger`.

What the simulation asks of it, in a day's order: :meth:`LotLedger.new_day` (closes the calendar
years that ended, returning their tax), :meth:`LotLedger.settings` and
:meth:`LotLedger.holdings` (the day's ``TaxSettings`` -- ``as_of`` the day, the wash-sale window's
purchases and loss sales -- and the holdings with their lots, for the policy), then
:meth:`LotLedger.trade` for every trade: a buy opens a lot at the day's price and date, a sale
relieves the lots the rebalance named (``trade.lots``) or, for a decision that names none, the
account's ``lot_policy`` order (``fifo``; ``hifo``; ``optimal``: the least tax per share first).

Wash sales, both directions: a sale of a lot at a loss within ``wash_sale_days`` of a purchase of
the same wash-sale group (the symbol, or its ``identical`` group), before it or after it, is a
wash sale. The simulation feeds the window's trades to every tax-aware rebalance, so the engine
does not make one; a policy that does (a tax-blind one) has the loss disallowed as the IRS does:
the disallowed loss is added to the basis of the replacement shares (matched share for share, each
purchase replacing at most its own shares, and only while its lot is still held) and counted in
``wash_sale_disallowed``; a loss of a closed year washed by a purchase in January is added back in
the purchase's year. The replacement lot keeps its own acquisition date (the holding period is not
tacked on: a simplification).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import numpy as np
import pandas as pd

from finwiz.errors import InvalidPortfolioError, PolicyError
from finwiz.optimizer.tax._netting import YearTax, year_tax
from finwiz.optimizer.tax._tax import relief_keys
from finwiz.schemas import Holding, LotSale, RecentPurchase, RecentSale, TaxLot, TaxSettings

__all__ = ["LOT_SALE_COLUMNS", "TAX_COLUMNS", "LotLedger", "TaxOptions", "check_lot_dates"]

LOT_SALE_COLUMNS = [
    "date",
    "symbol",
    "lot_id",
    "shares",
    "cost_basis",
    "acquired",
    "price",
    "realized_gain",
    "term",
    "wash_sale_disallowed",
]
TAX_COLUMNS = [
    "short_term_gains",
    "short_term_losses",
    "long_term_gains",
    "long_term_losses",
    "losses_harvested",
    "wash_sale_disallowed",
    "carry_in",
    "tax",
    "carryforward",
    "paid",
    "paid_on",
]


@dataclass(frozen=True)
class TaxOptions:
    """How a taxable backtest settles its tax (see :class:`~finwiz.backtest.Backtest`); the
    ordinary rate and loss limit are the account's ``TaxSettings``', as the engine's."""

    pay_taxes: bool = True
    outside_gains: bool = False


def check_lot_dates(holdings: tuple[Holding, ...], first_day: date) -> None:
    """Refuse, by name, a lot acquired after the backtest's first day."""
    for h in holdings:
        for lot in h.lots:
            if lot.acquired > first_day:
                raise InvalidPortfolioError(
                    f"holdings: lot {lot.lot_id} of {h.symbol} was acquired on {lot.acquired}, "
                    f"after the backtest's first day {first_day}",
                    field="acquired",
                    symbol=h.symbol,
                )


@dataclass
class _Purchase:
    day: date
    group: str
    asset: int
    lot_id: str
    shares: float
    used: float = 0.0  # shares already replacing an earlier loss sale


@dataclass
class _Sale:
    day: date
    asset: int
    lot_id: str
    shares: float
    basis: float
    acquired: date
    price: float
    gain: float  # to the cent
    long: bool
    disallowed: float = 0.0
    unmatched: float = 0.0  # loss shares no purchase has replaced yet

    @property
    def taxable(self) -> float:
        return self.gain + self.disallowed


class LotLedger:
    """Every open lot, the window's trades, and the realised gains per calendar year (the lots'
    dates are checked once, by ``Backtest``: :func:`check_lot_dates`)."""

    def __init__(
        self,
        holdings: tuple[Holding, ...],
        settings: TaxSettings,
        *,
        first_day: date,
        options: TaxOptions,
    ) -> None:
        self.base = settings
        self.symbols = tuple(h.symbol for h in holdings)
        self.groups = tuple(settings.group(s) for s in self.symbols)
        self.pay_taxes = options.pay_taxes
        self.outside_gains = options.outside_gains
        self._base_holdings = holdings
        self.lots: list[dict[str, TaxLot]] = [{str(lot.lot_id): lot for lot in h.lots} for h in holdings]
        self._held: list[Holding | None] = [None] * len(holdings)  # each asset's record, until its lots change
        self.purchases: list[_Purchase] = []
        self.loss_window: list[_Sale] = []  # loss sales still within the window (for after-purchases)
        self.sales: list[_Sale] = []
        self.recent_loss_sales: list[RecentSale] = [t for t in settings.recent_sales if t.loss > 0]
        self.prior_purchases: list[RecentPurchase] = list(settings.recent_purchases)
        index = {s: i for i, s in enumerate(self.symbols)}
        for t in settings.recent_purchases:  # the account's own history of the window counts too
            if t.symbol in index:
                self.purchases.append(_Purchase(t.date, settings.group(t.symbol), index[t.symbol], "", t.shares))
        for i, h in enumerate(holdings):
            for lot in h.lots:
                self.purchases.append(_Purchase(lot.acquired, self.groups[i], i, str(lot.lot_id), lot.shares, used=0.0))
        self.year = first_day.year
        self.year_start = 0  # index into sales of the current year's first sale
        self.adjust = [0.0, 0.0]  # short, long: late disallowances of sales in closed years
        self.late = 0.0
        self.carry = (0.0, 0.0)
        self.rows: list[dict[str, Any]] = []
        self.years: list[int] = []
        self.paid_total = 0.0
        self.unpaid_total = 0.0
        self.today = first_day

    # -- the day's inputs -------------------------------------------------------------------
    def new_day(self, day: date) -> float:
        """Move to ``day``: close every calendar year that ended; the tax due (paid from cash by
        the simulation when ``pay_taxes``)."""
        self.today = day
        due = 0.0
        while self.year < day.year:
            due += self._close_year(paid=self.pay_taxes)
        window = self.base.wash_sale_days
        self.purchases = [p for p in self.purchases if (day - p.day).days <= window]
        self.loss_window = [s for s in self.loss_window if (day - s.day).days <= window]
        return due

    def settings(self) -> TaxSettings:
        """The account's tax settings on the current day (``as_of``, the window's trades)."""
        day, window = self.today, self.base.wash_sale_days
        recent_sales = [t for t in self.recent_loss_sales if 0 <= (day - t.date).days <= window]
        recent_sales += [
            RecentSale.trusted(symbol=self.symbols[s.asset], date=s.day, shares=s.shares, lot_id=None, loss=-s.gain)
            for s in self.loss_window
        ]
        recent_purchases = [t for t in self.prior_purchases if 0 <= (day - t.date).days <= window]
        recent_purchases += [
            RecentPurchase.trusted(symbol=self.symbols[p.asset], date=p.day, shares=p.shares, lot_id=None)
            for p in self.purchases
            if p.lot_id and p.lot_id not in self.lots[p.asset]  # a held lot's date already counts
        ]
        update: dict[str, Any] = {"as_of": day, "recent_sales": recent_sales, "recent_purchases": recent_purchases}
        short, long = self._year_nets()  # the year to date
        update.update(realized_short_ytd=short - self.carry[0], realized_long_ytd=long)
        update["loss_carryforward"] = self.carry[1]
        return self.base.model_copy(update=update)

    def holdings(self, shares: np.ndarray) -> tuple[Holding, ...]:
        """The holdings with their open lots (a record is rebuilt only when its asset traded)."""
        held = self._held
        for i, q in enumerate(shares.tolist()):
            h = held[i]
            if h is None or h.shares != q:
                base = self._base_holdings[i]
                held[i] = Holding.trusted(**{**base.__dict__, "shares": float(q), "lots": list(self.lots[i].values())})
        return cast(tuple[Holding, ...], tuple(held))

    # -- trades -----------------------------------------------------------------------------
    def trade(self, asset: int, qty: float, price: float, chosen: list[LotSale] | None, where: str) -> None:
        """Record ``qty`` signed shares of ``asset`` at ``price`` today (sales before buys)."""
        if qty > 0:
            self._buy(asset, qty, price)
        elif qty < 0:
            self._sell(asset, -qty, price, chosen, where)

    def _term_long(self, acquired: date) -> bool:
        return (self.today - acquired).days > self.base.long_term_days

    def _buy(self, asset: int, qty: float, price: float) -> None:
        symbol = self.symbols[asset]
        lot_id = f"{symbol}@{self.today.isoformat()}"
        k = 2
        while lot_id in self.lots[asset]:
            lot_id, k = f"{symbol}@{self.today.isoformat()}#{k}", k + 1
        group, window = self.groups[asset], self.base.wash_sale_days
        added, left = 0.0, qty
        for sale in self.loss_window:  # a purchase after a loss sale of its group: that loss washes
            if left <= 0:
                break
            if self.groups[sale.asset] != group or sale.unmatched <= 0 or (self.today - sale.day).days > window:
                continue
            matched = min(sale.unmatched, left)
            amount = round(matched / sale.shares * -sale.gain, 2)
            sale.unmatched -= matched
            left -= matched
            sale.disallowed = round(sale.disallowed + amount, 2)
            added += amount
            if sale.day.year < self.year:  # its year is closed: the correction lands in this one
                self.adjust[int(sale.long)] += amount
                self.late += amount
        self.lots[asset][lot_id] = TaxLot.trusted(
            shares=float(qty), cost_basis=float(price) + added / qty, acquired=self.today, lot_id=lot_id
        )
        self._held[asset] = None
        self.purchases.append(_Purchase(self.today, group, asset, lot_id, float(qty), used=qty - left))

    def _relief_order(self, asset: int, price: float) -> list[TaxLot]:
        lots = list(self.lots[asset].values())
        basis = np.array([lot.cost_basis for lot in lots], dtype=float)
        long = np.array([self._term_long(lot.acquired) for lot in lots], dtype=bool)
        rate = np.where(long, self.base.long_term_rate, self.base.short_term_rate)
        day = np.array([lot.acquired.toordinal() for lot in lots], dtype=np.int64)
        keys = relief_keys(self.base.lot_policy, np.arange(len(lots)), day, basis, price - basis, rate)
        return [lots[k] for k in np.lexsort(keys)]

    def _sell(self, asset: int, qty: float, price: float, chosen: list[LotSale] | None, where: str) -> None:
        symbol, held = self.symbols[asset], self.lots[asset]
        if chosen:
            named = sum(s.shares for s in chosen)
            if abs(named - qty) > 1e-9 * max(1.0, qty):
                raise PolicyError(f"{where}: sells {qty:g} {symbol} but its lots relieve {named:g} shares")
            plan = []
            for s in chosen:
                lot = held.get(s.lot_id)
                if lot is None or s.shares > lot.shares + 1e-9:
                    raise PolicyError(f"{where}: sells {s.shares:g} {symbol} from lot {s.lot_id}, which holds less")
                plan.append((lot, min(s.shares, lot.shares)))
        else:
            plan, left = [], qty
            for lot in self._relief_order(asset, price):
                if left <= 1e-12:
                    break
                take = min(lot.shares, left)
                plan.append((lot, take))
                left -= take
        sold = {str(lot.lot_id) for lot, _ in plan}  # shares sold together replace none of each other
        for lot, take in plan:
            self._relieve(asset, str(lot.lot_id), take, price, sold)

    def _relieve(self, asset: int, lot_id: str, take: float, price: float, sold: set[str]) -> None:
        held = self.lots[asset]
        self._held[asset] = None
        lot = held[lot_id]  # as it is now (an earlier lot of this sale may have washed into it)
        rest = lot.shares - take
        if rest <= 1e-9 * max(1.0, lot.shares):
            del held[lot_id]
        else:
            held[lot_id] = TaxLot.trusted(shares=rest, cost_basis=lot.cost_basis, acquired=lot.acquired, lot_id=lot_id)
        gain = round(take * (price - lot.cost_basis), 2)
        sale = _Sale(
            self.today, asset, lot_id, take, lot.cost_basis, lot.acquired, price, gain, self._term_long(lot.acquired)
        )
        self.sales.append(sale)
        if gain >= 0:
            return
        # A purchase of the group within the window before (not this lot's own): the loss washes.
        group, window = self.groups[asset], self.base.wash_sale_days
        left = take
        for p in self.purchases:
            if left <= 0:
                break
            if p.group != group or p.lot_id in sold or (self.today - p.day).days > window:
                continue
            replacement = self.lots[p.asset].get(p.lot_id)  # still held: its basis takes the loss
            free = 0.0 if replacement is None else min(p.shares - p.used, replacement.shares)
            if replacement is None or free <= 0:
                continue
            matched = min(free, left)
            amount = round(matched / take * -gain, 2)
            p.used += matched
            left -= matched
            sale.disallowed = round(sale.disallowed + amount, 2)
            self.lots[p.asset][p.lot_id] = replacement.model_copy(
                update={"cost_basis": replacement.cost_basis + amount / replacement.shares}
            )
            self._held[p.asset] = None
        sale.unmatched = left
        if left > 0:
            self.loss_window.append(sale)

    # -- years ------------------------------------------------------------------------------
    def _year_nets(self) -> tuple[float, float]:
        short = long = 0.0
        for s in self.sales[self.year_start :]:
            if s.long:
                long += s.taxable
            else:
                short += s.taxable
        return short + self.adjust[0], long + self.adjust[1]

    def _year_row(self, extra_short: float = 0.0, extra_long: float = 0.0) -> tuple[dict[str, Any], YearTax]:
        terms = {False: [0.0, 0.0], True: [0.0, 0.0]}  # gains, losses
        disallowed = self.late
        for s in self.sales[self.year_start :]:
            value = s.taxable
            terms[s.long][0 if value > 0 else 1] += abs(value)
            disallowed += s.disallowed
        short, long = self._year_nets()
        result = year_tax(
            short + extra_short,
            long + extra_long,
            short_rate=self.base.short_term_rate,
            long_rate=self.base.long_term_rate,
            ordinary_rate=self.base.ordinary,
            ordinary_loss_limit=self.base.ordinary_loss_limit,
            outside_gains=self.outside_gains,
            carry_short=self.carry[0],
            carry_long=self.carry[1],
        )
        row = {
            "short_term_gains": round(terms[False][0], 2),
            "short_term_losses": round(terms[False][1], 2),
            "long_term_gains": round(terms[True][0], 2),
            "long_term_losses": round(terms[True][1], 2),
            "losses_harvested": round(terms[False][1] + terms[True][1], 2),
            "wash_sale_disallowed": round(disallowed, 2),
            "carry_in": round(self.carry[0] + self.carry[1], 2),
            "tax": result.tax,
            "carryforward": round(result.carryforward, 2),
            "paid": 0.0,
            "paid_on": pd.NaT,
        }
        return row, result

    def _close_year(self, *, paid: bool) -> float:
        row, result = self._year_row()
        row["paid"] = result.tax if paid else 0.0
        row["paid_on"] = pd.Timestamp(self.today) if paid else pd.NaT
        if paid:
            self.paid_total += result.tax
        else:
            self.unpaid_total += result.tax
        self.rows.append(row)
        self.years.append(self.year)
        self.carry = (result.carry_short, result.carry_long)
        self.year += 1
        self.year_start = len(self.sales)
        self.adjust = [0.0, 0.0]
        self.late = 0.0
        return result.tax

    # -- the result -------------------------------------------------------------------------
    def finish(self, prices: np.ndarray, final_value: float) -> dict[str, Any]:
        """The taxes table (the last year open: owed, not paid), the lot sales, the open lots and
        the after-tax values (the result derives their returns as it does the pre-tax ones)."""
        row, owed = self._year_row()
        unreal = [0.0, 0.0]
        for i, lots in enumerate(self.lots):
            for lot in lots.values():
                unreal[int(self._term_long(lot.acquired))] += lot.shares * (prices[i] - lot.cost_basis)
        _, liquidation = self._year_row(round(unreal[0], 2), round(unreal[1], 2))
        taxes = pd.DataFrame(
            [*self.rows, row], index=pd.Index([*self.years, self.year], name="year"), columns=TAX_COLUMNS
        )
        sales = pd.DataFrame(
            [
                (
                    pd.Timestamp(s.day),
                    self.symbols[s.asset],
                    s.lot_id,
                    s.shares,
                    s.basis,
                    pd.Timestamp(s.acquired),
                    s.price,
                    s.gain,
                    "long" if s.long else "short",
                    s.disallowed,
                )
                for s in self.sales
            ],
            columns=LOT_SALE_COLUMNS,
        )
        open_lots = pd.DataFrame(
            [
                (self.symbols[i], lot.lot_id, lot.shares, lot.cost_basis, pd.Timestamp(lot.acquired))
                for i, held in enumerate(self.lots)
                for lot in held.values()
            ],
            columns=["symbol", "lot_id", "shares", "cost_basis", "acquired"],
        )
        metrics = {
            "taxes_paid": round(self.paid_total, 2),
            "taxes_owed": round(self.unpaid_total + owed.tax, 2),
            "losses_harvested": float(taxes["losses_harvested"].sum()),
            "wash_sales": int((sales["wash_sale_disallowed"] > 0).sum()),
            "after_tax_value": final_value - self.unpaid_total - owed.tax,
            "liquidation_value": final_value - self.unpaid_total - liquidation.tax,
        }
        return {"taxes": taxes, "lot_sales": sales, "lots": open_lots, "metrics": metrics}
