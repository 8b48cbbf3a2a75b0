"""The report's look-through sections: exposures (``result.exposures()``) against their caps
and floors, and a blended model's sleeves (``result.sleeves()``) with their drift. Each is there
only when the result has the data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from finwiz.schemas import RebalancingResult

__all__ = ["lookthrough_sections"]

_EPSILON = 1e-9  # float noise tolerated before an exposure counts as outside its limit


def _status(after: float, cap: float, floor: float) -> tuple[bool, str]:
    over, under = after > cap + _EPSILON, after < floor - _EPSILON  # NaN: no limit, never outside
    if over or under:
        return True, "OVER CAP" if over else "UNDER FLOOR"
    return False, "no limit" if math.isnan(cap) and math.isnan(floor) else "ok"


def lookthrough_sections(render: Callable[..., str], result: RebalancingResult) -> list[tuple[str, str, str]]:
    """(title, body, anchor) of the exposures section and of the sleeves section, each when the
    result has its data; ``render`` is the report's template renderer."""
    out = []
    exposures = result.exposures()
    if not exposures.empty:
        rows = []
        for name, (before, target, after, cap, floor) in zip(
            exposures.index, exposures.to_numpy(dtype=float), strict=True
        ):
            breach, status = _status(after, cap, floor)
            rows.append(
                {"name": name, "cells": (before, target, after, floor, cap), "breach": breach, "status": status}
            )
        body = render("sections/exposures.html.j2", rows=rows)
        out.append(("Look-through exposures", body, "exposures"))
    sleeves = result.sleeves()
    if not sleeves.empty:
        columns = ["target", "before", "after", "drift_before", "drift_after"]
        rows = [
            {"name": name, "depth": int(depth), "cells": tuple(values), "trade_value": float(traded)}
            for name, depth, values, traded in zip(
                sleeves.index,
                sleeves["depth"],
                sleeves[columns].to_numpy(dtype=float),
                sleeves["trade_value"],
                strict=True,
            )
        ]
        body = render("sections/sleeves.html.j2", rows=rows, currency=result.currency)
        out.append(("Model sleeves", body, "sleeves"))
    return out
