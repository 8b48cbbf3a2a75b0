"""A taxable account's lots as arrays (:class:`LotBook`): which lots a sale relieves, and what it
realises.

One place says what selling ``q`` shares of an asset realises: :meth:`LotBook.relief` takes the
asset's lots in its relief order (the cheapest in tax first for the ``"optimal"`` policy, oldest
first for FIFO, highest cost first for HIFO) and sells from each in turn. The model's tax form
(the continuous solve's lot variables, ``_model.TaxForm``) is made from the same arrays; the
whole-share step, the result's lot list and its tax summary all call :meth:`relief`.

Wash sales as implemented: an asset whose wash-sale group (itself, or the ``identical`` group it
belongs to) was sold at a loss within the window is not bought; one whose group was bought within
the window (a ``recent_purchases`` entry, or a held lot acquired within the window) has its loss
lots withheld from sale (unless ``allow_wash_sale_losses``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from operator import attrgetter

import numpy as np

from finwiz.optimizer.describe._model import TaxForm
from finwiz.optimizer.tax._netting import Region, regions, settings_tax
from finwiz.schemas import LotSale, PortfolioConfiguration, TaxLot, TaxSettings, TaxSummary

__all__ = ["LotBook", "lot_book", "relief_keys", "relief_order"]

_requests = itertools.count()


@dataclass(frozen=True, eq=False)
class LotBook:
    """Every asset's sellable lots, one row per asset padded to the most lots any asset has, in
    relief order (padding holds zero shares). Gains are per share, in currency."""

    shares: np.ndarray  # (n, k)
    gain: np.ndarray  # (n, k): price - cost basis
    rate: np.ndarray  # (n, k): the lot's tax rate, by its term
    long: np.ndarray  # (n, k) bool
    slots: np.ndarray  # (n, k) each lot's place in ``lots``, ``lot_ids`` and ``dates`` (-1: padding)
    day: np.ndarray  # (n, k) each lot's acquisition date as an ordinal (0: padding)
    lots: tuple[TaxLot, ...]  # every lot, in the account's order
    dates: tuple[date, ...]  # every lot's acquisition date, in the account's order
    basis: np.ndarray  # (n, k)
    withheld: np.ndarray  # (n,) shares of loss lots the wash-sale rule keeps from sale
    no_buy: np.ndarray  # (n,) bool: the wash-sale rule forbids buying
    blocks: dict[str, str]  # symbol -> why the wash-sale rule restricted it
    groups: np.ndarray  # (n,) each asset's wash-sale group (``TaxSettings.group``), built once
    settings: TaxSettings
    region: Region | None = None  # netting: the region whose rates ``rate`` holds (None: linear)
    request: int = field(default_factory=lambda: next(_requests))  # the books of one request share it

    @cached_property
    def lot_ids(self) -> tuple[str, ...]:
        """Every lot's id, in the account's order (read only where lots are sold)."""
        return tuple(map(str, map(attrgetter("lot_id"), self.lots)))

    def same_order(self, other: LotBook) -> bool:
        """Whether ``other`` holds the same lots in the same relief order."""
        return self.slots is other.slots or bool(np.array_equal(self.slots, other.slots))

    @property
    def netting(self) -> bool:
        """Whether the tax is the netting rule's (``tax_model="netting"``)."""
        return self.settings.tax_model == "netting"

    def year_start(self) -> tuple[float, float]:
        """The year's nets before this rebalance, ``(s, g)`` of :func:`~._netting.regions`."""
        s = self.settings
        return s.realized_short_ytd, s.realized_long_ytd - s.loss_carryforward

    def nets(self, sold: np.ndarray) -> tuple[float, float]:
        """This rebalance's net short- and long-term gains (currency, to the cent lot by lot)."""
        taken, _, _ = self.relief(sold)
        realised = np.round(taken * self.gain, 2)
        return float(realised[~self.long].sum()), float(realised[self.long].sum())

    def tax_offset(self) -> float:
        """What the exact tax adds to the tax at ``rate`` (currency): a netting region's linear
        tax at the year's start less the year's tax then (0 under the linear model)."""
        if self.region is None:
            return 0.0
        return self.region.tax(*self.year_start()) - settings_tax(self.settings)

    def exact_tax(self, sold: np.ndarray) -> float:
        """The tax selling ``sold`` adds (currency): the year's tax with it minus without under
        netting, each lot's gain at its rate under the linear model."""
        if not self.netting:
            return float(self.relief(sold)[1].sum())
        short, long = self.nets(sold)
        return settings_tax(self.settings, short, long) - settings_tax(self.settings)

    def regions(self) -> list[LotBook]:
        """Netting: one book per region of the rule the year's nets can reach (each lot at its
        region's rate of its term, the region's rows kept), in that region's relief order."""
        s = self.settings
        s0, g0 = self.year_start()
        gains = self.shares * self.gain
        s_lo, s_hi = (s0 + float(gains[~self.long & side].sum()) for side in (gains < 0, gains > 0))
        g_lo, g_hi = (g0 + float(gains[self.long & side].sum()) for side in (gains < 0, gains > 0))
        corners = [(a, b) for a in (s_lo, s_hi) for b in (g_lo, g_hi)]
        out = []
        for region in regions(s.short_term_rate, s.long_term_rate, s.ordinary, s.ordinary_loss_limit):
            if any(min(a * x + b * y for x, y in corners) > bound + 1e-9 for a, b, bound in region.rows):
                continue  # the lots cannot reach it
            rate = np.where(self.long, region.long, region.short)
            book = dataclasses.replace(self, rate=rate, region=region)
            out.append(book._sorted(rate * self.gain) if s.lot_policy == "optimal" else book)
        return out

    @property
    def tax_weight(self) -> float:
        """The price of one unit of tax (a fraction of ``V_ref``) in the objective: the setting's,
        by default ``1 / (2 n)`` (see :class:`~finwiz.schemas.TaxSettings`)."""
        given = self.settings.tax_weight
        return 0.5 / len(self.shares) if given is None else given

    @property
    def budget(self) -> float | None:
        """``max_realized_gain`` in currency (None: no budget)."""
        return self.settings.max_realized_gain

    def relief(self, sold: np.ndarray, owner: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(taken, tax, gain)`` of selling ``sold[j] >= 0`` shares of asset ``owner[j]`` (default:
        asset ``j``): the shares taken from each lot (rows like ``sold``, columns in relief order),
        and the tax and gain realised, in currency. Shares beyond the lots are taken from none."""
        sold = np.asarray(sold, dtype=float)
        rows, part, tax, gain = self._relieved(sold, owner)
        taken = np.zeros((len(sold), self.shares.shape[1]))
        taken[rows] = part
        return taken, tax, gain

    def realised(self, sold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(tax, gain)`` of :meth:`relief` (asset ``j`` selling ``sold[j]``), the same numbers:
        only the assets whose sale changed since this book's last call are relieved again (the
        whole-share search prices one book's trades over and over, a few assets apart). Read-only."""
        sold = np.array(sold, dtype=float)
        last = self._last[0]
        if last is None or len(last[0]) != len(sold):
            _, _, tax, gain = self._relieved(sold, None)
        else:
            changed = np.flatnonzero(sold != last[0])
            tax, gain = last[1], last[2]  # nothing changed: the last (read-only) arrays themselves
            if len(changed):
                tax, gain = tax.copy(), gain.copy()
                tax[changed] = gain[changed] = 0.0  # a buy relieves nothing
                rows = changed[sold[changed] > 0]
                _, tax[rows], gain[rows] = self._taken(sold[rows], rows)
        for a in (sold, tax, gain):
            a.flags.writeable = False
        self._last[0] = (sold, tax, gain)  # one tuple swapped in: a thread reads the old or the new
        return tax, gain

    def tax_and_gain(self, sold: np.ndarray, owner: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(tax, gain)`` of :meth:`relief`, without the lots taken (no ``(rows, lots)`` array)."""
        _, _, tax, gain = self._relieved(np.asarray(sold, dtype=float), owner)
        return tax, gain

    @cached_property
    def _last(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        return [None]

    def _relieved(
        self, sold: np.ndarray, owner: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The selling rows, the shares they take from each lot, and every row's tax and gain."""
        rows = np.flatnonzero(sold > 0)  # most candidate trades buy: their rows take nothing
        tax, gain = np.zeros(len(sold)), np.zeros(len(sold))
        part, tax[rows], gain[rows] = self._taken(sold[rows], rows if owner is None else owner[rows])
        return rows, part, tax, gain

    def _taken(self, sold: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shares selling ``sold[j] > 0`` of asset ``at[j]`` takes from each lot, its tax and gain."""
        part = np.minimum(np.maximum(sold[:, None] - self._starts[at], 0.0), self.shares[at])
        realised = part * self.gain[at]
        return part, (realised * self.rate[at]).sum(axis=1), realised.sum(axis=1)

    @cached_property
    def _starts(self) -> np.ndarray:
        """The shares of each asset's lots before each lot (the sale at which the lot begins)."""
        starts: np.ndarray = np.cumsum(self.shares, axis=1) - self.shares
        return starts

    def priced(self, gain_price: float, net_prices: np.ndarray | None = None) -> LotBook:
        """The same lots in the order that is cheapest when a unit of realised gain costs
        ``gain_price`` besides its tax (a binding gain budget's multiplier, objective units per
        ``V_ref``), and a unit of the short- and long-term nets ``net_prices`` (a netting region's
        rows): by ``(tax_weight x rate + gain_price + its term's net price) x gain`` per share. The
        ``"optimal"`` policy only (FIFO and HIFO keep their order); the continuous solve's lots are
        relieved in this order at its optimum."""
        on_nets = net_prices is not None and bool(np.any(net_prices != 0))
        if self.settings.lot_policy != "optimal" or (gain_price <= 0 and not on_nets):
            return self
        price = self.tax_weight * self.rate + gain_price
        if on_nets:
            assert net_prices is not None
            price = price + np.where(self.long, net_prices[1], net_prices[0])
        return self._sorted(price * self.gain)

    def in_tax_order(self) -> LotBook:
        """The same lots in the ``"optimal"`` policy's order (tax per share, cheapest first),
        whatever the policy: what FIFO or HIFO is compared against when it keeps a gain budget out
        of reach."""
        policy = self.settings.model_copy(update={"lot_policy": "optimal"})
        return dataclasses.replace(self._sorted(self.rate * self.gain), settings=policy)

    def _sorted(self, per_share: np.ndarray) -> LotBook:
        """The lots of each asset sorted by ``per_share`` (then gain per share, then age)."""
        padding = self.shares <= 0
        key = np.where(padding, np.inf, per_share)
        order = np.lexsort((self.day, np.where(padding, np.inf, self.gain), key), axis=-1)

        def take(a: np.ndarray) -> np.ndarray:
            return np.take_along_axis(a, order, axis=1)

        return dataclasses.replace(
            self,
            shares=take(self.shares),
            gain=take(self.gain),
            rate=take(self.rate),
            long=take(self.long),
            basis=take(self.basis),
            slots=take(self.slots),
            day=take(self.day),
        )

    def form(self, prices: np.ndarray, ref_value: float) -> TaxForm:
        """The lots as the model's tax form (``V_ref`` units), padding left out."""
        has = self.shares > 0
        owner = np.nonzero(has)[0]
        price = prices[owner]
        gain = self.gain[has] / price
        rows = None
        if self.region is not None:  # a netting region: its rows on this rebalance's two nets
            s0, g0 = self.year_start()
            rows = np.array([[a, b, (bound - a * s0 - b * g0) / ref_value] for a, b, bound in self.region.rows])
        form = TaxForm(
            owner=owner,
            cap=self.shares[has] * price / ref_value,
            tax=gain * self.rate[has],
            gain=gain,
            long=None if rows is None else self.long[has],
            rows=rows,
        )
        form.views["request"] = self.request  # its solves share one workspace (``_qp.Ladder.serial``)
        return form

    def sales(self, sold: np.ndarray) -> list[list[LotSale]]:
        """Per asset, the lots selling ``sold[i] >= 0`` shares relieves (the assets that sell only)."""
        out: list[list[LotSale]] = [[] for _ in sold]
        selling = np.flatnonzero(sold > 0)
        taken, _, _ = self.relief(sold[selling], selling)
        # Every lot sold at once (row-major: each asset's in relief order), one Python pass.
        row, k = np.nonzero(taken > 0)
        asset = selling[row]
        shares = taken[row, k]
        slots, long = self.slots[asset, k].tolist(), self.long[asset, k].tolist()
        gains, basis = (shares * self.gain[asset, k]).tolist(), self.basis[asset, k].tolist()
        every, dates = self.lots, self.dates
        columns = zip(slots, shares.tolist(), basis, gains, long, strict=True)
        sold_lots = LotSale._from_states(  # one loop of trusted values, no call per lot
            {
                "lot_id": str(every[slot].lot_id),
                "shares": q,
                "cost_basis": cost,
                "acquired": dates[slot],
                "realized_gain": round(gain, 2),
                "term": "long" if is_long else "short",
            }
            for slot, q, cost, gain, is_long in columns
        )
        for i, sale in zip(asset.tolist(), sold_lots, strict=True):
            out[i].append(sale)
        return out

    def summary(self, sold: np.ndarray) -> TaxSummary:
        """What selling ``sold`` (shares per asset, >= 0) realises."""
        taken, _, _ = self.relief(sold)
        realised = np.round(taken * self.gain, 2)  # to the cent, lot by lot
        long = self.long
        st_gain, lt_gain = (float(realised[term & (realised > 0)].sum()) for term in (~long, long))
        st_loss, lt_loss = (0.0 - float(realised[term & (realised < 0)].sum()) + 0.0 for term in (~long, long))
        net = st_gain - st_loss + lt_gain - lt_loss
        s = self.settings
        tax = s.short_term_rate * (st_gain - st_loss) + s.long_term_rate * (lt_gain - lt_loss)
        year = None
        if self.netting:
            year = settings_tax(s, st_gain - st_loss, lt_gain - lt_loss)
            tax = year - settings_tax(s)
        budget = s.max_realized_gain
        return TaxSummary(
            short_term_gains=round(st_gain, 2),
            short_term_losses=round(st_loss, 2),
            long_term_gains=round(lt_gain, 2),
            long_term_losses=round(lt_loss, 2),
            net_realized_gain=round(net, 2),
            estimated_tax=round(tax, 2),
            harvested_losses=round(st_loss + lt_loss, 2),
            budget=budget,
            budget_used=None if budget is None or budget <= 0 else net / budget,
            tax_weight=self.tax_weight,
            lot_policy=s.lot_policy,
            tax_model=s.tax_model,
            year_tax=year,
            wash_sale_blocks=dict(self.blocks),
        )


def lot_book(config: PortfolioConfiguration, prices: np.ndarray) -> LotBook | None:
    """The lots of ``config``'s holdings (None without tax settings), in relief order."""
    settings = config.tax
    if settings is None:
        return None
    symbols = config.symbols
    n = len(symbols)
    where = {s: i for i, s in enumerate(symbols)}
    # Flat arrays, no tuple per lot; one attribute per pass through C (``map``), no generator.
    every = [lot for h in config.holdings for lot in h.lots]
    owner = np.repeat([where[h.symbol] for h in config.holdings], [len(h.lots) for h in config.holdings])
    owner = owner.astype(np.int64)
    held = np.fromiter(map(attrgetter("shares"), every), float, len(every))
    basis = np.fromiter(map(attrgetter("cost_basis"), every), float, len(every))
    dates = tuple(map(attrgetter("acquired"), every))
    day = np.fromiter(map(date.toordinal, dates), np.int64, len(every))
    per_share = prices[owner] - basis if len(every) else np.zeros(0)
    age = settings.as_of.toordinal() - day
    long = age > settings.long_term_days
    rate = np.where(long, settings.long_term_rate, settings.short_term_rate)
    groups = [settings.group(s) for s in symbols]
    no_buy, withheld, blocks, keep = _wash_rules(settings, symbols, groups, owner, held, age, per_share)
    # Relief order within each asset (see the module docstring), the asset first.
    order = relief_order(relief_keys(settings.lot_policy, np.arange(len(every)), day, basis, per_share, rate), owner, n)
    padded, slots = _padding(owner, order[keep[order]], n)
    return LotBook(
        shares=padded(held),
        gain=padded(per_share),
        rate=padded(rate),
        long=padded(long, bool),
        slots=slots,
        day=padded(day, np.int64),
        lots=tuple(every),
        dates=dates,
        basis=padded(basis),
        withheld=withheld,
        no_buy=no_buy,
        blocks=blocks,
        settings=settings,
        groups=np.array(groups),
    )


def _wash_rules(
    settings: TaxSettings,
    symbols: list[str],
    groups: list[str],
    owner: np.ndarray,
    held: np.ndarray,
    age: np.ndarray,
    per_share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, str], np.ndarray]:
    """The wash-sale window's effect on the lots (``groups``: each symbol's wash-sale group): each
    asset not to be bought, each asset's shares withheld (loss lots not sold), why (per symbol),
    and which lots stay sellable."""
    n = len(symbols)
    recent = settings.in_window
    sold_at_loss = {settings.group(t.symbol) for t in settings.recent_sales if t.loss > 0 and recent(t.date)}
    bought = {settings.group(t.symbol) for t in settings.recent_purchases if recent(t.date)}
    # A lot the holding dates within the window is a purchase too, listed or not.
    bought |= {groups[i] for i in np.unique(owner[age <= settings.wash_sale_days]).tolist()}
    no_buy = np.array([g in sold_at_loss for g in groups], bool)
    withholds = np.array([g in bought and not settings.allow_wash_sale_losses for g in groups], bool)
    keep = ~(withholds[owner] & (per_share < 0)) if len(owner) else np.ones(0, bool)
    withheld = np.bincount(owner[~keep], weights=held[~keep], minlength=n)
    blocks: dict[str, str] = {}
    window = settings.wash_sale_days
    for i in np.flatnonzero(no_buy):
        blocks[symbols[i]] = f"not bought: {groups[i]} was sold at a loss within {window} days"
    for i in np.flatnonzero(withheld > 0):
        blocks[symbols[i]] = f"loss lots not sold: {groups[i]} was bought within {window} days"
    return no_buy, withheld, blocks, keep


def _padding(owner: np.ndarray, order: np.ndarray, n: int) -> tuple[Callable[..., np.ndarray], np.ndarray]:
    """How per-lot values become ``(n, width)`` arrays, each asset's lots in ``order`` (a row of
    zeros past its last), and the lots' indices so placed (-1: none)."""
    count = np.bincount(owner[order], minlength=n)
    width = max(int(count.max(initial=0)), 1)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    slot = np.arange(len(order)) - first[owner[order]]
    row = owner[order]

    def padded(values: np.ndarray, dtype: type = float) -> np.ndarray:
        out: np.ndarray = np.zeros((n, width), dtype=dtype)
        out[row, slot] = values[order]
        return out

    slots = np.full((n, width), -1, dtype=np.int64)
    slots[row, slot] = order
    return padded, slots


def relief_keys(
    policy: str, index: np.ndarray, day: np.ndarray, basis: np.ndarray, gain: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, ...]:
    """``np.lexsort`` keys (the last the first) of the order in which a sale relieves one asset's
    lots: ``fifo`` the oldest first (``index``: the account's order breaks ties), ``hifo`` the
    highest cost first, ``optimal`` the least tax per share (``gain * rate``), then the least
    gain, then the oldest -- each asset's tax convex in its sells. The backtest's ledger uses it too."""
    if policy == "fifo":
        return (index, day)
    if policy == "hifo":
        return (day, -basis)
    return (day, gain, gain * rate)


def relief_order(keys: tuple[np.ndarray, ...], owner: np.ndarray, n: int) -> np.ndarray:
    """``np.lexsort((*keys, owner))``: every lot by its asset (``owner``, of ``n``), then ``keys``.
    Where each asset's lots are consecutive (one holding each), sorted as rows of an ``(n, width)``
    grid instead (short rows: a fraction of the flat sort's time), padding last in each row."""
    run = np.flatnonzero(np.diff(owner)) + 1 if len(owner) else np.zeros(0, np.int64)
    if len(owner) == 0 or len(run) + 1 != np.count_nonzero(np.bincount(owner, minlength=n)):
        return np.lexsort((*keys, owner))
    starts = np.concatenate([[0], run])
    col = np.arange(len(owner)) - np.repeat(starts, np.diff(np.append(starts, len(owner))))
    shape = (n, int(col.max()) + 1)
    pad = np.ones(shape, bool)
    pad[owner, col] = False

    def grid(values: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, values.dtype)
        out[owner, col] = values
        return out

    lot = np.full(shape, -1, np.int64)
    lot[owner, col] = np.arange(len(owner))
    placed = np.take_along_axis(lot, np.lexsort((*map(grid, keys), pad), axis=-1), axis=-1)
    order: np.ndarray = placed[placed >= 0]  # row-major: by asset, each asset's lots in order
    return order
