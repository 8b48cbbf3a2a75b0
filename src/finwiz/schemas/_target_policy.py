"""The target and the limits one account and a household share: ``_TargetPolicy``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from finwiz.schemas._base import (
    DEFAULT_MIN_TRADE_SIZE,
    DEFAULT_TOLERANCE,
    DEFAULT_TRANSACTION_COST_RATE,
    RebalancingMethod,
    _canonical_mapping,
    _canonical_set,
    _finite,
    _Model,
    _number_values,
    _optional_number,
    is_unclassified,
)

__all__ = ["_TargetPolicy"]

_PER_SYMBOL_NUMBERS = (
    "target_weights",
    "transaction_cost_rates",
    "lot_sizes",
    "max_position_weights",
    "min_position_weights",
    "esg_scores",
)  # symbol -> number maps: numbers checked, symbols canonical (sector_caps: keyed by sector)


class _TargetPolicy(_Model):
    """The fields a target and its limits share between :class:`PortfolioConfiguration` (one
    account) and :class:`~finwiz.schemas.Household` (its accounts together), with the validators
    that read only them: numbers are numbers, symbols canonical (see PortfolioConfiguration)."""

    target_weights: dict[str, float]
    method: RebalancingMethod | str = RebalancingMethod.MINIMIZE_TRADES
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0.0, le=1.0)
    relative_tolerance: float | None = Field(default=None, ge=0.0)
    transaction_cost_rate: float = Field(default=DEFAULT_TRANSACTION_COST_RATE, ge=0.0, lt=1.0)
    transaction_cost_rates: dict[str, float] = Field(default_factory=dict)
    min_trade_size: float = Field(default=DEFAULT_MIN_TRADE_SIZE, ge=0.0)
    allow_fractional_shares: bool = False
    lot_sizes: dict[str, float] = Field(default_factory=dict)
    min_cash_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    max_turnover: float | None = Field(default=None, ge=0.0)
    max_position_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    max_position_weights: dict[str, float] = Field(default_factory=dict)
    min_position_weights: dict[str, float] = Field(default_factory=dict)
    sectors: dict[str, str] = Field(default_factory=dict)
    max_sector_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    sector_caps: dict[str, float] = Field(default_factory=dict)
    esg_scores: dict[str, float] = Field(default_factory=dict)
    min_esg_score: float | None = None
    min_average_esg_score: float | None = None
    no_buy: list[str] = Field(default_factory=list)
    no_sell: list[str] = Field(default_factory=list)
    no_trade: list[str] = Field(default_factory=list)
    risk_aversion: float = Field(default=1.0, ge=0.0)
    trade_penalty: float | None = Field(default=None, ge=0.0)

    _scalar_numbers = field_validator(
        "tolerance",
        "relative_tolerance",
        "transaction_cost_rate",
        "min_trade_size",
        "min_cash_weight",
        "max_turnover",
        "max_position_weight",
        "max_sector_weight",
        "min_esg_score",
        "min_average_esg_score",
        "risk_aversion",
        "trade_penalty",
        mode="before",
    )(_optional_number)

    @field_validator(*_PER_SYMBOL_NUMBERS, "sector_caps", mode="before")
    @classmethod
    def _mapping_numbers(cls, value: Any, info: Any) -> Any:
        return _number_values(value, info.field_name)

    @field_validator(*_PER_SYMBOL_NUMBERS, mode="after")
    @classmethod
    def _canonical_numbers(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        return _canonical_mapping(value, info.field_name)

    @field_validator("sectors", mode="after")
    @classmethod
    def _canonical_sectors(cls, value: dict[str, str]) -> dict[str, str]:
        # An unclassified label ("Unclassified", "N/A", "") means no sector: the symbol is left out.
        out = _canonical_mapping(value, "sectors")
        return {s: str(v).strip() for s, v in out.items() if not is_unclassified(v)}

    @field_validator("no_buy", "no_sell", "no_trade", mode="after")
    @classmethod
    def _canonical_lists(cls, value: list[str], info: Any) -> list[str]:
        return _canonical_set(value, info.field_name)

    @field_validator("min_trade_size", "risk_aversion")
    @classmethod
    def _finite_scalars(cls, value: float, info: Any) -> float:
        return _finite(value, info.field_name)
