"""The risk figures a result carries (computed by :mod:`finwiz.risk`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame as _Frame
else:
    _Frame = Any  # a pandas DataFrame; pydantic needs no pandas to hold one

__all__ = ["RiskMetrics", "RiskModelKind"]

RiskModelKind = Literal["covariance", "factor_model", "returns"]


class RiskMetrics(BaseModel):
    """Risk of one weight vector under one risk model (see :mod:`finwiz.risk` for the math).

    ``var`` and ``cvar`` map each confidence level to a one-period loss as a positive fraction of
    value; ``var_method`` says whether they come from the returns history (``"historical"``) or a
    zero-mean normal with the model's variance (``"parametric"``). ``risk_contributions`` (per
    asset) and ``sector_risk_contributions`` sum to ``volatility``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    volatility: float = Field(description="annualised: sqrt(P w' Sigma w)")
    tracking_error: float | None = Field(default=None, description="annualised, against the target; None without one")
    var: dict[float, float] = Field(description="confidence -> one-period value at risk (fraction of value)")
    cvar: dict[float, float] = Field(description="confidence -> one-period expected shortfall (fraction of value)")
    var_method: Literal["historical", "parametric"]
    risk_contributions: dict[str, float] = Field(description="P w_i (Sigma w)_i / volatility; sums to volatility")
    sector_risk_contributions: dict[str, float] = Field(default_factory=dict)
    correlation: _Frame | None = Field(default=None, description="asset correlation matrix, when asked")
    risk_model: RiskModelKind
    periods_per_year: float
    observations: int | None = Field(default=None, description="returns used for historical VaR/CVaR")

    def __eq__(self, other: object) -> bool:
        # The default compares field dicts, and a DataFrame refuses to be a truth value.
        if not isinstance(other, RiskMetrics):
            return NotImplemented
        mine, theirs = dict(self.__dict__), dict(other.__dict__)
        a, b = mine.pop("correlation"), theirs.pop("correlation")
        same_frames = (a is None and b is None) or (a is not None and b is not None and a.equals(b))
        return same_frames and mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def top_contributors(self, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` assets with the largest risk contributions, largest first."""
        ranked = sorted(self.risk_contributions.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:n]
