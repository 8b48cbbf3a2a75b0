"""A position held today, with its tax lots: :class:`Holding`."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas._base import Symbol, _finite, _Model, _optional_number
from finwiz.schemas._tax import TaxLot

__all__ = ["Holding"]


class Holding(_Model):
    """A position: ``shares`` of ``symbol`` held today. Negative shares are a short position,
    accepted only in a :class:`PortfolioConfiguration` with ``allow_short=True``.

    ``lots`` are its tax lots (what a tax-aware rebalance sells from); their shares must add up to
    ``shares``. Lots without a ``lot_id`` are numbered ``SYMBOL#1``, ``SYMBOL#2``, ... in order."""

    symbol: Symbol
    shares: float
    cost_basis: float | None = Field(default=None, ge=0.0)
    sector: str | None = None
    esg_score: float | None = None
    lots: list[TaxLot] = Field(default_factory=list)

    _numbers = field_validator("shares", "cost_basis", "esg_score", mode="before")(_optional_number)

    @field_validator("shares", "cost_basis", "esg_score")
    @classmethod
    def _finite_numbers(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "shares")

    @model_validator(mode="after")
    def _lots(self) -> Self:
        if not self.lots:
            return self
        total = sum(lot.shares for lot in self.lots)
        if abs(total - self.shares) > 1e-9 * max(1.0, abs(self.shares)):
            raise InvalidPortfolioError(
                f"holdings: the lots of {self.symbol} hold {total:.10g} shares, not its {self.shares:.10g}",
                field="lots",
                symbol=self.symbol,
            )
        named = [
            lot if lot.lot_id is not None else lot.model_copy(update={"lot_id": f"{self.symbol}#{k + 1}"})
            for k, lot in enumerate(self.lots)
        ]
        ids = [lot.lot_id for lot in named]
        repeated = sorted({i for i in ids if ids.count(i) > 1 and i is not None})
        if repeated:
            raise InvalidPortfolioError(
                f"holdings: {self.symbol} has lot id {repeated[0]} twice", field="lots", symbol=self.symbol
            )
        self.lots = named
        return self
