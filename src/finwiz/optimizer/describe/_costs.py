"""The cost law, once: what trading costs each asset, in currency.

``cost_i(T) = rate_i |T_i| + k_i s (|T_i| / s)^{3/2}`` for signed trade values ``T`` (currency),
``s`` the unit ``k`` is stated in: 1 (currency, the backtest's), or ``V_ref`` (the model's, where
trades are fractions ``u = T / V_ref`` and the impact is ``k_i |u_i|^{3/2}`` of ``V_ref``). The
impact follows the square-root law, ``k_i = coefficient sigma_i sqrt(s / ADV_i)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CostModel", "square_root_impact"]


def square_root_impact(coefficient: float, volatility: np.ndarray, volume: np.ndarray, unit: float = 1.0) -> np.ndarray:
    """``k_i = coefficient sigma_i sqrt(unit / ADV_i)``: the impact coefficients of
    :class:`CostModel` in ``unit`` (volatility and daily dollar volume per asset)."""
    return np.asarray(coefficient * volatility * np.sqrt(unit / volume))


@dataclass(frozen=True, eq=False)
class CostModel:
    """Per-asset linear rates and optional square-root-law impact coefficients (see the module
    docstring); calling it prices signed trade values, asset by asset."""

    rates: np.ndarray
    impact: np.ndarray | None = None
    unit: float = 1.0

    def split(self, trade_values: np.ndarray, owner: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(transaction, impact) cost in currency of signed ``trade_values``; ``trade_values[j]``
        trades asset ``owner[j]`` (default: asset ``j``)."""
        size = np.abs(trade_values)
        linear = (self.rates if owner is None else self.rates[owner]) * size
        if self.impact is None:
            return linear, np.zeros_like(linear)
        k = self.impact if owner is None else self.impact[owner]
        return linear, k * (size / self.unit) ** 1.5 * self.unit

    def __call__(self, trade_values: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
        """Cost in currency of each signed trade value (transaction plus impact)."""
        linear, impact = self.split(trade_values, owner)
        return np.asarray(linear + impact)
