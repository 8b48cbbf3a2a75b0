"""Number formatting shared by the HTML report and the terminal tables."""

from __future__ import annotations

import math

__all__ = ["money", "percent", "shares"]


def money(value: float) -> str:
    """``1,234,567.89``; the currency is the prices' own, so no symbol is printed."""
    return f"{value:,.2f}"


def percent(value: float, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.34%``; NaN -> an en dash."""
    if math.isnan(value):
        return "\u2013"
    return f"{value * 100:.{digits}f}%"


def shares(value: float) -> str:
    """Whole shares without decimals, fractional shares with up to four."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4f}".rstrip("0")
