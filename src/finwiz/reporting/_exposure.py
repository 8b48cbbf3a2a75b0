"""Tabular views of a result that both the charts and the tables share."""

from __future__ import annotations

import pandas as pd

from finwiz.schemas import RebalancingResult

__all__ = ["SECTOR_CAP_PREFIX", "sector_exposure", "weights_frame"]

NO_SECTOR = "No sector"
"""The label of the assets without a sector, in the sector table and the blotter's groups."""

SECTOR_CAP_PREFIX = "sector_cap["
"""Compliance entries whose ``constraint`` starts with this prefix are sector caps."""


def weights_frame(result: RebalancingResult) -> pd.DataFrame:
    """Current, target and post-trade weight per symbol, with a final ``CASH`` row.

    Columns ``current``, ``target``, ``post_trade``; index ``symbol``.
    """
    frame = result.to_frame()[["weight_before", "target_weight", "weight_after"]]
    return frame.set_axis(["current", "target", "post_trade"], axis="columns")


def _sector_caps(result: RebalancingResult) -> pd.Series:
    caps = {
        check.constraint[len(SECTOR_CAP_PREFIX) :].removesuffix("]"): check.limit
        for check in result.compliance
        if check.constraint.startswith(SECTOR_CAP_PREFIX)
    }
    return pd.Series(caps, dtype=float, name="cap")


def weights_of(result: RebalancingResult, symbols: list[str]) -> pd.DataFrame:
    """Before, target and after weights of ``symbols`` (0 where a map lacks one)."""
    return pd.DataFrame(
        {
            "before": pd.Series(result.current_weights, dtype=float),
            "target": pd.Series(result.target_weights, dtype=float),
            "after": pd.Series(result.post_trade_weights, dtype=float),
        }
    ).reindex(symbols, fill_value=0.0)


def sector_exposure(result: RebalancingResult) -> pd.DataFrame:
    """Sector weights before, targeted and after the trades, against each sector's cap.

    Before-weights are fractions of the value before trading, after-weights fractions of the
    post-trade value (see the README's definitions); ``target`` sums the sector's target
    weights. ``cap`` comes from the result's
    ``sector_cap[<sector>]`` compliance entries and is NaN for an uncapped sector. Index
    ``sector``, sorted by post-trade weight (largest first), then a ``"No sector"`` row (no cap)
    for the assets without a sector, so the rows and cash add up; empty when the result has no
    sectors.
    """
    columns = ["before", "target", "after", "cap"]
    if not result.sectors:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="sector"), dtype=float)
    sectors = pd.Series(result.sectors, name="sector")
    weights = weights_of(result, list(sectors.index))
    exposure = weights.groupby(sectors).sum()
    caps = _sector_caps(result)
    exposure = exposure.reindex(exposure.index.union(caps.index), fill_value=0.0)
    exposure["cap"] = caps.reindex(exposure.index)
    exposure.index.name = "sector"
    exposure = exposure.sort_values("after", ascending=False, kind="stable")[columns]
    # The assets without a sector, last: in no sector and under no cap, but part of the weights.
    unclassified = [s for s in result.current_holdings if s not in result.sectors]
    if unclassified:
        rest = weights_of(result, unclassified).sum()
        exposure.loc[NO_SECTOR] = [rest["before"], rest["target"], rest["after"], float("nan")]
    return exposure
