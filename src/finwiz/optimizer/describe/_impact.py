"""Square-root-law market impact: the model a user gives (:class:`MarketImpactModel`) and the
coefficients of the request's :class:`~finwiz.optimizer.describe._costs.CostModel` it implies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finwiz.errors import InvalidPortfolioError
from finwiz.optimizer.describe._costs import square_root_impact

__all__ = ["MarketImpactModel"]


@dataclass(frozen=True)
class MarketImpactModel:
    """Square-root-law impact: cost_i = coefficient x sigma_i x |T_i|^{3/2} / sqrt(ADV_i).

    ``volatility`` is per-asset return volatility over the horizon of ``daily_dollar_volume``
    (e.g. daily), both labelled by symbol; ``coefficient`` is the usual O(1) constant.
    """

    daily_dollar_volume: pd.Series
    volatility: pd.Series
    coefficient: float = 1.0

    def __post_init__(self) -> None:
        """Refuse, naming the field and symbol, what the impact term cannot price: a coefficient
        that is not a finite number >= 0, volumes or volatilities not a Series by symbol, a
        duplicated symbol, a volume that is not positive or a volatility not finite and >= 0."""
        k = self.coefficient
        if (
            isinstance(k, bool)
            or not isinstance(k, int | float | np.integer | np.floating)
            or not (math.isfinite(k) and k >= 0)
        ):
            raise InvalidPortfolioError(
                f"market impact: coefficient must be a finite number >= 0, not {k!r}", field="market_impact"
            )
        object.__setattr__(self, "coefficient", float(k))
        for name, positive in (("daily_dollar_volume", True), ("volatility", False)):
            series = getattr(self, name)
            if not isinstance(series, pd.Series):
                raise InvalidPortfolioError(
                    f"market impact: {name} must be a pandas Series labelled by symbol, not {type(series).__name__}",
                    field=f"market_impact.{name}",
                )
            if series.index.has_duplicates:
                symbol = str(series.index[series.index.duplicated()][0])
                raise InvalidPortfolioError(
                    f"market impact: {name} lists {symbol} twice", field=f"market_impact.{name}", symbol=symbol
                )
            values = pd.to_numeric(series, errors="coerce").to_numpy(float)
            if series.dtype.kind in "iuf":
                numbers = np.ones(len(series), bool)
            else:  # text, booleans, objects: each cell looked at
                numbers = np.array([_is_number(v) for v in series], dtype=bool)
            bad = ~numbers | ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
            if bad.any():
                i = int(np.argmax(bad))
                symbol = str(series.index[i])
                need = "a positive finite number" if positive else "a finite number >= 0"
                raise InvalidPortfolioError(
                    f"market impact: {name} of {symbol} is {series.iloc[i]!r}, not {need}",
                    field=f"market_impact.{name}",
                    symbol=symbol,
                )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _impact_coefficients(model: MarketImpactModel, symbols: Sequence[str], ref_value: float) -> np.ndarray:
    """k_i such that impact_i / V_ref = k_i |u_i|^{3/2} for a trade of u_i V_ref dollars."""
    volume = model.daily_dollar_volume.reindex(list(symbols)).to_numpy(float)
    sigma = model.volatility.reindex(list(symbols)).to_numpy(float)
    bad = ~(np.isfinite(volume) & (volume > 0) & np.isfinite(sigma) & (sigma >= 0))
    if bad.any():
        symbol = symbols[int(np.argmax(bad))]
        raise InvalidPortfolioError(
            f"market impact: no positive volume or finite volatility for {symbol}",
            field="market_impact",
            symbol=symbol,
        )
    return square_root_impact(model.coefficient, sigma, volume, ref_value)
