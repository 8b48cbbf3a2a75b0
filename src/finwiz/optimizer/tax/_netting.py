"""The year's capital-gains tax as a US return computes it: :func:`year_tax`.

The rule (Schedule D, simplified to two rates and one ordinary rate):

1. Short-term gains net against short-term losses, long-term against long-term; a loss carried in
   from earlier years keeps its term (a short-term carry-over is a short-term loss this year).
2. The two nets then offset each other: a net gain left in one term after absorbing the other
   term's net loss is taxed at that term's rate (both nets gains: each at its own rate).
3. A net loss overall offsets ordinary income up to ``ordinary_loss_limit`` (3,000 a year), worth
   ``ordinary_rate`` per dollar (a negative tax: a saving); the rest carries forward, short-term
   loss first used by the deduction, each part keeping its term.

Pure; the backtest calls it once per calendar year (``outside_gains=True``: the linear valuation,
every net loss worth its term's rate, for an investor with gains elsewhere), the optimizer's
``TaxSummary`` and compliance once per rebalance (the year's tax with the trades minus without).

The rule is linear on each of five regions of the year's two nets (:func:`regions`): the
optimizer's tax term states one region at a time (its rates per term, its rows on the two nets)
and keeps the best answer. It is not convex: a long-term loss offsets a short-term gain at the
short-term rate but a long-term gain adds at the long-term rate (a concave kink at a zero long-term
net), so no single max of affine pieces equals it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finwiz.schemas import TaxSettings

__all__ = ["Region", "YearTax", "regions", "settings_tax", "year_tax"]


@dataclass(frozen=True)
class YearTax:
    """One year's tax (currency, negative: a saving) and the losses it carries forward (>= 0)."""

    tax: float
    carry_short: float
    carry_long: float

    @property
    def carryforward(self) -> float:
        """The loss carried into the next year, both terms."""
        return self.carry_short + self.carry_long


def year_tax(
    net_short: float,
    net_long: float,
    *,
    short_rate: float,
    long_rate: float,
    ordinary_rate: float,
    ordinary_loss_limit: float = 3000.0,
    carry_short: float = 0.0,
    carry_long: float = 0.0,
    outside_gains: bool = False,
) -> YearTax:
    """The tax on a year whose realised short- and long-term gains net to ``net_short`` and
    ``net_long`` (each gains minus losses of that term), with losses ``carry_short`` and
    ``carry_long`` (>= 0) carried in from earlier years. Amounts are taken to the cent and the
    arithmetic is decimal: the tax is rounded half up to the cent, exactly.

    ``outside_gains=True`` assumes gains elsewhere absorb any loss: each term's net is taxed at its
    own rate even when negative (a saving), nothing is carried (the linear valuation of the
    optimizer's tax term and of Chaudhuri, Burnham and Lo)."""
    s = _cents(net_short) - _cents(carry_short)
    g = _cents(net_long) - _cents(carry_long)
    rs, rl, ro = _rate(short_rate), _rate(long_rate), _rate(ordinary_rate)
    if outside_gains or (s >= 0 and g >= 0):  # each term's net at its own rate
        return YearTax(_round(rs * s + rl * g), 0.0, 0.0)
    total = s + g
    if total >= 0:  # one term's loss absorbed by the other term's gain: the gain left keeps its rate
        return YearTax(_round((rs if s > 0 else rl) * total), 0.0, 0.0)
    deduction = min(max(_cents(ordinary_loss_limit), _ZERO), -total)
    short_loss = max(_ZERO, -s - max(g, _ZERO))  # the short-term loss left after any long-term gain
    long_loss = max(_ZERO, -g - max(s, _ZERO))
    used_on_short = min(deduction, short_loss)
    return YearTax(
        _round(-ro * deduction),
        float(short_loss - used_on_short),
        float(long_loss - (deduction - used_on_short)),
    )


_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def _cents(amount: float) -> Decimal:
    return Decimal(repr(round(float(amount), 2)))


def _rate(rate: float) -> Decimal:
    return Decimal(repr(float(rate)))


def _round(amount: Decimal) -> float:
    return float(amount.quantize(_CENT, rounding=ROUND_HALF_UP)) + 0.0  # no -0.0


@dataclass(frozen=True)
class Region:
    """Where :func:`year_tax` is linear in the year's nets ``s`` (short-term, the short carry-over
    in it) and ``g`` (long-term less the carry-forward): ``tax = short x s + long x g + constant``
    on ``rows``, each ``(a, b, bound)`` meaning ``a s + b g <= bound``."""

    name: str
    short: float
    long: float
    constant: float
    rows: tuple[tuple[float, float, float], ...]

    def tax(self, s: float, g: float) -> float:
        """The region's linear tax at ``(s, g)`` (exact inside the region)."""
        return self.short * s + self.long * g + self.constant

    def holds(self, s: float, g: float, slack: float = 0.0) -> bool:
        """Whether ``(s, g)`` is in the region (within ``slack``)."""
        return all(a * s + b * g <= bound + slack for a, b, bound in self.rows)


def regions(short_rate: float, long_rate: float, ordinary_rate: float, ordinary_loss_limit: float) -> list[Region]:
    """The regions of :func:`year_tax` (no carry-over left to apply: ``s`` and ``g`` include it):
    both nets gains; a long-term loss absorbed by a short-term gain (short rate); a short-term
    loss absorbed by a long-term gain (long rate); a net loss within the ordinary deduction
    (ordinary rate); a net loss past it (a flat saving)."""
    rs, rl, ro, cap = short_rate, long_rate, ordinary_rate, max(ordinary_loss_limit, 0.0)
    out = [
        Region("both_gains", rs, rl, 0.0, ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))),
        Region("long_loss_offsets_short_gain", rs, rs, 0.0, ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (-1.0, -1.0, 0.0))),
        Region("short_loss_offsets_long_gain", rl, rl, 0.0, ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (-1.0, -1.0, 0.0))),
    ]
    if cap > 0:
        out.append(Region("loss_against_ordinary_income", ro, ro, 0.0, ((1.0, 1.0, 0.0), (-1.0, -1.0, cap))))
    out.append(Region("loss_past_the_deduction", 0.0, 0.0, -ro * cap, ((1.0, 1.0, -cap),)))
    return out


def settings_tax(settings: TaxSettings, short: float = 0.0, long: float = 0.0) -> float:
    """The year's tax under ``settings`` (its year to date and carry-forward) with ``short`` and
    ``long`` more net gains of each term realised, by :func:`year_tax`."""
    return year_tax(
        settings.realized_short_ytd + short,
        settings.realized_long_ytd + long,
        short_rate=settings.short_term_rate,
        long_rate=settings.long_term_rate,
        ordinary_rate=settings.ordinary,
        ordinary_loss_limit=settings.ordinary_loss_limit,
        carry_long=settings.loss_carryforward,
    ).tax
