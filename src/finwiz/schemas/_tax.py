"""Tax lots and the tax settings of a taxable account (inputs), and what a rebalance realised
(outputs): :class:`TaxLot`, :class:`TaxSettings`, :class:`RecentSale`, :class:`RecentPurchase`,
:class:`LotSale` and :class:`TaxSummary`.

The rule as implemented (see the README's "Tax-aware rebalancing"): a lot held more than
``long_term_days`` days on ``as_of`` is long-term. ``tax_model="netting"`` (default): the year's
short- and long-term nets (this rebalance's lots plus the year to date and the carry-forward) are
netted as a US return does, a net loss offsetting at most ``ordinary_loss_limit`` of ordinary
income; ``"linear"``: each lot's realised gain is taxed at its term's rate and a loss is worth its
term's rate times the loss (an account with gains elsewhere in the year).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas._base import Symbol, _canonical_mapping, _finite, _Model, _number

__all__ = ["LotSale", "RecentPurchase", "RecentSale", "TaxLot", "TaxSettings", "TaxSummary"]

LotPolicy = Literal["optimal", "fifo", "hifo"]
TaxModel = Literal["netting", "linear"]


class TaxLot(_Model):
    """Shares bought together: ``shares`` at ``cost_basis`` per share on ``acquired``.

    ``lot_id`` names the lot in results and in recent purchases; left out, a holding numbers its
    lots ``SYMBOL#1``, ``SYMBOL#2``, ... in the order given."""

    shares: float = Field(gt=0.0)
    cost_basis: float = Field(ge=0.0)
    acquired: date
    lot_id: str | None = None

    @field_validator("shares", "cost_basis", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        number = _number(value, info.field_name)
        if isinstance(number, float) and math.isnan(number):  # pragma: no cover - _number refuses NaN
            raise InvalidPortfolioError(f"{info.field_name} is NaN", field=info.field_name)
        return number


class _RecentTrade(_Model):
    symbol: Symbol
    date: date
    shares: float = Field(gt=0.0)
    lot_id: str | None = None

    @field_validator("shares", mode="before")
    @classmethod
    def _shares(cls, value: Any) -> Any:
        return _number(value, "shares")


class RecentSale(_RecentTrade):
    """A sale within the wash-sale window before ``as_of``; ``loss`` (currency, >= 0) is the loss
    it realised (0: it was no loss sale, and blocks nothing). ``lot_id``, when given, must name a
    lot still held (a lot sold in part)."""

    loss: float = Field(default=0.0, ge=0.0)

    @field_validator("loss", mode="before")
    @classmethod
    def _loss(cls, value: Any) -> Any:
        return _number(value, "loss")


class RecentPurchase(_RecentTrade):
    """A purchase within the wash-sale window before ``as_of``; ``lot_id``, when given, must name
    the held lot it created."""


class TaxSettings(_Model):
    """How a taxable account is taxed, for :attr:`PortfolioConfiguration.tax`.

    - ``as_of``: the trade date; terms and the wash-sale window count from it.
    - ``short_term_rate`` / ``long_term_rate``: tax rates in [0, 1] on realised gains of lots held
      at most / more than ``long_term_days`` days.
    - ``max_realized_gain``: a budget on the net realised gain (currency, gains minus losses); a hard
      limit of the model (negative: the rebalance must harvest at least that much net loss).
    - ``tax_weight``: how the estimated tax trades off against the strategy's objective: it enters
      as ``tax_weight x tax / V_ref``, the units of a transaction cost (at 1 a dollar of tax weighs
      as much as a dollar of commission; 0 is tax-blind in the trades but still relieves the
      cheapest lots). The default (None) is ``1 / (2 n)`` for ``n`` assets: the squared tracking
      distance prices a position's deviation at about twice its size, and positions are ~1/n of
      the book, so a sale is then kept from its target only by a tax that is large against the
      deviation it leaves. At 1 on a large book the tax dwarfs the tracking term: the rebalance
      harvests losses and can end farther from its target than it started
      (``benchmarks/test_bench_tax.py`` prints the frontier).
    - ``lot_policy``: which lots a sale relieves: ``"optimal"`` (the model chooses, default),
      ``"fifo"`` (oldest first) or ``"hifo"`` (highest cost first) to compare against.
    - Wash sales (window ``wash_sale_days``): an asset sold at a loss in ``recent_sales`` is not
      bought; an asset bought in ``recent_purchases`` (or holding a lot acquired within the
      window: the lots' own dates count as purchases) is not sold at a loss unless
      ``allow_wash_sale_losses``; and no asset is both bought and sold in one rebalance.
      ``identical`` maps symbols to groups of substantially identical securities: a recent trade
      of one member counts for every member.
    - ``tax_model``: ``"netting"`` (default) prices the tax an accountant computes: the year's
      short-term net (``realized_short_ytd`` plus this rebalance's; a short-term carry-over is a
      negative ``realized_short_ytd``) and long-term net (``realized_long_ytd`` plus this
      rebalance's, less ``loss_carryforward``) offset each other, a net gain is taxed at the rate
      of the term it is left in, a net loss saves ``ordinary_rate`` (default: the short-term rate)
      on at most ``ordinary_loss_limit`` (3,000; 0: none). The tax of the rebalance is the year's
      tax with its trades minus without. ``"linear"``: each lot's gain at its term's rate, a loss
      worth its rate times the loss, without limit (the valuation before netting).
    - ``pay_tax_from_cash``: the estimated tax of the rebalance leaves the account's cash (a
      negative tax, a saving, comes back to it): the cash floor and every limit on post-trade
      weights see the value after it, and so do the result's cash and weights.
    """

    as_of: date
    short_term_rate: float = Field(ge=0.0, le=1.0)
    long_term_rate: float = Field(ge=0.0, le=1.0)
    long_term_days: int = Field(default=365, gt=0)
    wash_sale_days: int = Field(default=30, ge=0)
    max_realized_gain: float | None = None
    recent_sales: list[RecentSale] = Field(default_factory=list)
    recent_purchases: list[RecentPurchase] = Field(default_factory=list)
    allow_wash_sale_losses: bool = False
    identical: dict[str, str] = Field(default_factory=dict)
    tax_weight: float | None = Field(default=None, ge=0.0)
    lot_policy: LotPolicy = "optimal"
    tax_model: TaxModel = "netting"
    realized_short_ytd: float = 0.0
    realized_long_ytd: float = 0.0
    loss_carryforward: float = Field(default=0.0, ge=0.0)
    ordinary_loss_limit: float = Field(default=3000.0, ge=0.0)
    ordinary_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    pay_tax_from_cash: bool = False

    @field_validator(
        "realized_short_ytd", "realized_long_ytd", "loss_carryforward", "ordinary_loss_limit", mode="before"
    )
    @classmethod
    def _amounts(cls, value: Any, info: Any) -> Any:
        return _number(value, info.field_name)

    @field_validator("realized_short_ytd", "realized_long_ytd", "loss_carryforward", "ordinary_loss_limit")
    @classmethod
    def _finite_amounts(cls, value: float, info: Any) -> float:
        return _finite(value, info.field_name)

    @property
    def ordinary(self) -> float:
        """The rate a net loss saves against ordinary income (``ordinary_rate``, default the
        short-term rate)."""
        return self.short_term_rate if self.ordinary_rate is None else self.ordinary_rate

    @field_validator(
        "short_term_rate", "long_term_rate", "max_realized_gain", "tax_weight", "ordinary_rate", mode="before"
    )
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        return value if value is None else _number(value, info.field_name)

    @field_validator("max_realized_gain")
    @classmethod
    def _finite_budget(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "max_realized_gain")

    @field_validator("long_term_days", "wash_sale_days", mode="before")
    @classmethod
    def _days(cls, value: Any, info: Any) -> Any:
        # pydantic would take True as 1 day and "30" as 30 days.
        return _number(value, info.field_name)

    @field_validator("identical", mode="after")
    @classmethod
    def _canonical_groups(cls, value: dict[str, str]) -> dict[str, str]:
        return _canonical_mapping(value, "identical")

    @model_validator(mode="after")
    def _dates(self) -> Self:
        for kind in ("recent_sales", "recent_purchases"):
            for trade in getattr(self, kind):
                if trade.date > self.as_of:
                    raise InvalidPortfolioError(
                        f"tax.{kind}: {trade.symbol} on {trade.date} is after as_of {self.as_of}",
                        field=kind,
                        symbol=trade.symbol,
                    )
        return self

    def group(self, symbol: str) -> str:
        """The wash-sale group of ``symbol`` (itself unless ``identical`` names one)."""
        return self.identical.get(symbol, symbol)

    def in_window(self, day: date) -> bool:
        """Whether a trade on ``day`` is within the wash-sale window before ``as_of``."""
        return (self.as_of - day).days <= self.wash_sale_days

    def is_long_term(self, acquired: date) -> bool:
        """Whether a lot bought on ``acquired`` is long-term on ``as_of``."""
        return (self.as_of - acquired).days > self.long_term_days


class LotSale(_Model):
    """Shares sold from one lot: its realised gain (negative: a loss) and its term."""

    lot_id: str
    shares: float = Field(gt=0.0)
    cost_basis: float
    acquired: date
    realized_gain: float
    term: Literal["short", "long"]


class TaxSummary(_Model):
    """What a tax-aware rebalance realised (currency). Gains and losses are magnitudes (>= 0);
    ``estimated_tax`` is the tax these sales add to the year's (negative: tax saved by harvested
    losses): under ``tax_model="netting"`` the year's tax with them minus without (``year_tax``:
    with them), under ``"linear"`` ``short_term_rate x net short-term + long_term_rate x net
    long-term``; paid from the account's cash when ``pay_tax_from_cash``, else only reported."""

    short_term_gains: float = 0.0
    short_term_losses: float = 0.0
    long_term_gains: float = 0.0
    long_term_losses: float = 0.0
    net_realized_gain: float = 0.0
    estimated_tax: float = 0.0
    harvested_losses: float = Field(default=0.0, description="short- plus long-term losses realised")
    budget: float | None = Field(default=None, description="max_realized_gain, when set")
    budget_used: float | None = Field(
        default=None, description="net_realized_gain / budget, when a positive budget is set"
    )
    tax_weight: float = Field(default=1.0, description="the tax weight the rebalance used (the default resolved)")
    lot_policy: LotPolicy = "optimal"
    tax_model: TaxModel = "netting"
    year_tax: float | None = Field(default=None, description="the year's tax with these sales (netting only)")
    wash_sale_blocks: dict[str, str] = Field(
        default_factory=dict, description="symbol -> why the wash-sale rule restricted it"
    )
    paid_from_cash: bool = Field(
        default=False, description="whether the estimated tax left the account's cash (pay_tax_from_cash)"
    )
